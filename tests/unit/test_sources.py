"""Source formats: write -> parse round trips, A03/multi-period documents, and every ParseError code."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devtools.simulator.model import simulate_frames
from devtools.simulator.publish import render
from devtools.simulator.writers import write_load_xml, write_prices_xml, write_renewables_xml
from tasks.sources import PARSE_ERROR_CODES, ParsedDocument, ParseError, parse_file, source_of

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TZ = "Europe/Berlin"
DST_SHORT, DST_LONG, NORMAL = date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 27)
EXPECTED_MTUS = {(DST_SHORT, 15): 92, (DST_LONG, 15): 100, (NORMAL, 15): 96,
                 (DST_SHORT, 60): 23, (DST_LONG, 60): 25, (NORMAL, 60): 24}  # fmt: skip


def _sim(zone: str, day: date, mtu: int) -> dict[str, pd.DataFrame]:
    return simulate_frames(zone, day, seed=11, tz=TZ, mtu_minutes=mtu)


def _only(docs: list[ParsedDocument]) -> ParsedDocument:
    assert len(docs) == 1
    return docs[0]


def _assert_code(code: str, name: str, data: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_file(name, data)
    assert info.value.code == code, info.value.message
    assert info.value.message


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("day", [DST_SHORT, DST_LONG, NORMAL])
@pytest.mark.parametrize("mtu", [15, 60])
@pytest.mark.parametrize(
    ("kind", "dataset", "columns", "source"),
    [
        ("A44", "day_ahead_prices", ["price_eur_mwh"], "entsoe_A44"),
        ("A65_A01", "load_forecast", ["load_mw"], "entsoe_A65"),
        ("A65_A16", "load_actual", ["load_mw"], "entsoe_A65"),
        ("A69", "renewables_forecast", ["wind_mw", "solar_mw"], "entsoe_A69"),
    ],
)
def test_entsoe_round_trip(  # noqa: PLR0917 - pytest passes parametrized arguments positionally
    day: date, mtu: int, kind: str, dataset: str, columns: list[str], source: str
) -> None:
    frames = _sim("DE_LU", day, mtu)
    data = render(kind, "DE_LU", day, frames, TZ)
    doc = _only(parse_file(f"entsoe_{kind}_DE_LU_{day}.xml", data))
    assert (doc.source, doc.dataset, doc.zone, doc.resolution_minutes) == (source, dataset, "DE_LU", mtu)
    assert doc.meta["data_days"] == [day.isoformat()]
    truth = frames[dataset]
    assert len(doc.frame) == EXPECTED_MTUS[(day, mtu)]
    assert list(doc.frame.columns) == ["timestamp_utc", "resolution_minutes", *columns]
    assert str(doc.frame["timestamp_utc"].dt.tz) == "UTC"
    pd.testing.assert_series_equal(doc.frame["timestamp_utc"], truth["timestamp_utc"], check_names=False)
    assert (doc.frame["resolution_minutes"] == mtu).all()
    tolerance = 0.51 if dataset.startswith("load") else 0.011  # loads are whole MW in the documents
    for column in columns:
        np.testing.assert_allclose(doc.frame[column], truth[column], atol=tolerance)


def test_a69_splits_offshore_and_onshore_and_sums_them_back() -> None:
    frames = _sim("DE_LU", NORMAL, 15)
    text = render("A69", "DE_LU", NORMAL, frames, TZ).decode()
    for psr in ("B16", "B18", "B19"):
        assert f"<psrType>{psr}</psrType>" in text
    doc = _only(parse_file("x.xml", text.encode()))
    assert doc.meta["psr_types"] == ["B16", "B18", "B19"]
    # Austria has no offshore wind: no B18 series, wind is the onshore series alone.
    at = _sim("AT", NORMAL, 60)
    at_text = render("A69", "AT", NORMAL, at, TZ)
    assert b"B18" not in at_text
    at_doc = _only(parse_file("x.xml", at_text))
    np.testing.assert_allclose(at_doc.frame["wind_mw"], at["renewables_forecast"]["wind_mw"], atol=0.011)


@pytest.mark.parametrize("day", [DST_SHORT, DST_LONG])
@pytest.mark.parametrize("mtu", [15, 60])
def test_weather_and_meter_round_trip_on_dst_days(day: date, mtu: int) -> None:
    frames = _sim("BE", day, mtu)
    weather = _only(parse_file("weather_BE.json", render("weather", "BE", day, frames, TZ)))
    hours = EXPECTED_MTUS[(day, 60)]
    assert weather.zone == "BE"
    assert weather.resolution_minutes == 60
    assert len(weather.frame) == hours * weather.frame["location"].nunique()
    expected = frames["weather_forecast"].sort_values(["timestamp_utc", "location"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(weather.frame, expected, check_dtype=False, atol=0.051)

    meter = _only(parse_file("meter_BE.csv", render("meter", "BE", day, frames, TZ)))
    assert meter.resolution_minutes == 15  # meters are always quarter-hourly
    assert len(meter.frame) == EXPECTED_MTUS[(day, 15)] * meter.frame["meter_id"].nunique()
    pd.testing.assert_frame_equal(
        meter.frame[["timestamp_utc", "meter_id"]],
        frames["meter_readings"][["timestamp_utc", "meter_id"]],
    )
    np.testing.assert_allclose(meter.frame["power_mw"], frames["meter_readings"]["power_mw"], atol=1e-5)


def test_entsoe_py_reads_our_documents_the_same_way() -> None:
    """Cross-check against entsoe-py's parsers on plain single-Period A01 documents."""
    from entsoe.parsers import parse_generation, parse_loads, parse_prices

    frames = _sim("DE_LU", NORMAL, 60)
    prices = write_prices_xml("DE_LU", frames["day_ahead_prices"], tz=TZ, curve_type="A01")
    theirs = parse_prices(prices.decode())["60T"]
    ours = _only(parse_file("p.xml", prices)).frame
    np.testing.assert_allclose(theirs.to_numpy(), ours["price_eur_mwh"].to_numpy())
    assert list(theirs.index) == list(ours["timestamp_utc"])

    load = write_load_xml("DE_LU", frames["load_actual"], process_type="A16", tz=TZ)
    theirs_load = parse_loads(load.decode(), process_type="A16")["Actual Load"]
    np.testing.assert_allclose(theirs_load.to_numpy(), _only(parse_file("l.xml", load)).frame["load_mw"])

    res = write_renewables_xml("DE_LU", frames["renewables_forecast"], tz=TZ)
    theirs_res = parse_generation(res.decode())
    ours_res = _only(parse_file("r.xml", res)).frame
    np.testing.assert_allclose(theirs_res["Solar"].to_numpy().ravel(), ours_res["solar_mw"], atol=1e-9)
    wind = theirs_res["Wind Onshore"].to_numpy().ravel() + theirs_res["Wind Offshore"].to_numpy().ravel()
    np.testing.assert_allclose(wind, ours_res["wind_mw"], atol=1e-6)


# ------------------------------------------------------------------ curve types, periods, gaps


def test_a03_points_left_out_are_expanded_to_the_period_end() -> None:
    frames = _sim("DE_LU", DST_LONG, 15)
    prices = frames["day_ahead_prices"].copy()
    prices.loc[10:19, "price_eur_mwh"] = 42.0  # a flat stretch
    prices.loc[95:, "price_eur_mwh"] = 99.99  # and a flat end: the last points are omitted too
    data = write_prices_xml("DE_LU", prices, tz=TZ, curve_type="A03")
    assert data.count(b"<Point>") == 100 - 9 - 4
    doc = _only(parse_file("a03.xml", data))
    assert doc.meta["curve_types"] == ["A03"]
    assert len(doc.frame) == 100
    np.testing.assert_allclose(doc.frame["price_eur_mwh"], prices["price_eur_mwh"])


def test_a03_duplicated_position_is_refused_not_resolved() -> None:
    prices = _sim("DE_LU", NORMAL, 60)["day_ahead_prices"].copy()
    prices.loc[5, "price_eur_mwh"] = 77.0  # differs from its neighbours: every point is written
    text = write_prices_xml("DE_LU", prices, tz=TZ, curve_type="A03").decode()
    point = text.split("<Point>")[6].split("</Point>")[0]
    assert "<position>6</position>" in point
    twin = point.replace("77.00", "11.00")
    doubled = text.replace(f"<Point>{point}</Point>", f"<Point>{point}</Point><Point>{twin}</Point>", 1)
    with pytest.raises(ParseError) as info:
        parse_file("a03.xml", doubled.encode())
    assert info.value.code == "duplicate_position"
    assert "position 6" in info.value.message
    assert "77 and 11" in info.value.message


@pytest.mark.parametrize("amount", ["96,40", "1,096.40", "1_096.4", "nan", "inf", "9 6"])
def test_entsoe_values_must_be_plain_decimal_numbers(amount: str) -> None:
    text = _prices_xml().decode()
    first = text.split("<price.amount>", 1)[1].split("</price.amount>", 1)[0]
    bad = text.replace(f"<price.amount>{first}</price.amount>", f"<price.amount>{amount}</price.amount>", 1)
    with pytest.raises(ParseError) as info:
        parse_file("a.xml", bad.encode())
    assert info.value.code == "malformed_number", info.value.message
    assert repr(amount) in info.value.message


def test_meter_and_weather_values_must_be_plain_decimal_numbers() -> None:
    frames = _sim("DE_LU", NORMAL, 15)
    text = render("meter", "DE_LU", NORMAL, frames, TZ).decode()
    row = text.splitlines()[1].split(",")
    comma = text.replace(",".join(row), ",".join([*row[:4], f'"{row[4].replace(".", ",")}"', row[5]]), 1)
    _assert_code("malformed_number", "m.csv", comma.encode())
    _assert_code("malformed_number", "m.csv", text.replace(f",{row[4]},", ",inf,", 1).encode())
    doc = json.loads(render("weather", "DE_LU", NORMAL, frames, TZ))
    for value in ("53,2", "53.2", True, float("inf")):  # json.dumps writes inf as Infinity
        bad = json.loads(json.dumps(doc))
        bad["locations"][0]["hourly"]["temperature_2m"][3] = value
        _assert_code("malformed_number", "w.json", json.dumps(bad).encode())


def test_a01_keeps_gaps_and_duplicates_as_delivered() -> None:
    frames = _sim("DE_LU", NORMAL, 60)
    load = frames["load_forecast"]
    gappy = pd.concat([load.drop(index=[3]), load.iloc[[7]]]).sort_values("timestamp_utc", kind="stable")
    doc = _only(parse_file("g.xml", write_load_xml("DE_LU", gappy, process_type="A01", tz=TZ)))
    assert len(doc.frame) == 24
    assert load["timestamp_utc"].iloc[3] not in set(doc.frame["timestamp_utc"])
    assert doc.frame["timestamp_utc"].duplicated().sum() == 1
    # A69: a duplicate interval stays duplicated, a gap of one psrType shows as NaN (not as zero).
    res = frames["renewables_forecast"]
    dup = pd.concat([res, res.iloc[[5]]]).sort_values("timestamp_utc", kind="stable")
    parsed = _only(parse_file("r.xml", write_renewables_xml("DE_LU", dup, tz=TZ))).frame
    assert len(parsed) == 25
    assert parsed["timestamp_utc"].duplicated().sum() == 1
    text = write_renewables_xml("DE_LU", res, tz=TZ).decode()
    solar_series = text.split("<psrType>B16</psrType>", 1)[1].split("</TimeSeries>", 1)[0]
    point = solar_series.split("<Point>")[3].split("</Point>")[0]
    missing = text.replace("<Point>" + point + "</Point>", "", 1)
    assert missing != text
    holes = _only(parse_file("r.xml", missing.encode())).frame
    assert holes["solar_mw"].isna().sum() == 1
    assert holes["wind_mw"].notna().all()


def test_multi_period_and_multi_series_documents() -> None:
    days = [date(2026, 10, 24), DST_LONG, date(2026, 10, 26)]
    loads = pd.concat([_sim("NL", d, 15)["load_actual"] for d in days], ignore_index=True)
    data = write_load_xml("NL", loads, process_type="A16", tz=TZ)
    assert data.count(b"<TimeSeries>") == 1
    assert data.count(b"<Period>") == 3
    doc = _only(parse_file("m.xml", data))
    assert doc.dataset == "load_actual"
    assert len(doc.frame) == 96 + 100 + 96
    assert doc.meta["data_days"] == [d.isoformat() for d in days]
    np.testing.assert_allclose(doc.frame["load_mw"], loads["load_mw"], atol=0.51)

    prices = pd.concat([_sim("FR", d, 60)["day_ahead_prices"] for d in days], ignore_index=True)
    pdata = write_prices_xml("FR", prices, tz=TZ)
    assert pdata.count(b"<TimeSeries>") == 3
    pdoc = _only(parse_file("p.xml", pdata))
    assert (pdoc.zone, len(pdoc.frame), pdoc.meta["time_series"]) == ("FR", 24 + 25 + 24, 3)


def test_mixed_resolutions_come_back_as_separate_documents() -> None:
    hourly = write_prices_xml("DE_LU", _sim("DE_LU", NORMAL, 60)["day_ahead_prices"], tz=TZ)
    quarter = write_prices_xml("DE_LU", _sim("DE_LU", NORMAL, 15)["day_ahead_prices"], tz=TZ)
    series_60 = hourly.split(b"<TimeSeries>", 1)[1].split(b"</Publication_MarketDocument>")[0]
    both = quarter.replace(
        b"</Publication_MarketDocument>", b"<TimeSeries>" + series_60 + b"</Publication_MarketDocument>"
    )
    docs = parse_file("both.xml", both)
    assert sorted((d.resolution_minutes, len(d.frame)) for d in docs) == [(15, 96), (60, 24)]


def test_writer_output_is_deterministic() -> None:
    frames = _sim("DE_LU", NORMAL, 15)
    for kind in ("A44", "A65_A01", "A65_A16", "A69", "weather", "meter"):
        assert render(kind, "DE_LU", NORMAL, frames, TZ) == render(kind, "DE_LU", NORMAL, frames, TZ)


# ------------------------------------------------------------------ fixtures and error codes


def _fixture_cases() -> list[tuple[str, dict[str, object]]]:
    cases = []
    for sub in ("entsoe", "weather", "meter"):
        expected = json.loads((FIXTURES / sub / "expected.json").read_text())
        cases += [(f"{sub}/{name}", exp) for name, exp in sorted(expected.items())]
    return cases


@pytest.mark.parametrize(("name", "expected"), _fixture_cases())
def test_fixtures_parse_as_documented(name: str, expected: dict[str, object]) -> None:
    path = FIXTURES / name
    if "error" in expected:
        _assert_code(str(expected["error"]), path.name, path.read_bytes())
        return
    doc = _only(parse_file(path.name, path.read_bytes()))
    got = {
        "source": doc.source,
        "dataset": doc.dataset,
        "zone": doc.zone,
        "rows": len(doc.frame),
        "resolution_minutes": doc.resolution_minutes,
        "data_days": doc.meta["data_days"],
    }
    assert got == {k: v for k, v in expected.items() if k != "note"}


def _prices_xml() -> bytes:
    return write_prices_xml("DE_LU", _sim("DE_LU", NORMAL, 60)["day_ahead_prices"], tz=TZ)


def _load_xml() -> bytes:
    return write_load_xml("DE_LU", _sim("DE_LU", NORMAL, 60)["load_forecast"], process_type="A01", tz=TZ)


@pytest.mark.parametrize(
    ("code", "name", "make"),
    [
        ("empty_file", "a.xml", lambda: b""),
        ("empty_file", "w.json", lambda: b"  \n"),
        ("empty_file", "m.csv", lambda: b""),
        ("malformed_xml", "a.xml", lambda: _prices_xml()[:-40]),
        ("malformed_xml", "a.xml", lambda: b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"),
        (
            "wrong_document_type",
            "a.xml",
            lambda: _prices_xml().replace(b"<type>A44</type>", b"<type>A25</type>"),
        ),
        (
            "wrong_document_type",
            "a.xml",
            lambda: _load_xml().replace(b"<type>A65</type>", b"<type>A75</type>"),
        ),
        ("wrong_document_type", "a.xml", lambda: b"<html><body>Service unavailable</body></html>"),
        (
            "wrong_document_type",
            "a.xml",
            lambda: _load_xml().replace(b"<process.processType>A01", b"<process.processType>A31"),
        ),
        ("unknown_zone", "a.xml", lambda: _load_xml().replace(b"10Y1001A1001A82H", b"10YPL-AREA-----S")),
        ("unit_mismatch", "a.xml", lambda: _prices_xml().replace(b">EUR<", b">USD<")),
        ("unit_mismatch", "a.xml", lambda: _prices_xml().replace(b">MWH<", b">KWH<")),
        ("unit_mismatch", "a.xml", lambda: _load_xml().replace(b">MAW<", b">GW<")),
        ("unsupported_resolution", "a.xml", lambda: _load_xml().replace(b"PT60M", b"P1D")),
        (
            "unsupported_curve_type",
            "a.xml",
            lambda: _load_xml().replace(b"<curveType>A01", b"<curveType>A02"),
        ),
        (
            "malformed_document",
            "a.xml",
            lambda: _load_xml().replace(b"<position>24</position>", b"<position>25</position>"),
        ),
        ("malformed_number", "a.xml", lambda: _load_xml().replace(b"<quantity>", b"<quantity>x", 1)),
        ("malformed_json", "w.json", lambda: b'{"locations": [}'),
        ("malformed_json", "w.json", lambda: b"[1, 2]"),
        ("malformed_csv", "m.csv", lambda: b"meter,when,kwh\nM1,2026-01-01,3\n"),
        (
            "malformed_csv",
            "m.csv",
            lambda: (
                b'meter_id,bidding_zone,interval_start_utc,interval_end_utc,energy_kwh,quality\n"M1,DE_LU\n'
            ),
        ),
        ("unknown_format", "a.parquet", lambda: b"PAR1"),
    ],
)
def test_parse_error_codes(code: str, name: str, make: object) -> None:
    assert code in PARSE_ERROR_CODES
    _assert_code(code, name, make())  # type: ignore[operator]


def test_weather_unit_zone_and_shape_errors() -> None:
    frames = _sim("DE_LU", NORMAL, 60)
    doc = json.loads(render("weather", "DE_LU", NORMAL, frames, TZ))
    bad_unit = dict(doc, units=dict(doc["units"], temperature_2m="°F"))
    _assert_code("unit_mismatch", "w.json", json.dumps(bad_unit).encode())
    bad_zone = dict(doc, zone="XX", bidding_zone_eic="10YXX")
    _assert_code("unknown_zone", "w.json", json.dumps(bad_zone).encode())
    short = json.loads(json.dumps(doc))
    short["locations"][0]["hourly"]["temperature_2m"].pop()
    _assert_code("malformed_json", "w.json", json.dumps(short).encode())


def test_meter_errors() -> None:
    frames = _sim("DE_LU", NORMAL, 15)
    text = render("meter", "DE_LU", NORMAL, frames, TZ).decode()
    _assert_code("unknown_zone", "m.csv", text.replace(",DE_LU,", ",PL,").encode())
    lines = text.splitlines()
    half_hour = lines[0] + "\n" + lines[1].replace("T23:15:00Z", "T23:30:00Z") + "\n"
    _assert_code("unsupported_resolution", "m.csv", half_hour.encode())
    _assert_code("malformed_csv", "m.csv", text.replace(",A\n", ",Q\n", 1).encode())
    _assert_code("malformed_csv", "m.csv", text.replace(",DE_LU,", ",BE,", 1).encode())


def test_meter_energy_becomes_average_power() -> None:
    csv = (
        b"meter_id,bidding_zone,interval_start_utc,interval_end_utc,energy_kwh,quality\n"
        b"M1,10Y1001A1001A82H,2026-11-26T23:00:00Z,2026-11-26T23:15:00Z,250.0,E\n"
    )
    doc = _only(parse_file("m.csv", csv))
    assert doc.zone == "DE_LU"
    assert doc.frame["power_mw"].tolist() == [1.0]  # 250 kWh in 15 min = 1 MW
    assert doc.meta["estimated_readings"] == 1


def test_source_of_names() -> None:
    assert source_of("entsoe_A65_DE_LU_2026-11-27_A16.xml") == "entsoe_A65"
    assert source_of("/x/weather_BE_2026-11-27.json") == "weather"
    assert source_of("meter_BE_2026-11-27.csv") == "meter"
    assert source_of("notes.txt") == "unknown"


def test_parse_error_rejects_unknown_codes() -> None:
    with pytest.raises(ValueError, match="unknown parse error code"):
        ParseError("nope", "x")
