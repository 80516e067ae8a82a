"""Ingest end to end: simulator files -> inbox -> raw landing / processed Parquet / quarantine.

Real-shaped files come from the simulator and the source writers (ENTSO-E
XML, weather JSON, meter CSV); each kind of bad input ingest must catch is injected into
one file and must end in the quarantine with its reason, bytes kept, while
nothing of it reaches the processed zone.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from devtools.settings import SimulatorSettings
from devtools.simulator import fill_inbox, publish_for_run
from devtools.simulator.model import simulate_frames
from devtools.simulator.publish import inbox_name, render
from devtools.simulator.writers import write_load_xml, write_prices_xml
from tasks.errors import IngestError
from tasks.ingest import build_parser, ingest_inbox, main
from tasks.ingest import run_ingest as ingest_stage
from tasks.landing import list_quarantine
from tasks.storage import Layout, read_lineage

if TYPE_CHECKING:
    from tasks.config import Settings
    from tasks.ingest import IngestReport

pytestmark = pytest.mark.integration

ZONE = "DE_LU"
TZ = "Europe/Berlin"
D = date(2026, 6, 10)  # an ordinary 24-hour delivery day
SPRING = date(2026, 3, 29)  # 23 hours
AUTUMN = date(2026, 10, 25)  # 25 hours


def _frames(day: date, mtu: int = 15) -> dict[str, pd.DataFrame]:
    return simulate_frames(ZONE, day, seed=7, tz=TZ, mtu_minutes=mtu)


def _drop(name: str, inbox: Path, data: bytes) -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    path.write_bytes(data)
    return path


def run_ingest(settings: Settings, day: date, **kwargs: object) -> IngestReport:
    """One day as the embedded DAG runs it: the simulator's upstream step, then the ingest stage."""
    fill_inbox(settings, day)
    return ingest_stage(settings, day, **kwargs)  # type: ignore[arg-type]


def _only_quarantine(settings: Settings) -> dict[str, dict[str, object]]:
    return {q["file"]: q for q in list_quarantine(Layout(settings.data_root))}


@pytest.mark.parametrize(
    ("day", "mtu", "rows"),
    [(D, 15, 96), (SPRING, 15, 92), (AUTUMN, 15, 100), (SPRING, 60, 23), (AUTUMN, 60, 25)],
)
def test_daily_run_lands_and_processes_every_source(
    settings: Settings, day: date, mtu: int, rows: int
) -> None:
    cfg = settings.model_copy(update={"mtu_minutes": mtu})
    report = run_ingest(cfg, day)

    assert report.errors == [], report.errors
    assert report.quarantined == []
    assert len(report.landed) == 6
    layout = Layout(cfg.data_root)
    prices = pd.read_parquet(layout.processed_file("day_ahead_prices", ZONE, day - timedelta(days=1)))
    load = pd.read_parquet(layout.processed_file("load_forecast", ZONE, day))
    assert len(load) == rows
    assert str(load["timestamp_utc"].dtype) == "datetime64[ns, UTC]"
    assert set(load["resolution_minutes"]) == {mtu}
    assert list(prices.columns) == ["timestamp_utc", "resolution_minutes", "price_eur_mwh"]
    weather = pd.read_parquet(layout.processed_file("weather_forecast", ZONE, day))
    sizes = weather.groupby("location").size()
    assert (sizes == sizes.iloc[0]).all()
    assert not any(cfg.inbox.glob("*.xml")), "landed files leave the inbox"
    prov = json.loads(Path(report.landed[0]["path"] + ".provenance.json").read_text())
    assert {"source", "received_time", "sha256", "size", "parser_version", "revision"} <= set(prov)


def test_reingest_is_idempotent_and_byte_identical(settings: Settings) -> None:
    first = run_ingest(settings, D)
    processed = {p: Path(p).read_bytes() for p in first.processed}
    second = run_ingest(settings, D)  # the simulator publishes the same files again

    assert [x["new"] for x in second.landed] == [False] * 6
    assert {x["revision"] for x in second.landed} == {1}
    assert {p: Path(p).read_bytes() for p in second.processed} == processed
    raw = list((settings.data_root / "raw").rglob("*.r*.xml"))
    assert len(raw) == 4  # A44, A65 A01, A65 A16, A69: no duplicates


def test_reingest_rebuilds_a_damaged_or_foreign_processed_file(settings: Settings) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tasks.storage import with_lineage

    first = run_ingest(settings, D)
    layout = Layout(settings.data_root)
    prices = layout.processed_file("day_ahead_prices", ZONE, D - timedelta(days=1))
    load = layout.processed_file("load_forecast", ZONE, D)
    wind = layout.processed_file("renewables_forecast", ZONE, D)
    good = {p: p.read_bytes() for p in (prices, load, wind)}
    lineage = read_lineage(load)
    prices.write_bytes(good[prices][: len(good[prices]) // 2])  # truncated: no Parquet footer
    edited = pd.read_parquet(load).assign(load_mw=0.0)
    edited.to_parquet(load, index=False)  # readable, but no lineage: not what ingest wrote
    foreign = pa.Table.from_pandas(pd.read_parquet(wind).assign(wind_mw=1.0), preserve_index=False)
    pq.write_table(with_lineage(foreign, {**read_lineage(wind), "revision": 7}), wind)  # another revision

    second = run_ingest(settings, D)  # the runbook's "re-ingest the day"

    assert second.errors == [], second.errors
    assert [x["new"] for x in second.landed] == [False] * len(first.landed)
    assert {p: p.read_bytes() for p in good} == good
    assert read_lineage(load) == lineage


def test_changed_file_becomes_a_new_revision(settings: Settings) -> None:
    run_ingest(settings, D)
    prev = D - timedelta(days=1)
    frames = _frames(prev)
    frames["day_ahead_prices"]["price_eur_mwh"] += 1.0  # a corrected publication
    name = inbox_name("A44", ZONE, prev)
    _drop(name, settings.inbox, render("A44", ZONE, prev, frames, TZ))

    report = ingest_inbox(settings, run_day=D)

    assert report.landed == [{"file": name, "path": report.landed[0]["path"], "revision": 2, "new": True}]
    raw_dir = Layout(settings.data_root).raw_dir("entsoe_A44", ZONE, prev)
    assert sorted(p.name for p in raw_dir.glob("*.xml")) == [
        name.replace(".xml", ".r001.xml"),
        name.replace(".xml", ".r002.xml"),
    ]
    processed = Layout(settings.data_root).processed_file("day_ahead_prices", ZONE, prev)
    prices = pd.read_parquet(processed)
    expected = frames["day_ahead_prices"]["price_eur_mwh"].round(2).to_numpy()
    assert prices["price_eur_mwh"].to_numpy() == pytest.approx(expected)
    # The processed file names the raw revision it was parsed from (lineage up to the manifest).
    provenance = json.loads((raw_dir / (name.replace(".xml", ".r002.xml") + ".provenance.json")).read_text())
    assert read_lineage(processed) == {
        "raw_file": name.replace(".xml", ".r002.xml"),
        "revision": 2,
        "sha256": provenance["sha256"],
    }


def _prices_xml(day: date, edit: object = None, curve: str = "A01") -> bytes:
    frame = _frames(day)["day_ahead_prices"]
    if callable(edit):
        frame = edit(frame)
    return write_prices_xml(ZONE, frame, tz=TZ, curve_type=curve)


def _load_xml(day: date, edit: object = None) -> bytes:
    frame = _frames(day)["load_forecast"]
    if callable(edit):
        frame = edit(frame)
    return write_load_xml(ZONE, frame, process_type="A01", tz=TZ)


PREV = D - timedelta(days=1)

BAD_INPUTS = [
    # (case, file name, bytes factory, expected reason)
    ("truncated_xml", inbox_name("A44", ZONE, PREV), lambda: _prices_xml(PREV)[:1500], "malformed_xml"),
    ("empty_file", inbox_name("A65_A01", ZONE, D), lambda: b"", "empty_file"),
    (
        "wrong_document_type",
        inbox_name("A44", ZONE, PREV),
        lambda: _prices_xml(PREV).replace(b"<type>A44</type>", b"<type>A25</type>"),
        "wrong_document_type",
    ),
    (
        "missing_intervals",
        inbox_name("A65_A01", ZONE, D),
        lambda: _load_xml(D, lambda f: f.drop(index=[10, 11, 12])),
        "missing_intervals",
    ),
    (
        "duplicate_intervals",
        inbox_name("A65_A01", ZONE, D),
        lambda: _load_xml(D, lambda f: pd.concat([f, f.iloc[[40]]]).sort_values("timestamp_utc")),
        "duplicate_intervals",
    ),
    (
        "dst_day_with_24_hours",
        inbox_name("A65_A01", ZONE, AUTUMN),
        lambda: _load_xml(AUTUMN, lambda f: f.iloc[:96]),
        "dst_interval_count",
    ),
    (
        "load_in_gw",
        inbox_name("A65_A01", ZONE, D),
        lambda: _load_xml(D).replace(b">MAW<", b">GW<"),
        "unit_mismatch",
    ),
    (
        "price_in_eur_not_eur_per_mwh",
        inbox_name("A44", ZONE, PREV),
        lambda: _prices_xml(PREV).replace(
            b"<price_Measure_Unit.name>MWH</price_Measure_Unit.name>",
            b"<price_Measure_Unit.name>MAW</price_Measure_Unit.name>",
        ),
        "unit_mismatch",
    ),
    (
        "price_above_sdac_cap",
        inbox_name("A44", ZONE, PREV),
        lambda: _prices_xml(
            PREV, lambda f: f.assign(price_eur_mwh=f["price_eur_mwh"].where(f.index != 50, 4200.0))
        ),
        "price_out_of_bounds",
    ),
    (
        "price_below_sdac_floor",
        inbox_name("A44", ZONE, PREV),
        lambda: _prices_xml(
            PREV, lambda f: f.assign(price_eur_mwh=f["price_eur_mwh"].where(f.index != 7, -612.5))
        ),
        "price_out_of_bounds",
    ),
    (
        "malformed_weather_json",
        inbox_name("weather", ZONE, D),
        lambda: b'{"zone": "DE_LU", "hourly": [',
        "malformed_json",
    ),
    (
        "malformed_meter_csv",
        inbox_name("meter", ZONE, D - timedelta(days=2)),
        lambda: b"\x00\x01garbage",
        "malformed_csv",
    ),
    ("unknown_file", "notes.txt", lambda: b"hello", "unknown_format"),
]


@pytest.mark.parametrize(("case", "name", "make", "reason"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_quarantined_with_reason(
    settings: Settings, case: str, name: str, make, reason: str
) -> None:
    data = make()
    _drop(name, settings.inbox, data)

    report = ingest_inbox(settings, run_day=D)

    quarantined = _only_quarantine(settings)
    assert list(quarantined) == [name], case
    record = quarantined[name]
    assert record["reason"] == reason, record["message"]
    assert record["severity"] == "error"
    assert "\n" not in str(record["message"])
    assert record["message"]
    kept = next((settings.data_root / "quarantine").rglob(f"{name}.*[!n]"))
    assert kept.read_bytes() == data, "the raw bytes are kept"
    assert report.landed == []
    assert not (settings.data_root / "processed").exists() or not any(
        (settings.data_root / "processed").rglob("*.parquet")
    )
    assert not list(settings.inbox.glob("*")) or all(p.name.startswith(".") for p in settings.inbox.iterdir())
    with pytest.raises(IngestError, match=reason):
        report.raise_for_errors()


def test_stale_file_is_a_warning_in_a_daily_run_and_lands_in_history_mode(settings: Settings) -> None:
    old = D - timedelta(days=5)
    name = inbox_name("A44", ZONE, old)
    _drop(name, settings.inbox, _prices_xml(old, curve="A03"))
    publish_for_run(settings, D, settings.inbox)

    report = ingest_inbox(settings, run_day=D)

    assert report.errors == []
    assert [(q["file"], q["reason"], q["severity"]) for q in report.quarantined] == [
        (name, "stale", "warning")
    ]
    assert len(report.landed) == 6
    report.raise_for_errors()  # warnings do not fail the task

    _drop(name, settings.inbox, _prices_xml(old, curve="A03"))
    history = ingest_inbox(settings, run_day=D, history=True)
    assert [x["file"] for x in history.landed] == [name]
    assert Layout(settings.data_root).processed_file("day_ahead_prices", ZONE, old).exists()


def test_missing_required_inputs_fail_the_stage(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from tasks.cli import run_stage
    from tasks.config import get_settings

    get_settings.cache_clear()  # nothing filled the inbox
    code = run_stage(main, build_parser(), ["--delivery-date", D.isoformat()])
    err = capsys.readouterr().err
    assert code == 2
    assert "missing_required: day_ahead_prices of 2026-06-09" in err
    assert "load_forecast of 2026-06-10" in err


def test_cli_result_lists_landed_quarantined_processed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    from tasks.cli import run_stage

    monkeypatch.setenv("DAP_RESULT_FILE", str(tmp_path / "result.json"))
    fill_inbox(settings, D, zones=[ZONE])
    code = run_stage(main, build_parser(), ["--delivery-date", D.isoformat(), "--zone", ZONE])
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "result.json").read_text())
    assert {"landed", "quarantined", "processed", "errors"} <= set(result)
    assert len(result["landed"]) == 6
    assert len(result["processed"]) == 6


def test_zone_mapped_runs_take_only_their_files(settings: Settings) -> None:
    cfg = settings.model_copy(update={"zones": ("DE_LU", "BE")})
    publish_for_run(cfg, D, cfg.inbox)

    de = ingest_inbox(cfg, run_day=D, zone="DE_LU")
    assert all("_DE_LU_" in x["file"] for x in de.landed)
    assert len(de.landed) == 6
    remaining = sorted(p.name for p in cfg.inbox.iterdir() if p.is_file())
    assert len(remaining) == 6
    assert all("_BE_" in n for n in remaining)
    be = ingest_inbox(cfg, run_day=D, zone="BE")
    assert be.errors == []
    assert len(be.landed) == 6


def test_worker_pool_gives_the_same_result_as_one_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from devtools.simulator import publish_history
    from tasks import ingest

    monkeypatch.setattr(ingest, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(ingest, "CHUNK_FILES", 5)
    serial_cfg = settings.model_copy(update={"data_root": tmp_path / "serial"})
    for cfg in (settings, serial_cfg):
        publish_history(cfg, D, D + timedelta(days=2), cfg.inbox)
        _drop(inbox_name("A44", ZONE, D + timedelta(days=3)), cfg.inbox, b"<Publication_MarketDocument")
    pooled = ingest_inbox(settings, run_day=None, workers=2)
    serial = ingest_inbox(serial_cfg, run_day=None, workers=1)

    def strip(rows: list[dict[str, object]], root: Path) -> list[str]:
        return [json.dumps(r, sort_keys=True).replace(str(root), "ROOT") for r in rows]

    assert strip(pooled.landed, settings.data_root) == strip(serial.landed, serial_cfg.data_root)
    assert strip(pooled.quarantined, settings.data_root) == strip(serial.quarantined, serial_cfg.data_root)
    assert len(pooled.landed) == 18
    assert [q["reason"] for q in pooled.quarantined] == ["malformed_xml"]
    for rel in (
        p.relative_to(settings.data_root) for p in (settings.data_root / "processed").rglob("*.parquet")
    ):
        assert (settings.data_root / rel).read_bytes() == (serial_cfg.data_root / rel).read_bytes()


def test_parser_bug_quarantines_instead_of_losing_the_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.sources

    def broken(name: str, data: bytes) -> list[object]:
        raise KeyError("resolution")

    monkeypatch.setattr(tasks.sources, "parse_file", broken)
    name = inbox_name("A44", ZONE, PREV)
    _drop(name, settings.inbox, _prices_xml(PREV))
    report = ingest_inbox(settings, run_day=D)
    assert [(q["file"], q["reason"]) for q in report.quarantined] == [(name, "parser_crash")]
    assert "KeyError" in report.quarantined[0]["message"]


def test_leftover_claim_of_a_crashed_run_and_a_new_delivery_both_land(settings: Settings) -> None:
    name = inbox_name("A44", ZONE, PREV)
    claim = settings.inbox / ".claimed" / "zone=all"
    _drop(name, claim, _prices_xml(PREV))  # left behind by a run that died mid-way
    _drop(name, settings.inbox, _prices_xml(PREV, lambda f: f.assign(price_eur_mwh=f["price_eur_mwh"] + 3)))

    report = ingest_inbox(settings, run_day=D)

    assert [(x["file"], x["revision"], x["new"]) for x in report.landed] == [(name, 1, True), (name, 2, True)]
    assert not any(claim.iterdir())
    assert not any(p.is_file() for p in settings.inbox.iterdir())


def test_a_zone_not_traded_is_quarantined_as_a_warning(settings: Settings) -> None:
    be = settings.model_copy(update={"zones": ("BE",)})
    publish_for_run(be, D, settings.inbox)  # BE files arrive, but only DE_LU is configured

    report = ingest_inbox(settings, run_day=D)

    assert {q["reason"] for q in report.quarantined} == {"zone_not_configured"}
    assert len(report.quarantined) == 6
    assert all(q["severity"] == "warning" for q in report.quarantined)
    assert report.landed == []
    assert any(e.startswith("missing_required") for e in report.errors)  # DE_LU got nothing


def test_bad_redelivery_of_a_landed_file_is_a_warning(settings: Settings) -> None:
    run_ingest(settings, D)
    name = inbox_name("A44", ZONE, PREV)
    _drop(name, settings.inbox, _prices_xml(PREV)[:900])  # truncated re-delivery

    report = ingest_inbox(settings, run_day=D)

    assert report.errors == []
    [q] = report.quarantined
    assert (q["reason"], q["severity"]) == ("malformed_xml", "warning")
    assert "r001" in q["message"]
    prices = Layout(settings.data_root).processed_file("day_ahead_prices", ZONE, PREV)
    assert len(pd.read_parquet(prices)) == 96  # the landed revision stays in use


@pytest.mark.parametrize(
    ("fault", "data_day", "quarantined_file", "reason"),
    [
        (
            "price_above_cap",
            D - timedelta(days=1),
            f"entsoe_A44_{ZONE}_{D - timedelta(days=1)}.xml",
            "price_out_of_bounds",
        ),
        ("missing_interval", D, f"entsoe_A65_{ZONE}_{D}_A01.xml", "missing_intervals"),
        ("load_above_capacity", D, None, None),
    ],
)
def test_simulator_fault_drills(
    settings: Settings, fault: str, data_day: date, quarantined_file: str | None, reason: str | None
) -> None:
    """DAP_SIMULATOR_FAULTS publishes a bad delivery; each reaches its defence (docs/sources.md)."""
    clean = run_ingest(settings, D)
    assert clean.quarantined == []
    layout = Layout(settings.data_root)
    load_before = pd.read_parquet(layout.processed_file("load_forecast", ZONE, D))

    drill = SimulatorSettings(simulator_faults={f"{ZONE}:{data_day}": fault})
    fill_inbox(settings, D, sim=drill)
    report = ingest_stage(settings, D)
    quarantine = _only_quarantine(settings)
    if quarantined_file is None:
        # Well-formed: ingest lands it as a new revision; the input gate (GX limits) must stop it.
        assert report.quarantined == []
        load_after = pd.read_parquet(layout.processed_file("load_forecast", ZONE, D))
        ratio = load_after["load_mw"] / load_before["load_mw"]
        assert ratio.between(3.999, 4.001).all()  # the XML carries whole MW
        assert load_after["load_mw"].max() > 100000.0  # DE_LU load_max_mw in expectations/limits.json
    else:
        assert quarantine[quarantined_file]["reason"] == reason
        # Nothing of the bad delivery reached the processed zone: the clean revision stays.
        pd.testing.assert_frame_equal(
            pd.read_parquet(layout.processed_file("load_forecast", ZONE, D)), load_before
        )


def test_bootstrap_replays_a_csv_up_to_its_last_day(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay has no actuals: bootstrapping to the CSV's last day must not ask for days beyond it."""
    from devtools.bootstrap import bootstrap
    from tasks.config import get_settings
    from tests.unit.test_simulator import _epf_csv

    csv = _epf_csv(data_root.parent / "x.csv", ",Price,Load Forecast,PV+Wind Forecast", date(2016, 5, 1), 10)
    monkeypatch.setenv("DAP_SOURCE", "replay")
    monkeypatch.setenv("DAP_REPLAY_CSV", str(csv))
    monkeypatch.setenv("DAP_ZONES", ZONE)
    monkeypatch.setenv("DAP_MTU_MINUTES", "60")
    get_settings.cache_clear()
    settings = get_settings()
    result = bootstrap(settings, date(2016, 5, 1), date(2016, 5, 10), (ZONE,))
    layout = Layout(settings.data_root)
    assert layout.processed_file("day_ahead_prices", ZONE, date(2016, 5, 10)).is_file()
    assert result["feature_days"][ZONE] == 3  # 2016-05-08..10: lags reach back a week
    assert result["ingest"]["quarantined"] == 0


def test_bootstrap_replays_each_zone_from_its_own_csv(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DAP_REPLAY_CSVS: BE and DE_LU from their own files; BE's features carry DE_LU's forecasts."""
    import json

    from devtools.bootstrap import bootstrap
    from tasks.config import get_settings
    from tests.unit.test_simulator import _epf_csv

    first, last = date(2016, 5, 1), date(2016, 5, 10)
    be_csv = _epf_csv(
        data_root.parent / "be.csv", "Date, Prices, Generation forecast, System load forecast", first, 10
    )
    de_csv = _epf_csv(
        data_root.parent / "de.csv", ",Price,Ampirion Load Forecast,PV+Wind Forecast", first, 10
    )
    monkeypatch.setenv("DAP_SOURCE", "replay")
    monkeypatch.setenv("DAP_REPLAY_CSVS", json.dumps({"BE": str(be_csv), "DE_LU": str(de_csv)}))
    monkeypatch.setenv("DAP_ZONES", "BE,DE_LU")
    monkeypatch.setenv("DAP_MTU_MINUTES", "60")
    get_settings.cache_clear()
    settings = get_settings()
    result = bootstrap(settings, first, last, settings.zones)
    assert result["feature_days"] == {"BE": 3, "DE_LU": 3}
    layout = Layout(settings.data_root)
    load = {
        z: pd.read_parquet(layout.processed_file("load_forecast", z, last))["load_mw"]
        for z in ("BE", "DE_LU")
    }
    assert load["BE"].between(10_000, 20_000).all(), "BE's load: its own 'System load forecast'"
    assert load["DE_LU"].min() >= 50_000, "DE_LU's load: DE's 'Ampirion Load Forecast'"
    be = pd.read_parquet(layout.features_file("BE", last))
    assert be["DE_LU: load_mw"].tolist() == load["DE_LU"].tolist()
