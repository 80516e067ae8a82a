"""Storage layout under the data root and atomic writes.

Everything a stage writes is keyed by zone and delivery day, and written to a
temporary file in the same directory, then renamed: a crash never leaves a
half-written file, and re-running a day replaces its outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
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

    def reports_dir(self, kind: str, day: date | None = None) -> Path:
        base = self.root / "reports" / kind
        return base / day.isoformat() if day else base

    def gate_file(self, zone: str, day: date) -> Path:
        """Marker of a delivery day that failed a gate (see tasks.validate)."""
        return self.root / "gates" / f"zone={zone}" / f"{day.isoformat()}.json"

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


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; rename it over ``target`` on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.replace(target)
    finally:
        if tmp.exists():
            tmp.unlink()


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
