"""Ingest stage: inbox -> raw landing (immutable) -> checks -> processed Parquet, or quarantine.

``python -m tasks.ingest --delivery-date D [--zone Z] [--history]``

The stage only reads the inbox: in production NiFi fills it (``nifi/``), in
development the simulator's upstream step does (``python -m devtools.simulator
--delivery-date D``). Every inbox file is claimed, parsed (tasks.sources), checked
(tasks.ingest_checks) and either landed as a raw revision + processed Parquet
or quarantined with a reason. The inbox copy is removed only after that.
The task fails (IngestError, exit 2) after all files are handled when a file
was quarantined with an ``error`` reason or a required input of D is absent.
See docs/ingestion.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks import datasets as ds
from tasks.cli import base_parser, day_arg, exit_stage, run_stage
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError, IngestError
from tasks.ingest_checks import (
    REASONS,
    Issue,
    check_document,
    check_stale,
    local_days,
    optional_inputs,
    required_inputs,
    severity_of,
)
from tasks.landing import (
    Landed,
    land_raw,
    list_revisions,
    original_name,
    quarantine_file,
    read_provenance,
    received_time_of,
)
from tasks.storage import LINEAGE_KEY, Layout, sha256_bytes, with_lineage, write_with

if TYPE_CHECKING:
    import pandas as pd

    from tasks.sources import ParsedDocument

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

_NAME_PATTERNS = (
    re.compile(
        r"^(?P<source>entsoe)_(?P<doc>A\d\d)_(?P<zone>.+)_(?P<day>\d{4}-\d{2}-\d{2})(?:_(?P<pt>A\d\d))?\.xml$"
    ),
    re.compile(r"^(?P<source>weather)_(?P<zone>.+)_(?P<day>\d{4}-\d{2}-\d{2})\.json$"),
    re.compile(r"^(?P<source>meter)_(?P<zone>.+)_(?P<day>\d{4}-\d{2}-\d{2})\.csv$"),
)
_SKIP_SUFFIXES = (".tmp", ".part", ".partial", ".filepart")
CLAIM_DIR = ".claimed"


@dataclass(frozen=True)
class NameHint:
    """What the inbox file name claims; the parser reads the truth from the content."""

    source: str
    zone: str
    day: date | None


def name_hint(name: str) -> NameHint | None:
    for pattern in _NAME_PATTERNS:
        match = pattern.match(name)
        if match:
            try:
                day: date | None = date.fromisoformat(match["day"])
            except ValueError:
                day = None
            source = match["source"]
            if source == "entsoe":
                source = f"entsoe_{match['doc']}"  # as the parser names it (entsoe_A44, ...)
            return NameHint(source, match["zone"], day)
    return None


@dataclass
class IngestReport:
    """What one ingest did; ``to_result()`` is the stage's JSON result."""

    run_day: date | None
    zone: str | None
    history: bool
    landed: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def to_result(self) -> dict[str, Any]:
        return {
            "delivery_date": self.run_day.isoformat() if self.run_day else None,
            "zone": self.zone,
            "history": self.history,
            "landed": self.landed,
            "quarantined": self.quarantined,
            "processed": sorted(set(self.processed)),
            "errors": self.errors,
            "warnings": self.warnings,
        }

    def raise_for_errors(self) -> None:
        if self.errors:
            shown = "; ".join(self.errors[:5])
            more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
            raise IngestError(
                f"ingest for {self.run_day or 'history'}: {len(self.errors)} error(s): {shown}{more}. "
                "Quarantined files and their reasons are under <data_root>/quarantine/."
            )


# --------------------------------------------------------------------------- inbox


def _wanted(name: str, zone: str | None, default_zone: str) -> bool:
    if name.startswith(".") or name.endswith(_SKIP_SUFFIXES):
        return False
    if zone is None:
        return True
    hint = name_hint(name)
    # Files whose name names no zone are handled by the run of the first configured zone.
    return hint.zone == zone if hint else zone == default_zone


def claim_inbox_files(inbox: Path, zone: str | None, default_zone: str) -> list[Path]:
    """Move this run's inbox files into its claim folder (atomic rename), sorted by name.

    A rename succeeds for one process only, so zone-mapped tasks running at the
    same time never handle the same file twice; files left in the claim folder
    by a crashed run are picked up by the next run of the same zone.
    """
    claim_dir = inbox / CLAIM_DIR / f"zone={zone or 'all'}"
    if inbox.is_dir():
        for path in sorted(inbox.iterdir()):
            if not path.is_file() or not _wanted(path.name, zone, default_zone):
                continue
            target = claim_dir / path.name
            claim_dir.mkdir(parents=True, exist_ok=True)
            if target.exists():
                # A leftover claim of an earlier crashed run: keep the newer delivery aside first.
                continue
            try:
                path.rename(target)
            except FileNotFoundError:
                continue  # another run claimed it
    if not claim_dir.is_dir():
        return []
    return sorted(p for p in claim_dir.iterdir() if p.is_file() and not p.name.startswith("."))


# --------------------------------------------------------------------------- processing


def _parser_version() -> str:
    try:
        from tasks import sources

        return str(getattr(sources, "PARSER_VERSION", "unversioned"))
    except ImportError:  # pragma: no cover - the sources package ships with the tasks
        return "unavailable"


def normalise_frame(frame: pd.DataFrame, dataset: str, resolution: int) -> pd.DataFrame:
    """Processed-zone column order and dtypes; rows sorted by the dataset's keys."""
    import numpy as np
    import pandas as pd

    spec = ds.BY_NAME[dataset]
    extra = [k for k in spec.key_columns if k != "timestamp_utc"]
    stamps = frame["timestamp_utc"]
    if str(stamps.dtype) != "datetime64[ns, UTC]":
        stamps = pd.to_datetime(stamps, utc=True)
    columns: dict[str, Any] = {
        "timestamp_utc": stamps.array,
        "resolution_minutes": np.full(len(frame), resolution, dtype="int64"),
    }
    for col in extra:
        columns[col] = frame[col].astype(str).to_numpy()
    for col in spec.value_columns:
        columns[col] = frame[col].to_numpy(dtype="float64")
    out = pd.DataFrame(columns)
    if extra or not out["timestamp_utc"].is_monotonic_increasing:
        out = out.sort_values(["timestamp_utc", *extra], kind="mergesort", ignore_index=True)
    return out


def write_processed(target: Path, frame: pd.DataFrame, lineage: dict[str, Any] | None = None) -> Path:
    """Atomic Parquet write with pyarrow directly (no index, deterministic bytes).

    ``lineage`` names the raw revision the rows were parsed from (file, revision,
    sha256); it is kept in the Parquet metadata and carried on to the features,
    the forecast and the schedule manifest.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if lineage is not None:
        table = with_lineage(table, lineage)
    return write_with(target, lambda tmp: pq.write_table(table, tmp))


def processed_is_current(target: Path, lineage: dict[str, Any]) -> bool:
    """Whether ``target`` can stay as it is when the raw revision ``lineage`` is landed again.

    No: the file is missing, unreadable (e.g. truncated: its Parquet footer is gone), has
    no lineage, or was written from another revision of the same source file. Yes: it
    matches, or another source file (a multi-day delivery) wrote that dataset-day last.
    """
    import pyarrow.parquet as pq

    if not target.is_file():
        return False
    try:
        meta = pq.ParquetFile(target).schema_arrow.metadata or {}
        found = json.loads(meta[LINEAGE_KEY]) if LINEAGE_KEY in meta else None
    except (OSError, ValueError):  # pyarrow.ArrowInvalid is a ValueError: rebuilt from the raw bytes
        return False
    if not isinstance(found, dict):
        return False
    if found == lineage:
        return True
    raw_file = found.get("raw_file")
    return isinstance(raw_file, str) and original_name(raw_file) != original_name(lineage["raw_file"])


@dataclass
class _Piece:
    dataset: str
    zone: str
    day: date
    frame: pd.DataFrame


def _pieces(doc: Any, tz: str, hint: NameHint | None) -> list[_Piece]:
    """One piece per data day: the declared day, else the day(s) the intervals fall on."""
    frame = doc.frame
    declared = doc.meta.get("delivery_day") or doc.meta.get("day")
    if isinstance(declared, str):
        declared = date.fromisoformat(declared)
    days = local_days(frame, tz)
    if isinstance(declared, date):
        return [_Piece(doc.dataset, doc.zone, declared, frame)]
    if len(days) <= 1:
        day = days[0] if days else (hint.day if hint else None)
        return [_Piece(doc.dataset, doc.zone, day, frame)] if day else []
    local = frame["timestamp_utc"].dt.tz_convert(tz).dt.date
    return [_Piece(doc.dataset, doc.zone, d, frame[local == d]) for d in days]


class _Ingestor:
    def __init__(self, settings: Settings, run_day: date | None, history: bool, zone: str | None) -> None:
        self.settings = settings
        self.layout = Layout(settings.data_root)
        self.run_day = run_day
        self.history = history or run_day is None
        self.tz = settings.market_timezone
        self.report = IngestReport(run_day, zone, self.history)
        self.parser_version = _parser_version()

    def _quarantine(
        self,
        path: Path,
        data: bytes,
        hint: NameHint | None,
        issues: list[Issue],
        *,
        source: str | None = None,
        zone: str | None = None,
    ) -> None:
        ranked = sorted(
            issues,
            key=lambda i: (
                i.severity != "error",
                list(REASONS).index(i.reason) if i.reason in REASONS else 99,
            ),
        )
        first = ranked[0]
        severity = first.severity
        message = first.message
        kept = self._landed_revision(path.name, hint)
        if severity == "error" and kept is not None:
            # A bad re-delivery of a file whose earlier revision landed: that revision stays in use.
            severity = "warning"
            message = f"{message} (re-delivery; landed {kept} stays in use)"
        day = next(
            (i.details["day_obj"] for i in issues if "day_obj" in i.details), hint.day if hint else None
        )
        record = quarantine_file(
            self.layout,
            source=source or (hint.source if hint else "unknown"),
            day=day,
            name=path.name,
            data=data,
            reason=first.reason,
            message=message,
            severity=severity,
            received_time=received_time_of(path),
            zone=zone or (hint.zone if hint else None),
            run_day=self.run_day,
            details={
                "issues": [
                    {
                        "reason": i.reason,
                        "message": i.message,
                        "severity": i.severity,
                        **{k: v for k, v in i.details.items() if k != "day_obj"},
                    }
                    for i in ranked
                ]
            },
        )
        self.report.quarantined.append(
            {
                "file": path.name,
                "reason": first.reason,
                "message": message,
                "severity": severity,
                "path": str(record.path),
            }
        )
        line = f"{path.name}: {first.reason}: {message}"
        (self.report.errors if severity == "error" else self.report.warnings).append(line)
        log.warning("quarantined %s", line)

    def _landed_revision(self, name: str, hint: NameHint | None) -> str | None:
        """File name of the latest landed revision of ``name``, if any (found by the name hint)."""
        if hint is None or hint.day is None:
            return None
        revisions = list_revisions(self.layout.raw_dir(hint.source, hint.zone, hint.day), name)
        return revisions[-1][1].name if revisions else None

    def _already_landed(self, name: str, hint: NameHint, data: bytes) -> bool:
        """Same bytes as the latest landed revision, and its processed files exist: nothing to do.

        Only a shortcut (the name hint picks where to look); anything else goes
        through the parser and the checks as usual.
        """
        if hint.day is None:
            return False
        revisions = list_revisions(self.layout.raw_dir(hint.source, hint.zone, hint.day), name)
        if not revisions:
            return False
        rev, raw_path = revisions[-1]
        try:
            prov = read_provenance(raw_path)
        except (OSError, ValueError):
            return False
        if prov.get("sha256") != sha256_bytes(data):
            return False
        meta = prov.get("meta", {})
        targets = [
            self.layout.processed_file(dataset, zone, date.fromisoformat(day))
            for dataset in prov.get("datasets", [])
            for zone in meta.get("zones", [prov.get("zone")])
            for day in meta.get("days", [prov.get("day")])
        ]
        lineage = {"raw_file": raw_path.name, "revision": rev, "sha256": prov["sha256"]}
        # A processed file that is damaged or not from this revision is rebuilt from the raw bytes.
        if not targets or not all(processed_is_current(t, lineage) for t in targets):
            return False
        self.report.landed.append({"file": name, "path": str(raw_path), "revision": rev, "new": False})
        self.report.processed += [str(t) for t in targets]
        return True

    def handle(self, path: Path) -> None:
        """Parse, check and land one inbox file, or quarantine it with every issue found."""
        data = path.read_bytes()
        hint = name_hint(path.name)
        if hint is not None and self._already_landed(path.name, hint, data):
            return
        docs = self._parse(path, data, hint)
        if docs is None:
            return
        pieces, issues = self._check(docs, hint)
        if issues:
            self._quarantine(path, data, hint, issues, source=docs[0].source, zone=docs[0].zone)
            return
        self._land(path, data, pieces)

    def _parse(self, path: Path, data: bytes, hint: NameHint | None) -> list[ParsedDocument] | None:
        """The file's documents, or None once it is quarantined as unreadable."""
        from tasks.sources import ParseError, parse_file

        try:
            docs = parse_file(path.name, data)
        except ParseError as exc:
            self._quarantine(path, data, hint, [Issue(exc.code, exc.message)])
            return None
        except Exception as exc:  # a parser bug must quarantine the file, not lose it
            self._quarantine(path, data, hint, [Issue("parser_crash", f"{type(exc).__name__}: {exc}")])
            return None
        if not docs:
            self._quarantine(
                path, data, hint, [Issue("empty_file", "the parser found no series in the file")]
            )
            return None
        return docs

    def _check(
        self, docs: list[ParsedDocument], hint: NameHint | None
    ) -> tuple[list[tuple[ParsedDocument, _Piece]], list[Issue]]:
        """Each document's dataset-day pieces and the content issues of all of them."""
        pieces: list[tuple[ParsedDocument, _Piece]] = []
        issues: list[Issue] = []
        for doc in docs:
            doc_pieces = _pieces(doc, self.tz, hint)
            if not doc_pieces:
                issues.append(Issue("empty_file", f"{doc.dataset}: no data points"))
            for piece in doc_pieces:
                pieces.append((doc, piece))
                issues += self._piece_issues(doc, piece)
        return pieces, issues

    def _piece_issues(self, doc: ParsedDocument, piece: _Piece) -> list[Issue]:
        """Content checks of one dataset-day, plus zone and staleness for this run."""
        found = check_document(
            piece.frame,
            dataset=doc.dataset,
            unit=doc.unit,
            resolution=int(doc.resolution_minutes),
            day=piece.day,
            tz=self.tz,
            price_floor=self.settings.price_floor_eur_mwh,
            price_cap=self.settings.price_cap_eur_mwh,
        )
        if doc.zone not in self.settings.zones:
            found.append(
                Issue(
                    "zone_not_configured", f"zone {doc.zone} is not in DAP_ZONES {list(self.settings.zones)}"
                )
            )
        if not self.history and self.run_day is not None:
            stale = check_stale(doc.dataset, piece.day, self.run_day)
            if stale:
                found.append(stale)
        for issue in found:
            issue.details["day_obj"] = piece.day
        return found

    def _land(self, path: Path, data: bytes, pieces: list[tuple[ParsedDocument, _Piece]]) -> None:
        """Land the raw bytes (a new revision if they changed), then write each processed dataset-day."""
        first_doc = pieces[0][0]
        days = sorted({p.day for _, p in pieces})
        zones = sorted({p.zone for _, p in pieces})
        landed: Landed = land_raw(
            self.layout,
            source=first_doc.source,
            zone=zones[0],
            day=days[0],  # a multi-day file lands under its first day
            name=path.name,
            data=data,
            received_time=received_time_of(path),
            parser_version=str(first_doc.meta.get("parser_version", self.parser_version)),
            datasets=tuple(sorted({p.dataset for _, p in pieces})),
            run_day=self.run_day,
            meta={
                "days": [d.isoformat() for d in days],
                "zones": zones,
                **{k: v for k, v in first_doc.meta.items() if isinstance(v, (str, int, float, bool))},
            },
        )
        self.report.landed.append(
            {"file": path.name, "path": str(landed.path), "revision": landed.revision, "new": landed.new}
        )
        lineage = {"raw_file": landed.path.name, "revision": landed.revision, "sha256": sha256_bytes(data)}
        for doc, piece in pieces:
            target = self.layout.processed_file(piece.dataset, piece.zone, piece.day)
            if landed.new or not processed_is_current(target, lineage):
                write_processed(
                    target, normalise_frame(piece.frame, piece.dataset, int(doc.resolution_minutes)), lineage
                )
            self.report.processed.append(str(target))

    def check_required(self, zones: tuple[str, ...]) -> None:
        if self.history or self.run_day is None:
            return
        for zone in zones:
            for dataset, day in required_inputs(self.run_day):
                if not self.layout.processed_file(dataset, zone, day).exists():
                    self.report.errors.append(
                        f"missing_required: {dataset} of {day} for zone {zone} is not in the processed zone "
                        f"(needed to schedule {self.run_day}); check the source delivery and the quarantine"
                    )
            for dataset, day in optional_inputs(self.run_day):
                if not self.layout.processed_file(dataset, zone, day).exists():
                    self.report.warnings.append(
                        f"missing_optional: {dataset} of {day} for zone {zone} is absent; downstream stages "
                        "run without it"
                    )


def _ingest_chunk(
    settings: Settings, run_day: date | None, history: bool, zone: str | None, paths: list[Path]
) -> IngestReport:
    ingestor = _Ingestor(settings, run_day, history, zone)
    for path in paths:
        ingestor.handle(path)
        path.unlink()  # only now: it is landed or quarantined
    return ingestor.report


def _merge(into: IngestReport, part: IngestReport) -> None:
    into.landed += part.landed
    into.quarantined += part.quarantined
    into.processed += part.processed
    into.errors += part.errors
    into.warnings += part.warnings


#: Below this many files a worker pool costs more than it saves.
PARALLEL_MIN_FILES = 200
CHUNK_FILES = 60
MAX_PASSES = 3


def _process(
    settings: Settings,
    report: IngestReport,
    files: list[Path],
    *,
    run_day: date | None,
    history: bool,
    zone: str | None,
    n_workers: int,
    progress: Progress | None,
) -> None:
    if n_workers > 1 and len(files) >= PARALLEL_MIN_FILES:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        chunks = [files[i : i + CHUNK_FILES] for i in range(0, len(files), CHUNK_FILES)]
        done = 0
        parts: dict[int, IngestReport] = {}
        # fork: workers inherit the imported parsers and pandas (spawn would re-import for seconds).
        with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {
                pool.submit(_ingest_chunk, settings, run_day, history, zone, chunk): i
                for i, chunk in enumerate(chunks)
            }
            for future in as_completed(futures):
                parts[futures[future]] = future.result()
                done += len(chunks[futures[future]])
                if progress:
                    progress(done, len(files))
        for i in range(len(chunks)):
            _merge(report, parts[i])  # in file-name order, as a serial run reports
        return
    ingestor = _Ingestor(settings, run_day, history, zone)
    ingestor.report = report
    for i, path in enumerate(files, 1):
        ingestor.handle(path)
        path.unlink()  # only now: it is landed or quarantined
        if progress:
            progress(i, len(files))


def ingest_inbox(
    settings: Settings,
    *,
    run_day: date | None,
    history: bool = False,
    zone: str | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Land, check and process every inbox file (of ``zone``, or all); never raises on bad files.

    ``run_day=None`` or ``history=True`` lands old days without the stale check
    and without requiring D's inputs (history bootstrap). Call
    ``report.raise_for_errors()`` to fail like the stage does. Large inboxes
    (history) are split over ``workers`` processes (default: one per usable CPU, at most 4);
    each file is still handled by exactly one process.
    """
    import os

    if zone is not None and zone not in settings.zones:
        raise ConfigError(f"zone {zone!r} is not configured (DAP_ZONES={list(settings.zones)})")
    report = IngestReport(run_day, zone, history or run_day is None)
    n_workers = workers if workers is not None else min(4, len(os.sched_getaffinity(0)))
    # A second pass takes a delivery that waited in the inbox behind a leftover claim of the same name.
    for _ in range(MAX_PASSES):
        files = claim_inbox_files(settings.inbox, zone, settings.zones[0])
        if not files:
            break
        _process(
            settings,
            report,
            files,
            run_day=run_day,
            history=history,
            zone=zone,
            n_workers=n_workers,
            progress=progress,
        )
    checker = _Ingestor(settings, run_day, history, zone)
    checker.report = report
    checker.check_required((zone,) if zone else settings.zones)
    return report


def run_ingest(
    settings: Settings, run_day: date, *, zone: str | None = None, history: bool = False
) -> IngestReport:
    """The stage: ingest what the upstream (NiFi, or the simulator in development) left in the inbox."""
    return ingest_inbox(settings, run_day=run_day, history=history, zone=zone)


def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    report = run_ingest(settings, day_arg(args), zone=args.zone, history=args.history)
    log.info(
        "ingest %s zone=%s: %d landed, %d quarantined, %d processed",
        report.run_day,
        report.zone,
        len(report.landed),
        len(report.quarantined),
        len(set(report.processed)),
    )
    report.raise_for_errors()
    return report.to_result()


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser("Land, check and process the source files in the inbox.")
    parser.add_argument(
        "--history",
        action="store_true",
        help="History bootstrap: land old days (no stale check, no required inputs of D).",
    )
    return parser


if __name__ == "__main__":
    exit_stage(run_stage(main, build_parser()))


__all__ = ["IngestReport", "ingest_inbox", "name_hint", "run_ingest", "severity_of"]
