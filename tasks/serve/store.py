"""Read the published schedule versions of the data root: never writes, caches what cannot change.

A version directory ``schedules/day=D/v=NNN/`` is immutable (docs/output-contract.md),
so what is read from it is cached by its path and manifest digest. ``LATEST`` and
``manifest.json`` are replaced by rename, never rewritten in place: each request
``stat``s them and re-reads them (``LATEST`` through ``tasks.publish.read_pointer``,
which, unlike ``current_pointer``, never repairs the ``latest`` link: the API has
no write access) only when the inode, size or mtime changed.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tasks.errors import PointerError
from tasks.publish import POINTER_FILE, read_pointer
from tasks.schedule import VERSION_RE, existing_versions, version_name
from tasks.storage import Layout, sha256_bytes, sha256_file

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LATEST = "latest"
#: Tables a version holds, by the name the API uses.
TABLES = ("schedule", "bids")


class ApiError(Exception):
    """A request the API answers with ``status`` and a one-line ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_day(value: str) -> date:
    """A delivery date ``YYYY-MM-DD`` or ApiError 422 naming the format."""
    try:
        if not DAY_RE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, f"malformed delivery date {value!r}: expected YYYY-MM-DD") from None


def parse_version(value: str) -> str:
    """``latest`` or ``v=NNN`` (``NNN`` alone is accepted), or ApiError 422."""
    text = value.strip()
    if text == LATEST:
        return text
    if text.isdigit():
        return version_name(int(text))
    if VERSION_RE.match(text):
        return text
    raise ApiError(422, f"malformed version {value!r}: expected 'latest' or v=NNN (e.g. v=002)")


@dataclass(frozen=True)
class Version:
    """One schedule version of a day, as the API serves it."""

    day: date
    name: str
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    published: bool

    def file_sha256(self, name: str) -> str:
        return str(self.manifest["files"][name]["sha256"])


class LruCache:
    """A small thread-safe LRU of computed values (handlers run in uvicorn's thread pool)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                value: T = self._data[key]
                return value
        value = compute()  # outside the lock: two threads may compute the same value once each
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value


def _stat_key(path: Path) -> tuple[str, int, int, int]:
    """Identity of a file replaced by rename: a new write gives a new inode (and mtime)."""
    st = path.stat()
    return str(path), st.st_ino, st.st_size, st.st_mtime_ns


class ScheduleStore:
    """The schedules and forecasts under one data root."""

    def __init__(self, data_root: Path, cache_entries: int = 64) -> None:
        self.layout = Layout(data_root)
        self.root = data_root / "schedules"
        self.cache = LruCache(cache_entries)

    def days(self) -> list[dict[str, Any]]:
        """Every delivery day with a schedule: its versions and the published one (None if none)."""
        out: list[dict[str, Any]] = []
        if not self.root.is_dir():
            return out
        for folder in sorted(self.root.glob("day=*")):
            text = folder.name.removeprefix("day=")
            if not DAY_RE.match(text) or not folder.is_dir():
                continue
            try:
                published = read_pointer(folder)
            except PointerError:
                published = None
            versions = [version_name(n) for n in existing_versions(folder)]
            out.append({"delivery_date": text, "published_version": published, "versions": versions})
        return out

    def version(self, day: date, version: str) -> Version:
        """The named version (or the published one for ``latest``) with its manifest; ApiError 404/503."""
        day_dir = self.layout.schedule_dir(day)
        if not day_dir.is_dir():
            raise ApiError(404, f"no schedule for delivery day {day}")
        try:
            published = self._pointer(day_dir)
        except PointerError as exc:
            raise ApiError(503, f"the published pointer of {day} is broken: {exc}") from None
        name = published if version == LATEST else version
        if name is None:
            have = [version_name(n) for n in existing_versions(day_dir)]
            raise ApiError(404, f"delivery day {day} has no published schedule (versions: {have})")
        path = day_dir / name
        manifest_file = path / "manifest.json"
        try:
            key = _stat_key(manifest_file)
        except OSError:
            raise ApiError(404, f"schedule version {name} of {day} not found") from None

        def load() -> tuple[dict[str, Any], str]:
            raw = manifest_file.read_bytes()
            return json.loads(raw), sha256_bytes(raw)

        manifest, digest = self.cache.get(("manifest", *key), load)
        return Version(day, name, path, manifest, digest, published == name)

    def _pointer(self, day_dir: Path) -> str | None:
        """``read_pointer`` of the day, re-read only when ``LATEST`` was replaced."""
        try:
            key = _stat_key(day_dir / POINTER_FILE)
        except FileNotFoundError:
            return None
        except OSError:
            return read_pointer(day_dir)  # let it name the problem
        pointer: str | None = self.cache.get(("pointer", *key), lambda: read_pointer(day_dir))
        return pointer

    def table(self, version: Version, table: str) -> pd.DataFrame:
        """The version's schedule or bids (Parquet), checked against the manifest checksum once."""
        import pandas as pd

        file = f"{table}.parquet"

        def load() -> pd.DataFrame:
            data = self._checked_bytes(version, file)
            return pd.read_parquet(io.BytesIO(data))

        frame: pd.DataFrame = self.cache.get(("table", str(version.path), version.file_sha256(file)), load)
        return frame

    def file_bytes(self, version: Version, name: str) -> bytes:
        """A file of the version (CSV, Parquet, PNG), checked against its manifest checksum."""
        data: bytes = self.cache.get(
            ("file", str(version.path), name, version.file_sha256(name)),
            lambda: self._checked_bytes(version, name),
        )
        return data

    def _checked_bytes(self, version: Version, name: str) -> bytes:
        path = version.path / name
        if name not in version.manifest.get("files", {}):
            raise ApiError(404, f"schedule version {version.name} of {version.day} has no {name}")
        try:
            data = path.read_bytes()
        except OSError:
            raise ApiError(
                404, f"{name} of schedule version {version.name} of {version.day} is missing"
            ) from None
        if sha256_bytes(data) != version.file_sha256(name):
            raise ApiError(
                500,
                f"{name} of {version.day} {version.name} does not match its manifest checksum; "
                "rerun tasks.schedule and publish",
            )
        return data

    def forecast(self, zone: str, day: date) -> tuple[pd.DataFrame, str]:
        """A zone's forecast of D and its sha256 (cached by file size and mtime); ApiError 404."""
        import pandas as pd

        path = self.layout.forecast_file(zone, day)
        try:
            stat = path.stat()
        except OSError:
            raise ApiError(404, f"no forecast for zone {zone} on {day}") from None

        def load() -> tuple[pd.DataFrame, str]:
            return pd.read_parquet(path), sha256_file(path)

        result: tuple[pd.DataFrame, str] = self.cache.get(
            ("forecast", str(path), stat.st_size, stat.st_mtime_ns), load
        )
        return result

    def memo(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """Cache a rendering of immutable content (key includes its digest)."""
        return self.cache.get(("memo", *key), compute)
