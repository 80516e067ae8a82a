"""Landing zone: immutable raw bytes with provenance, and the quarantine.

Raw files live under ``Layout.raw_dir(source, zone, day)`` as
``<stem>.rNNN<suffix>`` with a ``<file>.provenance.json`` sidecar. A revision
is never replaced: landing identical bytes again is a no-op (idempotent
re-ingest), landing changed bytes under the same name adds revision N+1.

Quarantined files keep their raw bytes under ``Layout.quarantine_dir(source,
day)`` as ``<name>.<sha12>`` with a ``.reason.json`` sidecar (machine-readable
reason, one-line message, severity). Nothing here decides *whether* a file is
good; tasks.ingest does, with tasks.ingest_checks.

Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tasks.storage import Layout, sha256_bytes, write_bytes_atomic, write_json_atomic

PROVENANCE_SUFFIX = ".provenance.json"
REASON_SUFFIX = ".reason.json"
_REV_RE = re.compile(r"\.r(\d{3,})$")


@dataclass(frozen=True)
class Provenance:
    """Where a raw file came from; stored beside it, never inside processed data."""

    source: str
    zone: str
    day: str
    original_name: str
    received_time: str  # UTC ISO-8601: the inbox file's mtime (see docs/ingestion.md)
    sha256: str
    size: int
    parser_version: str
    revision: int
    datasets: tuple[str, ...] = ()
    run_day: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Landed:
    path: Path
    provenance_path: Path
    revision: int
    new: bool  # False when the same bytes were already the latest revision


@dataclass(frozen=True)
class Quarantined:
    path: Path
    reason_path: Path
    name: str
    reason: str
    message: str
    severity: str


def received_time_of(path: Path) -> str:
    """The file's mtime in UTC: when the source (or NiFi's PutFile) delivered it."""
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).isoformat(timespec="seconds")


def _split_name(name: str) -> tuple[str, str]:
    path = Path(name)
    return path.stem, path.suffix


def revision_path(raw_dir: Path, name: str, revision: int) -> Path:
    stem, suffix = _split_name(name)
    return raw_dir / f"{stem}.r{revision:03d}{suffix}"


def list_revisions(raw_dir: Path, name: str) -> list[tuple[int, Path]]:
    """All landed revisions of ``name`` in ``raw_dir``, oldest first."""
    if not raw_dir.is_dir():
        return []
    stem, suffix = _split_name(name)
    found = []
    for path in raw_dir.glob(f"{glob_escape(stem)}.r*{glob_escape(suffix)}"):
        if path.name.endswith(PROVENANCE_SUFFIX):
            continue
        inner = path.name[: len(path.name) - len(suffix)] if suffix else path.name
        match = _REV_RE.search(inner)
        if match and inner[: match.start()] == stem:
            found.append((int(match.group(1)), path))
    return sorted(found)


def original_name(raw_name: str) -> str:
    """The inbox name a landed revision was delivered as (``x.r002.xml`` -> ``x.xml``)."""
    stem, suffix = _split_name(raw_name)
    return _REV_RE.sub("", stem) + suffix


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]])", r"[\1]", text)


def provenance_path_of(raw_path: Path) -> Path:
    return raw_path.with_name(raw_path.name + PROVENANCE_SUFFIX)


def read_provenance(raw_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(provenance_path_of(raw_path).read_text())
    return result


def _write_new_immutable(target: Path, data: bytes) -> bool:
    """Create ``target`` with ``data`` unless it exists; never replaces. True if created."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:  # no fsync: same guarantee as tasks.storage (atomic, not durable)
            handle.write(data)
        tmp.chmod(0o444)
        try:
            os.link(tmp, target)  # atomic create-if-absent, unlike rename
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def land_raw(
    layout: Layout,
    *,
    source: str,
    zone: str,
    day: date,
    name: str,
    data: bytes,
    received_time: str,
    parser_version: str,
    datasets: tuple[str, ...] = (),
    run_day: date | None = None,
    meta: dict[str, Any] | None = None,
) -> Landed:
    """Store ``data`` as the next revision of ``name`` unless it equals the latest one."""
    raw_dir = layout.raw_dir(source, zone, day)
    digest = sha256_bytes(data)
    while True:
        revisions = list_revisions(raw_dir, name)
        if revisions:
            last_rev, last_path = revisions[-1]
            prov_path = provenance_path_of(last_path)
            last_sha = json.loads(prov_path.read_text())["sha256"] if prov_path.exists() else None
            if last_sha == digest:
                return Landed(last_path, prov_path, last_rev, new=False)
            if last_sha is None and sha256_bytes(last_path.read_bytes()) == digest:
                # A crash between bytes and sidecar: complete the sidecar, keep the revision.
                revision, target = last_rev, last_path
                break
        revision = (revisions[-1][0] + 1) if revisions else 1
        target = revision_path(raw_dir, name, revision)
        if _write_new_immutable(target, data):
            break
        # Another process landed this revision number first: look again.
    provenance = Provenance(
        source=source,
        zone=zone,
        day=day.isoformat(),
        original_name=name,
        received_time=received_time,
        sha256=digest,
        size=len(data),
        parser_version=parser_version,
        revision=revision,
        datasets=tuple(datasets),
        run_day=run_day.isoformat() if run_day else None,
        meta=dict(meta or {}),
    )
    prov_path = write_json_atomic(provenance_path_of(target), asdict(provenance))
    return Landed(target, prov_path, revision, new=True)


def quarantine_file(
    layout: Layout,
    *,
    source: str,
    day: date | None,
    name: str,
    data: bytes,
    reason: str,
    message: str,
    severity: str,
    received_time: str,
    zone: str | None = None,
    run_day: date | None = None,
    details: dict[str, Any] | None = None,
) -> Quarantined:
    """Keep the raw bytes aside with a machine-readable reason; idempotent per content."""
    digest = sha256_bytes(data)
    qdir = layout.quarantine_dir(source, day)
    target = qdir / f"{name}.{digest[:12]}"
    if not target.exists():
        write_bytes_atomic(target, data)
    record = {
        "file": name,
        "reason": reason,
        "message": message,
        "severity": severity,
        "source": source,
        "zone": zone,
        "day": day.isoformat() if day else None,
        "sha256": digest,
        "size": len(data),
        "received_time": received_time,
        "run_day": run_day.isoformat() if run_day else None,
        "details": details or {},
    }
    reason_path = write_json_atomic(target.with_name(target.name + REASON_SUFFIX), record)
    return Quarantined(target, reason_path, name, reason, message, severity)


def list_quarantine(layout: Layout) -> list[dict[str, Any]]:
    """Every quarantine record under the data root (for reports and tests)."""
    base = layout.root / "quarantine"
    if not base.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(base.rglob(f"*{REASON_SUFFIX}"))]
