"""What every source parser returns, and the one error it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.errors import IngestError

if TYPE_CHECKING:
    import pandas as pd

# Machine-readable reasons a file cannot be parsed; ingest quarantines with them.
PARSE_ERROR_CODES = (
    "empty_file",
    "malformed_xml",
    "malformed_document",
    "wrong_document_type",
    "no_data",
    "unknown_zone",
    "unit_mismatch",
    "unsupported_resolution",
    "unsupported_curve_type",
    "malformed_json",
    "malformed_csv",
    "unknown_format",
)


class ParseError(IngestError):
    """A source file that cannot be read as what it claims to be.

    ``code`` is one of ``PARSE_ERROR_CODES`` (the quarantine reason),
    ``message`` one line of text that says what is wrong and where.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in PARSE_ERROR_CODES:
            raise ValueError(f"unknown parse error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ParsedDocument:
    """One zone's series from one source file, in the processed schema.

    ``frame`` has ``timestamp_utc`` (interval start, UTC), ``resolution_minutes``
    and the dataset's value columns (+ ``location``/``meter_id``), sorted by
    time; duplicates and gaps are kept as delivered so ingest can judge them.
    """

    source: str
    dataset: str
    zone: str
    frame: pd.DataFrame
    unit: str
    resolution_minutes: int
    meta: dict[str, Any] = field(default_factory=dict)
