"""HTTP details of the schedule API: content negotiation, ETags, table renderings."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from tasks.serve.store import ApiError
from tasks.storage import sha256_bytes

if TYPE_CHECKING:
    import pandas as pd

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
#: Media types a table is served as, by the Accept value that selects it.
TABLE_TYPES = {
    JSON: JSON,
    CSV: CSV,
    PARQUET: PARQUET,
    "application/x-parquet": PARQUET,
    "application/parquet": PARQUET,
}
TIMESTAMP_COLUMNS = ("delivery_start_utc", "delivery_end_utc", "timestamp_utc")


def negotiate(accept: str | None, offered: dict[str, str]) -> str:
    """The media type to answer with, by the Accept header's q-values; JSON when any will do; else 406.

    ``offered`` maps accepted names to the type served (aliases of Parquet). The first
    offered type wins ties, so ``*/*`` and a missing header give JSON.
    """
    if not accept or not accept.strip():
        return next(iter(offered.values()))
    best: tuple[float, int, str] | None = None
    names = list(offered)
    for i, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        if media in ("*/*", "application/*", "text/*"):
            prefix = media.split("/")[0]
            match = next((n for n in names if prefix == "*" or n.startswith(prefix + "/")), None)
        else:
            match = media if media in offered else None
        if match is None:
            continue
        rank = (q, -i, match)
        if best is None or rank[:2] > best[:2]:
            best = rank
    if best is None:
        kinds = ", ".join(sorted(set(offered.values())))
        raise ApiError(406, f"cannot answer Accept: {accept!r}; this resource is served as {kinds}")
    return offered[best[2]]


def etag_of(*parts: str) -> str:
    """A strong ETag from content digests and the representation's options."""
    return '"' + sha256_bytes(":".join(parts).encode())[:32] + '"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """True when the client's If-None-Match names ``etag`` (weak comparison, ``*`` matches)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip().removeprefix("W/")
        if tag in ("*", etag):
            return True
    return False


def table_json(frame: pd.DataFrame, header: dict[str, object]) -> bytes:
    """``{..header, "rows": [...]}``; timestamps ISO 8601 UTC like the CSV files, NaN as null."""
    import orjson

    out = frame.copy()
    for col in TIMESTAMP_COLUMNS:
        if col in out.columns:
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = out.to_json(orient="records", double_precision=10)
    head = orjson.dumps(header)
    return head[:-1] + (b',"rows":' if len(head) > 2 else b'"rows":') + rows.encode() + b"}"


def table_csv(frame: pd.DataFrame, float_format: str) -> bytes:
    """CSV with the contract's conventions (ISO UTC timestamps)."""
    out = frame.copy()
    for col in TIMESTAMP_COLUMNS:
        if col in out.columns:
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out.to_csv(index=False, float_format=float_format).encode()


def table_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
