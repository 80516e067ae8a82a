"""Storage layout under the data root and atomic writes.

Everything a stage writes is keyed by zone and delivery day, and written to a
temporary file in the same directory, then renamed: a crash never leaves a
half-written file, and re-running a day replaces its outputs. The file is
fsynced before the rename and its directory after it, so the new name
survives a power loss too. Writers of one day's schedules hold the day's lock
(:func:`day_lock`); under it, hidden leftovers of killed writers are removed
(:func:`remove_leftovers`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Layout:
    """Where each zone of data lives. ``root`` is ``Settings.data_root``."""

    root: Path

    # Landing: immutable raw bytes + provenance, keyed by source and data day.
    def raw_dir(self, source: str, zone: str, day: date) -> Path:
        return self.root / "raw" / source / f"zone={zone}" / f"day={day.isoformat()}"

    def quarantine_dir(self, source: str, day: date | None = None) -> Path:
        base = self.root / "quarantine" / source
        return base / f"day={day.isoformat()}" if day else base / "day=unknown"

    # Parsed, checked inputs as Parquet (one file per dataset, zone and data day).
    def processed_file(self, dataset: str, zone: str, day: date) -> Path:
        return self.root / "processed" / dataset / f"zone={zone}" / f"{day.isoformat()}.parquet"

    def processed_dir(self, dataset: str, zone: str) -> Path:
        return self.root / "processed" / dataset / f"zone={zone}"

    def features_file(self, zone: str, day: date) -> Path:
        return self.root / "features" / f"zone={zone}" / f"{day.isoformat()}.parquet"

    def features_dir(self, zone: str) -> Path:
        return self.root / "features" / f"zone={zone}"

    def forecast_file(self, zone: str, day: date) -> Path:
        return self.root / "forecasts" / f"zone={zone}" / f"{day.isoformat()}.parquet"

    def schedule_dir(self, day: date) -> Path:
        return self.root / "schedules" / f"day={day.isoformat()}"

    def schedule_lock(self, day: date) -> Path:
        """Lock file the writers of ``schedule_dir(day)`` hold (outside it: the day's listing stays clean)."""
        return self.root / "schedules" / ".locks" / f"day={day.isoformat()}.lock"

    def schedule_validation_file(self, zone: str, day: date) -> Path:
        """Versions of ``day`` the schedule gate passed for ``zone``, with their manifest sha256."""
        return self.reports_dir("gx", day) / f"zone={zone}" / "schedule.validated.json"

    def reports_dir(self, kind: str, day: date | None = None) -> Path:
        base = self.root / "reports" / kind
        return base / day.isoformat() if day else base

    def gate_file(self, zone: str, day: date) -> Path:
        """Marker of a delivery day that failed a gate (see tasks.validate)."""
        return self.root / "gates" / f"zone={zone}" / f"{day.isoformat()}.json"

    def realised_file(self, zone: str, day: date) -> Path:
        """Realised value of the published schedule of ``day`` (tasks.realise; docs/output-contract.md)."""
        return self.root / "realised" / f"zone={zone}" / f"{day.isoformat()}.json"

    def data_docs_dir(self) -> Path:
        return self.root / "reports" / "data_docs"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's contents (a directory: its entries, i.e. renames) to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; fsync it, rename it over ``target`` and fsync the directory."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fsync_path(tmp)
        tmp.replace(target)
        fsync_path(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def day_lock(lock_file: Path) -> Iterator[None]:
    """Exclusive lock of one day's outputs for the block (released by the kernel if the process dies)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_leftover(path: Path) -> bool:
    """A hidden staging directory or temp file a killed writer left behind, or a schedule version
    without its manifest: versions are committed whole (manifest included) by a rename, so only an
    upload to the object store cut off before the manifest (tasks/objectstore.py) leaves one."""
    if path.name.startswith(".staging-") or (path.name.startswith(".") and path.name.endswith(".tmp")):
        return True
    return path.name.startswith("v=") and path.is_dir() and not (path / "manifest.json").exists()


def remove_leftovers(folder: Path) -> list[str]:
    """Remove the leftovers of killed writers in ``folder``; call only while holding its :func:`day_lock`."""
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.iterdir()):
        if not is_leftover(path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path.name)
    return removed


def write_bytes_atomic(target: Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def write_json_atomic(target: Path, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return write_bytes_atomic(target, text.encode())


LINEAGE_KEY = b"dap.lineage"  # Parquet schema metadata: where a file's rows came from (JSON)


def write_parquet_atomic(target: Path, frame: pd.DataFrame, *, lineage: Any = None) -> Path:
    """Atomic Parquet write; ``lineage`` (JSON-able) goes into the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if lineage is not None:
        table = with_lineage(table, lineage)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)
    return target


def with_lineage(table: Any, lineage: Any) -> Any:
    """A pyarrow table carrying ``lineage`` as JSON in its schema metadata."""
    meta = dict(table.schema.metadata or {})
    meta[LINEAGE_KEY] = json.dumps(lineage, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def read_lineage(path: Path) -> Any:
    """The lineage stored in a Parquet file by this project, or None (older files)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(LINEAGE_KEY)
    return json.loads(raw) if raw else None


def write_with(target: Path, writer: Callable[[Path], object]) -> Path:
    """Atomically write ``target`` with any ``writer(path)`` callable."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return target
