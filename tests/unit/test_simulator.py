"""Market simulator: determinism across ranges, DST day lengths, plausibility, publishing and replay."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devtools.settings import SimulatorSettings
from devtools.simulator import publish_for_run, publish_history, simulate_day
from devtools.simulator.model import PARAMS
from devtools.simulator.replay import replay_for_run, replay_history
from tasks.config import Settings
from tasks.datasets import BY_NAME
from tasks.errors import ConfigError, MissingInputError
from tasks.sources import parse_file

pytestmark = pytest.mark.unit

TZ = "Europe/Berlin"
DST_SHORT, DST_LONG, NORMAL = date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 27)


def _day(zone: str, day: date, mtu: int = 15, seed: int = 7) -> dict[str, pd.DataFrame]:
    return simulate_day(zone, day, seed=seed, tz=TZ, mtu_minutes=mtu)


def test_frames_follow_the_processed_schema() -> None:
    frames = _day("DE_LU", NORMAL)
    for name, spec in BY_NAME.items():
        frame = frames[name]
        extra = [c for c in spec.key_columns if c != "timestamp_utc"]
        assert list(frame.columns) == ["timestamp_utc", "resolution_minutes", *extra, *spec.value_columns], (
            name
        )
        assert str(frame["timestamp_utc"].dt.tz) == "UTC"
        assert frame["timestamp_utc"].is_monotonic_increasing
        assert not frame.duplicated(list(spec.key_columns)).any()
        assert frame[list(spec.value_columns)].notna().all().all()
    assert list(frames["renewables_actual"].columns) == [
        "timestamp_utc",
        "resolution_minutes",
        "wind_mw",
        "solar_mw",
    ]


@pytest.mark.parametrize(
    ("day", "quarters", "hours"), [(DST_SHORT, 92, 23), (NORMAL, 96, 24), (DST_LONG, 100, 25)]
)
def test_dst_day_lengths(day: date, quarters: int, hours: int) -> None:
    q = _day("DE_LU", day, 15)
    h = _day("DE_LU", day, 60)
    for name in (
        "day_ahead_prices",
        "load_forecast",
        "load_actual",
        "renewables_forecast",
        "renewables_actual",
    ):
        assert len(q[name]) == quarters, name
        assert len(h[name]) == hours, name
        assert (q[name]["resolution_minutes"] == 15).all()
        assert (h[name]["resolution_minutes"] == 60).all()
    sites = q["weather_forecast"]["location"].nunique()
    assert len(q["weather_forecast"]) == hours * sites
    assert len(h["meter_readings"]) == quarters * h["meter_readings"]["meter_id"].nunique()
    first = q["day_ahead_prices"]["timestamp_utc"].iloc[0]
    assert first.tz_convert(TZ).hour == 0


@pytest.mark.slow
def test_same_day_is_identical_whatever_the_range(tmp_path: Path) -> None:
    settings = Settings(data_root=tmp_path / "d", zones=("BE",), mtu_minutes=15)
    a = publish_history(settings, date(2026, 3, 20), date(2026, 3, 29), tmp_path / "a")
    b = publish_history(settings, date(2026, 3, 28), date(2026, 4, 2), tmp_path / "b")
    shared = {p.name for p in a} & {p.name for p in b}
    assert len(shared) == 2 * 6
    for name in shared:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    one = _day("BE", DST_SHORT)
    again = _day("BE", DST_SHORT)
    for name, frame in one.items():
        pd.testing.assert_frame_equal(frame, again[name])
    other_seed = _day("BE", DST_SHORT, seed=8)
    assert not np.allclose(
        one["day_ahead_prices"]["price_eur_mwh"], other_seed["day_ahead_prices"]["price_eur_mwh"]
    )


def test_quarter_hours_are_real_and_hours_are_their_mean() -> None:
    q = _day("DE_LU", NORMAL, 15)
    h = _day("DE_LU", NORMAL, 60)
    for name, column in (("load_actual", "load_mw"), ("day_ahead_prices", "price_eur_mwh"),
                         ("renewables_forecast", "wind_mw")):  # fmt: skip
        blocks = q[name][column].to_numpy().reshape(-1, 4)
        assert (blocks.std(axis=1) > 0).mean() > 0.9, f"{name} looks like hourly values repeated"
        np.testing.assert_allclose(blocks.mean(axis=1), h[name][column], atol=0.01)


def _month(zone: str, first: date, n_days: int) -> pd.DataFrame:
    rows = []
    for i in range(n_days):
        d = _day(zone, first + timedelta(days=i), 60)
        frame = d["day_ahead_prices"].copy()
        frame["load_mw"] = d["load_actual"]["load_mw"].to_numpy()
        frame["wind_mw"] = d["renewables_actual"]["wind_mw"].to_numpy()
        frame["solar_mw"] = d["renewables_actual"]["solar_mw"].to_numpy()
        frame["local_hour"] = frame["timestamp_utc"].dt.tz_convert(TZ).dt.hour
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


@pytest.mark.slow
def test_spring_month_is_plausible() -> None:
    month = _month("DE_LU", date(2026, 5, 1), 31)
    prices = month["price_eur_mwh"]
    assert prices.between(-500, 4000).all()
    assert (prices < 0).sum() >= 5, "a DE spring month with 100 GW of solar has negative-price hours"
    assert 20 < prices.mean() < 130
    assert month.groupby("local_hour")["price_eur_mwh"].mean().idxmin() in range(10, 16)  # solar dip
    assert month["load_mw"].min() > 30_000
    assert month["load_mw"].max() < 80_000
    night = month["local_hour"].isin([0, 1, 2, 3, 23])
    assert (month.loc[night, "solar_mw"] == 0).all()
    assert month.loc[~night, "solar_mw"].max() > 30_000
    residual = month["load_mw"] - month["wind_mw"] - month["solar_mw"]
    # Merit order: prices rise with residual load; negative prices only when renewables cover most load.
    assert np.corrcoef(residual, prices)[0, 1] > 0.7
    assert (residual[prices < 0] / month.loc[prices < 0, "load_mw"]).max() < 0.25
    p = PARAMS["DE_LU"]
    assert month["wind_mw"].between(0, p.wind_onshore + p.wind_offshore).all()
    assert month["solar_mw"].max() <= p.solar


@pytest.mark.slow
def test_winter_prices_and_load_are_higher_and_holidays_are_quieter() -> None:
    winter = _month("DE_LU", date(2026, 1, 12), 14)
    spring = _month("DE_LU", date(2026, 5, 4), 14)
    assert winter["load_mw"].mean() > spring["load_mw"].mean()
    assert 60 < winter["price_eur_mwh"].mean() < 160
    ascension = _day("DE_LU", date(2026, 5, 14), 60)["load_actual"]["load_mw"].mean()
    thursday = _day("DE_LU", date(2026, 5, 21), 60)["load_actual"]["load_mw"].mean()
    assert ascension < 0.93 * thursday


def test_meters_sum_to_the_retail_share() -> None:
    frames = simulate_day("BE", NORMAL, seed=7, tz=TZ, mtu_minutes=60, retail_share=0.05)
    meters = frames["meter_readings"].groupby("timestamp_utc")["power_mw"].sum()
    quarter_load = simulate_day("BE", NORMAL, seed=7, tz=TZ, mtu_minutes=15)["load_actual"]
    np.testing.assert_allclose(meters.to_numpy(), 0.05 * quarter_load["load_mw"].to_numpy(), rtol=1e-3)
    assert frames["meter_readings"]["meter_id"].nunique() >= 3


def test_unknown_zone_and_mtu_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown bidding zone"):
        simulate_day("XX", NORMAL, seed=1, tz=TZ, mtu_minutes=15)
    with pytest.raises(ValueError, match="mtu_minutes"):
        simulate_day("DE_LU", NORMAL, seed=1, tz=TZ, mtu_minutes=30)


@pytest.mark.slow
def test_publish_for_run_writes_what_was_published_by_gate_closure(tmp_path: Path) -> None:
    settings = Settings(data_root=tmp_path / "d", zones=("DE_LU", "BE"), mtu_minutes=15)
    d = NORMAL
    paths = publish_for_run(settings, d, tmp_path / "inbox")
    names = sorted(p.name for p in paths)
    expected = []
    for zone in ("BE", "DE_LU"):
        expected += [
            f"entsoe_A44_{zone}_{d - timedelta(days=1)}.xml",
            f"entsoe_A65_{zone}_{d - timedelta(days=2)}_A16.xml",
            f"entsoe_A65_{zone}_{d}_A01.xml",
            f"entsoe_A69_{zone}_{d}_A01.xml",
            f"meter_{zone}_{d - timedelta(days=2)}.csv",
            f"weather_{zone}_{d}.json",
        ]
    assert names == sorted(expected)
    seen = {}
    for path in paths:
        (doc,) = parse_file(path.name, path.read_bytes())
        assert doc.zone in path.name
        seen[(doc.zone, doc.dataset)] = doc.meta["data_days"]
    assert seen[("DE_LU", "day_ahead_prices")] == ["2026-11-26"]
    assert seen[("DE_LU", "load_actual")] == ["2026-11-25"]
    assert seen[("DE_LU", "meter_readings")] == ["2026-11-25"]
    assert seen[("BE", "weather_forecast")] == ["2026-11-27"]
    # Re-running replaces the files with the very same bytes.
    before = {p.name: p.read_bytes() for p in paths}
    publish_for_run(settings, d, tmp_path / "inbox", zones=["BE", "DE_LU"])
    assert before == {p.name: p.read_bytes() for p in paths}
    # Prices of D-1 published for the run of D equal the truth of D-1.
    (doc,) = parse_file("p.xml", (tmp_path / "inbox" / "entsoe_A44_BE_2026-11-26.xml").read_bytes())
    truth = simulate_day(
        "BE", date(2026, 11, 26), seed=SimulatorSettings().simulator_seed, tz=TZ, mtu_minutes=15
    )
    np.testing.assert_allclose(doc.frame["price_eur_mwh"], truth["day_ahead_prices"]["price_eur_mwh"])


def test_publish_history_reports_progress_and_uses_the_portfolio_share(tmp_path: Path) -> None:
    settings = Settings(data_root=tmp_path / "d", zones=("DE_LU",), mtu_minutes=60)
    calls: list[tuple[int, int]] = []
    paths = publish_history(settings, date(2026, 11, 1), date(2026, 11, 3), tmp_path / "in",
                            progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    assert len(paths) == 3 * 6
    assert calls[-1] == (3, 3)
    share = settings.load_portfolio().for_zone("DE_LU").retail_loads[0].share_of_system_load
    (meter,) = parse_file("m.csv", (tmp_path / "in" / "meter_DE_LU_2026-11-02.csv").read_bytes())
    (load,) = parse_file("l.xml", (tmp_path / "in" / "entsoe_A65_DE_LU_2026-11-02_A16.xml").read_bytes())
    hourly_meter = (
        meter.frame.groupby("timestamp_utc")["power_mw"].sum().to_numpy().reshape(-1, 4).mean(axis=1)
    )
    np.testing.assert_allclose(hourly_meter, share * load.frame["load_mw"].to_numpy(), rtol=2e-3)
    with pytest.raises(ValueError, match="after"):
        publish_history(settings, date(2026, 11, 3), date(2026, 11, 1), tmp_path / "in")


def test_cli_publishes_a_range_and_a_run(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from devtools.simulator.__main__ import main

    inbox = tmp_path / "inbox"
    assert main(["--first-day", "2026-11-01", "--last-day", "2026-11-02", "--zone", "BE", "--inbox", str(inbox),
                 "--seed", "3"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1].split(" ", 1)[1])
    assert result == {"files": 12, "inbox": str(inbox), "seed": 3, "source": "simulator", "zones": ["BE"]}
    assert main(["--delivery-date", "2026-11-05", "--zone", "BE", "--inbox", str(inbox)]) == 0
    assert (inbox / "entsoe_A44_BE_2026-11-04.xml").exists()
    assert main(["--zone", "BE"]) == 2
    assert "--first-day" in capsys.readouterr().err


# ------------------------------------------------------------------ replay


def _epf_csv(path: Path, header: str, first: date, n_days: int) -> Path:
    """An epftoolbox-layout CSV: 24 local-clock rows per day, DST days included (as in the real files)."""
    lines = [header]
    for i in range(n_days):
        d = first + timedelta(days=i)
        for h in range(24):
            lines.append(
                f"{d} {h:02d}:00:00,{i * 100 + h + 0.5},{50_000 + i * 100 + h},{10_000 + i * 100 + h}"
            )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("header", "load_offset"),
    [
        (",Price,Ampirion Load Forecast,PV+Wind Forecast", 50_000),
        ("Date, Prices, Generation forecast, System load forecast", 10_000),
    ],
)
def test_replay_maps_columns_and_dst_days(tmp_path: Path, header: str, load_offset: int) -> None:
    csv = _epf_csv(tmp_path / "x.csv", header, date(2016, 3, 26), 4)  # 2016-03-27 is a 23-hour day
    settings = Settings(data_root=tmp_path / "d", zones=("DE_LU",), mtu_minutes=60)
    paths = replay_history(settings, csv, date(2016, 3, 26), date(2016, 3, 29), tmp_path / "in")
    assert len(paths) == 4 * 3
    (prices,) = parse_file("p.xml", (tmp_path / "in" / "entsoe_A44_DE_LU_2016-03-27.xml").read_bytes())
    assert len(prices.frame) == 23
    local_hours = prices.frame["timestamp_utc"].dt.tz_convert(TZ).dt.hour.tolist()
    assert 2 not in local_hours  # the filler row for the hour that does not exist is dropped
    assert prices.frame["price_eur_mwh"].tolist() == [100 + h + 0.5 for h in local_hours]
    (load,) = parse_file("l.xml", (tmp_path / "in" / "entsoe_A65_DE_LU_2016-03-27_A01.xml").read_bytes())
    assert load.dataset == "load_forecast"
    assert load.frame["load_mw"].iloc[0] == load_offset + 100
    (res,) = parse_file("r.xml", (tmp_path / "in" / "entsoe_A69_DE_LU_2016-03-27_A01.xml").read_bytes())
    other = 60_000 - load_offset
    assert res.frame["wind_mw"].iloc[0] == other + 100
    assert (res.frame["solar_mw"] == 0).all()


def test_replay_long_dst_day_and_run_files(tmp_path: Path) -> None:
    csv = _epf_csv(tmp_path / "x.csv", ",Price,Load Forecast,Generation", date(2016, 10, 29), 3)
    settings = Settings(data_root=tmp_path / "d", zones=("BE",), mtu_minutes=60)
    paths = replay_for_run(settings, csv, date(2016, 10, 31), tmp_path / "in")
    assert sorted(p.name for p in paths) == [
        "entsoe_A44_BE_2016-10-30.xml", "entsoe_A65_BE_2016-10-31_A01.xml", "entsoe_A69_BE_2016-10-31_A01.xml",
    ]  # fmt: skip
    (prices,) = parse_file("p.xml", paths[0].read_bytes())
    assert len(prices.frame) == 25
    values = prices.frame["price_eur_mwh"].tolist()
    assert values[2] == values[3] == 100 + 2 + 0.5  # 02:00 CEST and 02:00 CET share the 02:00 row
    with pytest.raises(MissingInputError, match="no rows for 2016-11-01"):
        replay_for_run(settings, csv, date(2016, 11, 2), tmp_path / "in")
    with pytest.raises(ConfigError, match="does not exist"):
        replay_for_run(settings, tmp_path / "nope.csv", date(2016, 10, 31), tmp_path / "in")


def test_replay_of_the_committed_epf_excerpts(tmp_path: Path) -> None:
    excerpts = Path(__file__).resolve().parents[1] / "fixtures" / "epf"
    if not (excerpts / "DE_excerpt.csv").exists():
        pytest.skip("no epf excerpt fixtures in this checkout")
    frame = pd.read_csv(excerpts / "DE_excerpt.csv")
    first = pd.Timestamp(str(frame.iloc[0, 0])).date()
    settings = Settings(data_root=tmp_path / "d", zones=("DE_LU",), mtu_minutes=60)
    paths = replay_history(
        settings, excerpts / "DE_excerpt.csv", first, first + timedelta(days=1), tmp_path / "in"
    )
    for path in paths:
        (doc,) = parse_file(path.name, path.read_bytes())
        assert len(doc.frame) in (23, 24, 25)
    (prices,) = parse_file("p.xml", paths[0].read_bytes())
    assert prices.frame["price_eur_mwh"].iloc[0] == pytest.approx(float(str(frame.iloc[0, 1])))


def test_cli_replays_a_csv(tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from devtools.simulator.__main__ import main

    csv = _epf_csv(tmp_path / "x.csv", ",Price,Load Forecast,PV+Wind Forecast", date(2016, 5, 1), 3)
    args = ["--replay-csv", str(csv), "--first-day", "2016-05-01", "--last-day", "2016-05-03", "--zone", "NL"]
    assert main([*args, "--inbox", str(tmp_path / "in")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1].split(" ", 1)[1])
    assert (result["files"], result["source"]) == (9, "replay")
    assert (
        main(["--replay-csv", str(csv), "--delivery-date", "2016-05-09", "--inbox", str(tmp_path / "in")])
        == 2
    )
    assert "no rows for 2016-05-08" in capsys.readouterr().err


def test_replay_csv_per_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAP_REPLAY_CSV", "/data/DE.csv")
    monkeypatch.setenv("DAP_REPLAY_CSVS", '{"BE": "/data/BE.csv"}')
    s = SimulatorSettings()
    assert s.replay_csv_for("BE") == Path("/data/BE.csv")
    assert s.replay_csv_for("DE_LU") == Path("/data/DE.csv")
    monkeypatch.delenv("DAP_REPLAY_CSV")
    with pytest.raises(ConfigError, match="DAP_REPLAY_CSVS entry for zone DE_LU"):
        SimulatorSettings().replay_csv_for("DE_LU")


def test_fault_drills_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DAP_SIMULATOR_FAULTS", '{"BE:2026-10-26": "load_above_capacity", "2026-10-27": "missing_interval"}'
    )
    s = SimulatorSettings()
    assert s.fault_of("BE", "2026-10-26") == "load_above_capacity"
    assert s.fault_of("DE_LU", "2026-10-26") is None
    assert s.fault_of("DE_LU", "2026-10-27") == "missing_interval"  # a day without a zone: every zone
    monkeypatch.setenv("DAP_SIMULATOR_FAULTS", '{"2026-10-27": "meteor_strike"}')
    with pytest.raises(ValueError, match="simulator_faults"):
        SimulatorSettings()
