"""What every source parser returns, and the one error it raises."""

from __future__ import annotations

import re
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
    "malformed_number",
    "duplicate_position",
    "unknown_format",
)

# A plain decimal number as the sources write it: optional sign, digits, a point as the
# decimal separator, optional exponent. No decimal comma, thousands separators, spaces,
# underscores, NaN or infinity (Python's float() would take several of these).
_CANONICAL_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


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


def canonical_float(text: str, where: str) -> float:
    """``text`` as a float if it is a plain decimal number, else ParseError ``malformed_number``.

    "53,2" is refused rather than read as 532 or 53.2: a decimal comma or a thousands
    separator cannot be told apart, and a value is never guessed.
    """
    if not _CANONICAL_NUMBER.fullmatch(text):
        hint = " (decimal comma or thousands separator?)" if "," in text else ""
        raise ParseError(
            "malformed_number",
            f"{where}: {text!r} is not a plain decimal number{hint}; the source must write e.g. 53.2",
        )
    return float(text)


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
