"""ENTSO-E Transparency Platform XML: parsers for A44, A65 and A69.

The parsers read the platform's REST API replies into the processed schema
(``tasks.datasets``). The matching writers, used by the simulator and the
tests, live in ``devtools.simulator.writers``.

Why not entsoe-py's parsers (0.6.2): they are used as a cross-check in the
tests, but they cannot be the ingest path. ``_parse_timeseries_generic`` keys
points by position in a dict and builds one index from the *first* ``start``
and the *last* ``end`` of a TimeSeries, so a TimeSeries with several Periods
collapses (positions collide and overwrite), a duplicate position silently
wins, and an A01 Period with a missing point raises a length mismatch instead
of returning the gap; ``parse_generation`` drops duplicated timestamps; none
of them reads units, zone or document type. Ingest must see duplicates and gaps
as delivered (it quarantines them with its own reason codes), and must refuse
a GW quantity or a non-EUR price, so we walk the XML ourselves (ElementTree).

Source documents are untrusted: a document that declares a DTD or entities is
refused before anything is expanded (:func:`_refuse_dtd`, an expat pass that stops
at the declaration wherever it sits and whatever the encoding), so neither an
entity bomb ("billion laughs") nor an entity-substituted value gets in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET
from xml.parsers import expat

from tasks.sources.base import ParsedDocument, ParseError, canonical_float
from tasks.sources.zones import ZONE_BY_EIC, zone_info

if TYPE_CHECKING:
    import pandas as pd

NS_PUBLICATION = "urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"
NS_GL = "urn:iec62325.351:tc57wg16:451-6:generationloaddocument:3:0"
NS_ACK = "urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0"
ENTSOE_EIC = "10X1001A1001A450"  # the Transparency Platform as sender

RESOLUTIONS = {"PT15M": 15, "PT60M": 60}
KNOWN_NON_SUPPORTED_RES = ("PT30M", "PT1M", "PT5M", "P1D", "P7D", "P1M", "P1Y")
PSR_SOLAR = "B16"
PSR_WIND_OFFSHORE = "B18"
PSR_WIND_ONSHORE = "B19"

# doc type -> (source, dataset) ; A65 depends on the process type.
LOAD_DATASET_BY_PROCESS = {"A01": "load_forecast", "A16": "load_actual"}


# --------------------------------------------------------------------------- parsers


def fmt_utc(ts: datetime) -> str:
    """A UTC time as the platform writes it in ``timeInterval`` (minute precision)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


class _Doc:
    """Namespace-agnostic accessors over one parsed XML document."""

    def __init__(self, root: ET.Element) -> None:
        self.root = root
        tag = root.tag
        self.ns = tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
        self.name = tag.split("}", 1)[-1]

    def q(self, path: str) -> str:
        if not self.ns:
            return path
        return "/".join(
            f"{{{self.ns}}}{part}" if part not in (".", "..") else part for part in path.split("/")
        )

    def text(self, el: ET.Element, path: str, *, required: bool = True) -> str:
        found = el.find(self.q(path))
        if found is None or found.text is None or not found.text.strip():
            if required:
                raise ParseError("malformed_document", f"{self.name}: missing <{path}>")
            return ""
        return found.text.strip()

    def all(self, el: ET.Element, path: str) -> list[ET.Element]:
        return el.findall(self.q(path))


class _DeclaresDTD(Exception):
    """Raised by the expat handlers of :func:`_refuse_dtd`; stops the parser at once."""


def _forbid(*_: object) -> None:
    raise _DeclaresDTD


def _refuse_dtd(data: bytes) -> None:
    """ParseError ``malformed_xml`` when ``data`` declares a DTD or an entity, before any expansion.

    An expat pass with handlers on the declarations: the first one raises, which
    stops expat there (a byte search would miss a declaration after a long comment
    or in UTF-16).
    """
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    try:
        parser.Parse(data, True)
    except _DeclaresDTD:
        raise ParseError(
            "malformed_xml", "document declares a DTD or entities; refused (entities are never expanded)"
        ) from None
    except expat.ExpatError as exc:
        raise ParseError("malformed_xml", f"not well-formed XML ({exc})") from None


def _root(data: bytes) -> ET.Element:
    if not data.strip():
        raise ParseError("empty_file", "the file is empty")
    _refuse_dtd(data)
    try:
        return ET.fromstring(data)  # noqa: S314 - _refuse_dtd passed: no DTD, no entity to expand
    except ET.ParseError as exc:
        raise ParseError("malformed_xml", f"not well-formed XML ({exc})") from None


def _parse_utc(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParseError("malformed_document", f"{what}: bad timestamp {text!r}") from None
    if value.tzinfo is None:
        raise ParseError("malformed_document", f"{what}: timestamp {text!r} has no UTC offset")
    return value.astimezone(UTC)


def _resolution(text: str) -> int:
    minutes = RESOLUTIONS.get(text)
    if minutes is None:
        raise ParseError("unsupported_resolution", f"resolution {text!r}; only PT15M and PT60M are supported")
    return minutes


def _series_rows(
    doc: _Doc, ts_el: ET.Element, value_tag: str, curve_type: str
) -> list[tuple[datetime, int, float]]:
    """(interval start, minutes, value) of every point of every Period of one TimeSeries.

    A01: one row per Point as delivered (gaps and duplicates kept). A03: points
    left out because they repeat the previous value are filled in, up to the
    end of the Period, as the curve type defines.
    """
    rows: list[tuple[datetime, int, float]] = []
    periods = doc.all(ts_el, "Period")
    if not periods:
        raise ParseError("malformed_document", "TimeSeries without Period")
    for period in periods:
        start = _parse_utc(doc.text(period, "timeInterval/start"), "Period start")
        end = _parse_utc(doc.text(period, "timeInterval/end"), "Period end")
        minutes = _resolution(doc.text(period, "resolution"))
        step = timedelta(minutes=minutes)
        if end <= start or (end - start) % step:
            raise ParseError(
                "malformed_document",
                f"Period {fmt_utc(start)}..{fmt_utc(end)} is not whole PT{minutes}M steps",
            )
        count = int((end - start) / step)
        points: list[tuple[int, float]] = []
        for point in doc.all(period, "Point"):
            pos_text = doc.text(point, "position")
            val_text = doc.text(point, value_tag)
            try:
                pos = int(pos_text)
            except ValueError:
                raise ParseError("malformed_document", f"Point position {pos_text!r} not numeric") from None
            value = canonical_float(val_text, f"Point {pos} <{value_tag}>")
            if not 1 <= pos <= count:
                raise ParseError(
                    "malformed_document",
                    f"Point position {pos} outside Period {fmt_utc(start)}..{fmt_utc(end)} ({count} steps)",
                )
            points.append((pos, value))
        if curve_type == "A03":
            by_pos: dict[int, float] = {}
            for pos, value in points:
                if pos in by_pos:
                    # The curve fills omitted points from the previous one: which value holds
                    # from here on cannot be told, so the Period is refused, not guessed.
                    raise ParseError(
                        "duplicate_position",
                        f"A03 Period {fmt_utc(start)}..{fmt_utc(end)} repeats position {pos} "
                        f"({by_pos[pos]:g} and {value:g}, interval {fmt_utc(start + (pos - 1) * step)})",
                    )
                by_pos[pos] = value
            if 1 not in by_pos:
                raise ParseError("malformed_document", "A03 Period without a point at position 1")
            current = by_pos[1]
            for pos in range(1, count + 1):
                current = by_pos.get(pos, current)
                rows.append((start + (pos - 1) * step, minutes, current))
        else:
            rows.extend((start + (pos - 1) * step, minutes, value) for pos, value in points)
    return rows


def _frame(rows: list[tuple[datetime, int, float]], column: str) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["timestamp_utc", "resolution_minutes", column])
    frame["timestamp_utc"] = pd.to_datetime(frame["timestamp_utc"], utc=True)
    frame["resolution_minutes"] = frame["resolution_minutes"].astype("int64")
    frame[column] = frame[column].astype("float64")
    return frame.sort_values("timestamp_utc", kind="stable").reset_index(drop=True)


def _zone(doc: _Doc, ts_el: ET.Element, tags: tuple[str, ...]) -> str:
    for tag in tags:
        eic = doc.text(ts_el, tag, required=False)
        if eic:
            zone = ZONE_BY_EIC.get(eic)
            if zone is None:
                raise ParseError("unknown_zone", f"EIC {eic!r} in <{tag}> is not a configured bidding zone")
            return zone
    raise ParseError("malformed_document", f"TimeSeries without {' or '.join(tags)}")


def _curve(doc: _Doc, ts_el: ET.Element) -> str:
    curve = doc.text(ts_el, "curveType", required=False) or "A01"
    if curve not in ("A01", "A03"):
        raise ParseError("unsupported_curve_type", f"curveType {curve}; only A01 and A03 are supported")
    return curve


def _data_days(frame: pd.DataFrame, tz: str) -> list[str]:
    if frame.empty:
        return []
    return sorted({d.isoformat() for d in frame["timestamp_utc"].dt.tz_convert(tz).dt.date})


def _doc_meta(doc: _Doc, doc_type: str, process_type: str | None) -> dict[str, Any]:
    root = doc.root
    interval = (
        "period.timeInterval" if doc.name == "Publication_MarketDocument" else "time_Period.timeInterval"
    )
    return {
        "document_type": doc_type,
        "process_type": process_type,
        "mrid": doc.text(root, "mRID", required=False),
        "revision_number": doc.text(root, "revisionNumber", required=False),
        "created_at": doc.text(root, "createdDateTime", required=False),
        "time_interval_start": doc.text(root, f"{interval}/start", required=False),
        "time_interval_end": doc.text(root, f"{interval}/end", required=False),
        "namespace": doc.ns,
    }


def _by_zone_and_resolution(
    rows: list[tuple[str, str, datetime, int, float]],
) -> dict[tuple[str, int], list[tuple[str, datetime, int, float]]]:
    groups: dict[tuple[str, int], list[tuple[str, datetime, int, float]]] = {}
    for zone, key, ts, minutes, value in rows:
        groups.setdefault((zone, minutes), []).append((key, ts, minutes, value))
    return groups


def _documents(
    rows: list[tuple[str, str, datetime, int, float]],
    *,
    source: str,
    dataset: str,
    column: str,
    unit: str,
    meta: dict[str, Any],
) -> list[ParsedDocument]:
    """One document of one value column per (zone, resolution) of the rows."""
    out = []
    for (zone, minutes), items in sorted(_by_zone_and_resolution(rows).items()):
        frame = _frame([(ts, m, v) for _, ts, m, v in items], column)
        data_days = _data_days(frame, zone_info(zone).tz)
        out.append(
            ParsedDocument(source, dataset, zone, frame, unit, minutes, meta | {"data_days": data_days})
        )
    return out


def parse_entsoe(data: bytes) -> list[ParsedDocument]:
    """Parse an A44, A65 (A01/A16) or A69 document into processed-schema frames.

    One ParsedDocument per (zone, resolution) found in the document (normally one).
    """
    doc = _Doc(_root(data))
    if doc.name == "Acknowledgement_MarketDocument":
        reason = doc.text(doc.root, "Reason/text", required=False) or "no reason given"
        raise ParseError("no_data", f"the platform answered with an acknowledgement: {reason}")
    if doc.name not in ("Publication_MarketDocument", "GL_MarketDocument"):
        raise ParseError(
            "wrong_document_type", f"root element {doc.name!r} is not an ENTSO-E market document"
        )
    doc_type = doc.text(doc.root, "type")
    if doc.name == "Publication_MarketDocument":
        if doc_type != "A44":
            raise ParseError(
                "wrong_document_type", f"Publication_MarketDocument of type {doc_type}; expected A44"
            )
        if "publicationdocument" not in doc.ns:
            raise ParseError("wrong_document_type", f"unexpected namespace {doc.ns!r}")
        return _parse_prices(doc)
    if "generationloaddocument" not in doc.ns:
        raise ParseError("wrong_document_type", f"unexpected namespace {doc.ns!r}")
    if doc_type == "A65":
        return _parse_load(doc)
    if doc_type == "A69":
        return _parse_renewables(doc)
    raise ParseError("wrong_document_type", f"GL_MarketDocument of type {doc_type}; expected A65 or A69")


def _parse_prices(doc: _Doc) -> list[ParsedDocument]:
    rows: list[tuple[str, str, datetime, int, float]] = []
    curves: set[str] = set()
    series = doc.all(doc.root, "TimeSeries")
    if not series:
        raise ParseError("malformed_document", "A44 document without TimeSeries")
    for ts_el in series:
        zone = _zone(doc, ts_el, ("in_Domain.mRID", "out_Domain.mRID"))
        currency = doc.text(ts_el, "currency_Unit.name")
        measure = doc.text(ts_el, "price_Measure_Unit.name")
        if currency != "EUR" or measure != "MWH":
            raise ParseError(
                "unit_mismatch", f"prices in {currency}/{measure}; expected EUR/MWH (not converted)"
            )
        curve = _curve(doc, ts_el)
        curves.add(curve)
        rows.extend((zone, "", ts, m, v) for ts, m, v in _series_rows(doc, ts_el, "price.amount", curve))
    meta = _doc_meta(doc, "A44", None) | {"curve_types": sorted(curves), "time_series": len(series)}
    return _documents(
        rows,
        source="entsoe_A44",
        dataset="day_ahead_prices",
        column="price_eur_mwh",
        unit="EUR/MWh",
        meta=meta,
    )


def _check_quantity_unit(doc: _Doc, ts_el: ET.Element) -> None:
    unit = doc.text(ts_el, "quantity_Measure_Unit.name")
    if unit != "MAW":
        raise ParseError("unit_mismatch", f"quantity unit {unit}; expected MAW (megawatt, not converted)")


def _parse_load(doc: _Doc) -> list[ParsedDocument]:
    process = doc.text(doc.root, "process.processType")
    dataset = LOAD_DATASET_BY_PROCESS.get(process)
    if dataset is None:
        raise ParseError("wrong_document_type", f"A65 with processType {process}; expected A01 or A16")
    rows: list[tuple[str, str, datetime, int, float]] = []
    curves: set[str] = set()
    series = doc.all(doc.root, "TimeSeries")
    if not series:
        raise ParseError("malformed_document", "A65 document without TimeSeries")
    for ts_el in series:
        zone = _zone(doc, ts_el, ("outBiddingZone_Domain.mRID", "inBiddingZone_Domain.mRID"))
        _check_quantity_unit(doc, ts_el)
        curve = _curve(doc, ts_el)
        curves.add(curve)
        rows.extend((zone, "", ts, m, v) for ts, m, v in _series_rows(doc, ts_el, "quantity", curve))
    meta = _doc_meta(doc, "A65", process) | {"curve_types": sorted(curves), "time_series": len(series)}
    return _documents(rows, source="entsoe_A65", dataset=dataset, column="load_mw", unit="MW", meta=meta)


def _parse_renewables(doc: _Doc) -> list[ParsedDocument]:
    import pandas as pd

    process = doc.text(doc.root, "process.processType", required=False) or None
    rows: list[tuple[str, str, datetime, int, float]] = []
    curves: set[str] = set()
    psr_types: set[str] = set()
    series = doc.all(doc.root, "TimeSeries")
    if not series:
        raise ParseError("malformed_document", "A69 document without TimeSeries")
    for ts_el in series:
        zone = _zone(doc, ts_el, ("inBiddingZone_Domain.mRID", "outBiddingZone_Domain.mRID"))
        _check_quantity_unit(doc, ts_el)
        psr = doc.text(ts_el, "MktPSRType/psrType")
        if psr not in (PSR_SOLAR, PSR_WIND_OFFSHORE, PSR_WIND_ONSHORE):
            raise ParseError("wrong_document_type", f"A69 psrType {psr}; expected B16, B18 or B19")
        psr_types.add(psr)
        curve = _curve(doc, ts_el)
        curves.add(curve)
        rows.extend((zone, psr, ts, m, v) for ts, m, v in _series_rows(doc, ts_el, "quantity", curve))
    meta = _doc_meta(doc, "A69", process) | {
        "curve_types": sorted(curves),
        "time_series": len(series),
        "psr_types": sorted(psr_types),
    }
    out = []
    for (zone, minutes), items in sorted(_by_zone_and_resolution(rows).items()):
        long = pd.DataFrame(items, columns=["psr", "timestamp_utc", "resolution_minutes", "value"])
        long = long.sort_values(["psr", "timestamp_utc"], kind="stable")
        # The n-th occurrence of a timestamp pairs with the n-th of the other psrTypes,
        # so a duplicated interval stays duplicated instead of being merged away.
        long["occurrence"] = long.groupby(["psr", "timestamp_utc"]).cumcount()
        wide = long.pivot_table(
            index=["timestamp_utc", "occurrence"], columns="psr", values="value", aggfunc="first"
        )
        present = set(wide.columns)
        wind_cols = [c for c in (PSR_WIND_OFFSHORE, PSR_WIND_ONSHORE) if c in present]
        # A psrType that is in the document but lacks an interval gives NaN there (a gap, not a zero).
        wind = wide[wind_cols].sum(axis=1, min_count=len(wind_cols)) if wind_cols else float("nan")
        solar = wide[PSR_SOLAR] if PSR_SOLAR in present else float("nan")
        frame = pd.DataFrame({"wind_mw": wind, "solar_mw": solar}, index=wide.index).reset_index()
        frame["timestamp_utc"] = pd.to_datetime(frame["timestamp_utc"], utc=True)
        frame.insert(1, "resolution_minutes", minutes)
        frame["resolution_minutes"] = frame["resolution_minutes"].astype("int64")
        frame = frame.drop(columns="occurrence").astype({"wind_mw": "float64", "solar_mw": "float64"})
        frame = frame.sort_values("timestamp_utc", kind="stable").reset_index(drop=True)
        out.append(
            ParsedDocument(
                "entsoe_A69",
                "renewables_forecast",
                zone,
                frame,
                "MW",
                minutes,
                meta | {"data_days": _data_days(frame, zone_info(zone).tz)},
            )
        )
    return out
