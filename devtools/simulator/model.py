"""The market model: weather -> load, wind, solar -> day-ahead forecasts -> prices.

Every quantity of a day is computed on that day's quarter-hour grid (UTC
instants of the local market day, 92/96/100 steps) from deterministic
functions of absolute time and from per-day generators, so a day never
depends on which range was requested. Hourly data are the means of the four
quarter-hours (the market's 60-minute products are averages, too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from devtools.simulator.noise import ar1, day_rng, smooth_noise, stable_key
from tasks.datasets import SDAC_PRICE_CAP_EUR_MWH, SDAC_PRICE_FLOOR_EUR_MWH
from tasks.sources.zones import zone_info
from tasks.timeutil import day_bounds_utc

if TYPE_CHECKING:
    import pandas as pd

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
YEAR_DAYS = 365.25


@dataclass(frozen=True)
class ZoneParams:
    """Installed capacities (~2026) and demand/supply parameters of one bidding zone (MW, EUR)."""

    load_mean: float
    heat_mw_per_degc: float  # extra load per degree below 15 °C
    cool_mw_per_degc: float  # extra load per degree above 21 °C
    wind_onshore: float
    wind_offshore: float
    solar: float
    must_run: float  # biomass, run-of-river, must-run CHP
    nuclear: float
    lignite: float
    coal: float
    ccgt: float
    ocgt: float
    peakers: float  # oil, demand response
    export_cap: float  # net export capacity that absorbs surplus
    storage_flex: float  # pumped hydro + batteries flattening the daily residual load


PARAMS: dict[str, ZoneParams] = {
    "DE_LU": ZoneParams(
        load_mean=53_000,
        heat_mw_per_degc=450,
        cool_mw_per_degc=250,
        wind_onshore=62_000,
        wind_offshore=9_000,
        solar=100_000,
        must_run=11_000,
        nuclear=0,
        lignite=14_000,
        coal=9_000,
        ccgt=24_000,
        ocgt=9_000,
        peakers=4_000,
        export_cap=17_000,
        storage_flex=7_000,
    ),
    "BE": ZoneParams(
        load_mean=9_300,
        heat_mw_per_degc=120,
        cool_mw_per_degc=60,
        wind_onshore=3_600,
        wind_offshore=2_300,
        solar=11_000,
        must_run=3_000,
        nuclear=500,
        lignite=0,
        coal=0,
        ccgt=7_500,
        ocgt=1_500,
        peakers=800,
        export_cap=3_500,
        storage_flex=1_800,
    ),
    "NL": ZoneParams(
        load_mean=13_000,
        heat_mw_per_degc=120,
        cool_mw_per_degc=80,
        wind_onshore=7_000,
        wind_offshore=5_000,
        solar=28_000,
        must_run=1_500,
        nuclear=480,
        lignite=0,
        coal=3_000,
        ccgt=8_000,
        ocgt=2_000,
        peakers=800,
        export_cap=7_000,
        storage_flex=1_000,
    ),
    "FR": ZoneParams(
        load_mean=44_000,
        heat_mw_per_degc=1_900,
        cool_mw_per_degc=400,
        wind_onshore=25_000,
        wind_offshore=2_000,
        solar=25_000,
        must_run=10_000,
        nuclear=45_000,
        lignite=0,
        coal=0,
        ccgt=16_000,
        ocgt=6_000,
        peakers=4_000,
        export_cap=15_000,
        storage_flex=10_000,
    ),
    "AT": ZoneParams(
        load_mean=7_400,
        heat_mw_per_degc=80,
        cool_mw_per_degc=40,
        wind_onshore=4_200,
        wind_offshore=0,
        solar=9_000,
        must_run=4_500,
        nuclear=0,
        lignite=0,
        coal=0,
        ccgt=4_000,
        ocgt=800,
        peakers=500,
        export_cap=5_000,
        storage_flex=3_000,
    ),
}

# Weekday load shape by local hour (multiplies the zone's mean load).
_WEEKDAY = np.array(
    [
        0.82,
        0.79,
        0.77,
        0.76,
        0.77,
        0.81,
        0.90,
        1.00,
        1.06,
        1.08,
        1.09,
        1.10,
        1.09,
        1.07,
        1.06,
        1.05,
        1.05,
        1.07,
        1.08,
        1.06,
        1.02,
        0.97,
        0.92,
        0.86,
    ]
)
_SATURDAY = np.array(
    [
        0.82,
        0.79,
        0.77,
        0.75,
        0.74,
        0.75,
        0.79,
        0.85,
        0.91,
        0.96,
        0.98,
        0.99,
        0.98,
        0.95,
        0.93,
        0.92,
        0.93,
        0.96,
        0.99,
        0.98,
        0.95,
        0.92,
        0.88,
        0.84,
    ]
)
_SUNDAY = np.array(
    [
        0.80,
        0.77,
        0.74,
        0.72,
        0.71,
        0.71,
        0.73,
        0.77,
        0.82,
        0.87,
        0.90,
        0.92,
        0.91,
        0.88,
        0.86,
        0.86,
        0.88,
        0.92,
        0.96,
        0.96,
        0.94,
        0.91,
        0.87,
        0.83,
    ]
)


def params(zone: str) -> ZoneParams:
    zone_info(zone)  # ConfigError for an unknown zone
    return PARAMS[zone]


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays(country, years=year).keys())


def is_holiday(zone: str, day: date) -> bool:
    return day in _holidays(zone_info(zone).holiday_country, day.year)


@lru_cache(maxsize=8)
def default_retail_share(zone: str) -> float:
    """The retail load share of the repository's default portfolio (used when none is given)."""
    from tasks.config import DEFAULT_PORTFOLIO

    try:
        data = json.loads(DEFAULT_PORTFOLIO.read_text())
        for item in data.get("retail_loads", []):
            if item.get("zone") == zone:
                return float(item["share_of_system_load"])
    except (OSError, ValueError, KeyError):
        pass
    return 0.02


@dataclass
class DayTruth:
    """Quarter-hour arrays of one zone and day (UTC grid), before any aggregation."""

    zone: str
    day: date
    starts: list[datetime]
    weather: dict[str, dict[str, np.ndarray]]  # site -> {temperature_c, wind_speed_ms, ghi_w_m2}
    weather_fc: dict[str, dict[str, np.ndarray]]
    load: np.ndarray
    load_fc: np.ndarray
    wind_on: np.ndarray
    wind_off: np.ndarray
    solar: np.ndarray
    wind_on_fc: np.ndarray
    wind_off_fc: np.ndarray
    solar_fc: np.ndarray
    price: np.ndarray
    meters: dict[str, np.ndarray]  # meter id -> MW


def _clear_sky_ghi(lat: float, lon: float, t_hours: np.ndarray) -> np.ndarray:
    """Haurwitz clear-sky GHI (W/m²) from the sun's elevation at absolute time t."""
    days = t_hours / 24.0
    doy = (days % YEAR_DAYS) + 1  # close enough: epoch is 1 Jan
    gamma = 2 * np.pi * (doy - 1) / 365.0
    decl = 0.006918 - 0.399912 * np.cos(gamma) + 0.070257 * np.sin(gamma) - 0.006758 * np.cos(2 * gamma)
    eot = 229.18 * (
        0.000075
        + 0.001868 * np.cos(gamma)
        - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma)
        - 0.040849 * np.sin(2 * gamma)
    )
    solar_time = (t_hours % 24.0) + lon / 15.0 + eot / 60.0
    hour_angle = np.radians(15.0 * (solar_time - 12.0))
    phi = np.radians(lat)
    cos_z = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(hour_angle)
    cos_z = np.clip(cos_z, 0.0, None)
    with np.errstate(divide="ignore"):
        return np.where(cos_z > 0.01, 1098.0 * cos_z * np.exp(-0.057 / np.maximum(cos_z, 0.01)), 0.0)


def _season(doy: np.ndarray, peak_doy: float) -> np.ndarray:
    return np.cos(2 * np.pi * (doy - peak_doy) / YEAR_DAYS)


def _wind_cf(speed: np.ndarray, offshore: bool) -> np.ndarray:
    """Aggregated farm power curve: smooth S-curve, cut-out above 25 m/s."""
    centre, width = (10.0, 1.5) if offshore else (9.0, 1.55)
    cf = 1.0 / (1.0 + np.exp(-(speed - centre) / width))
    cf = np.where(speed < 3.0, 0.0, cf - 1.0 / (1.0 + np.exp(-(3.0 - centre) / width)))
    cut = np.clip((speed - 25.0) / 5.0, 0.0, 1.0)
    return np.clip(cf * (1.0 - cut), 0.0, 1.0)


def fuel_prices(zone: str, day: date, seed: int) -> tuple[float, float]:
    """Gas (EUR/MWh_th) and CO2 (EUR/t) of a day: seasonal level plus slow drift, a function of the date."""
    del zone  # one European gas hub (TTF) and one EUA market for all zones
    t = np.array([(day - EPOCH.date()).days * 24.0])
    doy = day.timetuple().tm_yday
    gas = (
        38.0
        + 6.0 * np.cos(2 * np.pi * (doy - 20) / YEAR_DAYS)
        + 5.0 * smooth_noise(stable_key(seed, "TTF"), t, 24 * 21)[0]
    )
    co2 = 78.0 + 8.0 * smooth_noise(stable_key(seed, "EUA"), t, 24 * 30)[0]
    return max(gas, 12.0), max(co2, 25.0)


def supply_curve(p: ZoneParams, gas: float, co2: float) -> tuple[np.ndarray, np.ndarray]:
    """Merit order as (thermal demand MW above must-run, price) points for np.interp.

    Negative thermal demand means surplus that neighbours absorb up to the
    export capacity; beyond it prices go negative (handled by the caller).
    """
    lignite = 6.0 + 1.12 * co2
    coal = 11.0 / 0.40 + 0.85 * co2
    ccgt_best = gas / 0.60 + 0.34 * co2
    ccgt_worst = gas / 0.42 + 0.48 * co2
    ocgt = gas / 0.33 + 0.60 * co2
    xs = [-p.export_cap, -0.6 * p.export_cap, -0.2 * p.export_cap, 0.0]
    ys = [-0.5, 10.0, 45.0, 65.0]
    cap = 0.0
    if p.nuclear:
        xs += [p.nuclear * 0.5, p.nuclear]
        ys += [18.0, 45.0]
        cap = p.nuclear
    for size, lo, hi in (
        (p.lignite, 0.7 * lignite, lignite),
        (p.coal, 0.9 * coal, coal),
        (p.ccgt, ccgt_best, ccgt_worst),
    ):
        if size:
            xs += [cap + 0.15 * size, cap + size]
            ys += [lo, hi]
            cap += size
    xs += [cap + p.ocgt, cap + p.ocgt + p.peakers]
    ys += [ocgt, 350.0]
    cap += p.ocgt + p.peakers
    # Imports and demand response before real scarcity, then the harmonised cap.
    xs += [cap + 0.08 * p.load_mean, cap + 0.12 * p.load_mean]
    ys += [900.0, SDAC_PRICE_CAP_EUR_MWH]
    ys_arr = np.maximum.accumulate(np.array(ys))
    return np.array(xs), ys_arr


def _price(
    p: ZoneParams, residual: np.ndarray, gas: float, co2: float, rng: np.random.Generator, *, spike: bool
) -> np.ndarray:
    thermal = residual - p.must_run
    # Storage shifts energy from cheap to dear hours: flatten around the day's mean.
    mean = thermal.mean()
    thermal = thermal - p.storage_flex * np.tanh((thermal - mean) / max(0.15 * p.load_mean, 1.0))
    xs, ys = supply_curve(p, gas, co2)
    price = np.interp(thermal, xs, ys)
    surplus = np.clip(-p.export_cap - thermal, 0.0, None) / 1000.0  # GW beyond export capacity
    scale = p.load_mean / 53_000
    # Beyond the export capacity, curtailment (direct marketers switch off below zero) bounds the fall:
    # most negative hours sit within a few EUR of zero; only a very deep surplus goes far below.
    rel = surplus / max(scale, 0.05)
    depth = 15.0 * (1.0 - np.exp(-rel / 4.0)) + 9.0 * np.clip(rel - 12.0, 0.0, None)
    price = np.where(surplus > 0, -0.5 - depth, price)
    n = len(price)
    noise = ar1(rng, n, 0.9, 0.05)
    price = np.where(price > 0, price * np.exp(noise), price + 3.0 * noise)
    price = price + rng.normal(0.0, 1.5, n)
    if spike:
        # Scarcity event: a tight evening (forced outages, low imports).
        centre = int(rng.integers(int(0.70 * n), int(0.82 * n)))
        width = max(int(rng.integers(1, 4) * n / 24), 1)
        factor = float(rng.uniform(1.8, 6.0))
        lo, hi = max(centre - width, 0), min(centre + width, n)
        price[lo:hi] = np.maximum(price[lo:hi], 60.0) * factor
    return np.clip(np.round(price, 2), SDAC_PRICE_FLOOR_EUR_MWH, SDAC_PRICE_CAP_EUR_MWH)


def _local_hours(starts: list[datetime], tz: str) -> tuple[np.ndarray, np.ndarray]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    local = [s.astimezone(zone) for s in starts]
    hours = np.array([t.hour + t.minute / 60.0 + 0.125 for t in local])
    doy = np.array([t.timetuple().tm_yday for t in local], dtype=float)
    return hours, doy


def _day_type_shape(zone: str, day: date, hours: np.ndarray) -> np.ndarray:
    if is_holiday(zone, day) or day.weekday() == 6:
        table = _SUNDAY
    elif day.weekday() == 5:
        table = _SATURDAY
    else:
        table = _WEEKDAY
    ext = np.concatenate([table, table[:1]])
    shape = np.interp(hours, np.arange(25), ext)
    if (day.month == 12 and day.day >= 24) or (day.month == 1 and day.day == 1):
        shape = shape * 0.9  # Christmas week: offices and industry closed
    return shape


def simulate_truth(
    zone: str, day: date, *, seed: int, tz: str, retail_share: float | None = None
) -> DayTruth:
    """All quarter-hour series of one zone and local day."""
    info = zone_info(zone)
    p = params(zone)
    start, end = day_bounds_utc(day, tz)
    n = int((end - start) / timedelta(minutes=15))
    starts = [start + timedelta(minutes=15 * i) for i in range(n)]
    t0 = (start - EPOCH).total_seconds() / 3600.0
    t = t0 + 0.25 * np.arange(n) + 0.125  # interval midpoints, hours since epoch
    hours, doy = _local_hours(starts, tz)
    winter = 0.5 * (1 + _season(doy, 15))  # 1 in mid-January, 0 in mid-July

    zkey = stable_key(seed, zone)
    synoptic_t = smooth_noise(stable_key(zkey, "temp"), t, 72.0)
    synoptic_w = smooth_noise(stable_key(zkey, "wind"), t, 40.0)
    synoptic_c = smooth_noise(stable_key(zkey, "cloud"), t, 30.0)

    rng_fc = day_rng(seed, zone, day, "weather_fc")
    weather: dict[str, dict[str, np.ndarray]] = {}
    weather_fc: dict[str, dict[str, np.ndarray]] = {}
    on_cf, off_cf, pv, temps = [], [], [], []
    for site in info.sites:
        skey = stable_key(zkey, site.id)
        local_t = smooth_noise(stable_key(skey, "t"), t, 20.0)
        mean_t = 9.7 + 0.55 * (51.0 - site.lat) - (1.0 if site.lon > 13 else 0.0)
        amp_t = 6.0 if site.offshore else 8.5 + 0.15 * (site.lon - 5)
        cloud = 1.0 / (
            1.0
            + np.exp(
                -(
                    1.1 * synoptic_c
                    + 0.7 * smooth_noise(stable_key(skey, "c"), t, 5.0)
                    + 0.5 * _season(doy, 180)
                    - 0.1
                )
            )
        )
        clear_index = 0.18 + 0.80 * cloud
        diurnal = (2.0 + 3.5 * (1 - winter)) * (0.4 + 0.6 * cloud) * (0.5 if site.offshore else 1.0)
        solar_hour = (t % 24.0) + site.lon / 15.0
        temp = (
            mean_t
            - amp_t * _season(doy, 20)
            + 3.2 * synoptic_t
            + 1.0 * local_t
            + diurnal * np.cos(2 * np.pi * (solar_hour - 15.0) / 24.0)
        )
        base_ws = 9.6 if site.offshore else 6.4
        ws = (
            base_ws
            * (0.80 + 0.36 * winter)
            * np.exp(0.42 * synoptic_w + 0.18 * smooth_noise(stable_key(skey, "w"), t, 10.0) - 0.1)
        )
        ws = np.clip(ws, 0.2, 40.0)
        ghi = _clear_sky_ghi(site.lat, site.lon, t) * clear_index
        weather[site.id] = {"temperature_c": temp, "wind_speed_ms": ws, "ghi_w_m2": ghi}
        # Day-ahead weather forecast: truth plus slowly varying model errors.
        weather_fc[site.id] = {
            "temperature_c": temp + ar1(rng_fc, n, 0.995, 0.9),
            "wind_speed_ms": np.clip(ws * np.exp(ar1(rng_fc, n, 0.995, 0.10)), 0.0, None),
            "ghi_w_m2": np.clip(ghi * np.exp(ar1(rng_fc, n, 0.99, 0.18)), 0.0, None),
        }
        if site.offshore:
            off_cf.append(_wind_cf(ws, True))
        else:
            on_cf.append(_wind_cf(ws * 1.05, False))
            cell = temp + 0.03 * ghi
            pv.append(ghi / 1000.0 * 0.80 * (1 - 0.004 * (cell - 25.0)))
            temps.append(temp)

    wind_on = p.wind_onshore * 0.95 * np.mean(on_cf, axis=0)
    wind_off = p.wind_offshore * 0.95 * np.mean(off_cf, axis=0) if off_cf else np.zeros(n)
    solar = np.minimum(p.solar * np.clip(np.mean(pv, axis=0), 0, None), 0.72 * p.solar)
    temp_zone = np.mean(temps, axis=0)

    # Load: day-type shape, heating/cooling, winter lighting, self-consumption of rooftop PV.
    rng_load = day_rng(seed, zone, day, "load")
    shape = _day_type_shape(zone, day, hours)
    lighting = 0.04 * winter * np.exp(-0.5 * ((hours - 17.8) / 1.3) ** 2)
    heat = p.heat_mw_per_degc * np.clip(15.0 - temp_zone, 0, None)
    cool = p.cool_mw_per_degc * np.clip(temp_zone - 21.0, 0, None)
    load = p.load_mean * (shape + lighting) * (1 + 0.03 * _season(doy, 15)) + heat + cool - 0.06 * solar
    load = load * (1 + ar1(rng_load, n, 0.97, 0.008))

    # TSO and RES forecasts for the day-ahead auction: truth + autocorrelated error.
    rng_res = day_rng(seed, zone, day, "res_fc")
    load_fc = load * (1 + ar1(rng_load, n, 0.995, 0.018))
    wind_cap = p.wind_onshore + p.wind_offshore
    wind = wind_on + wind_off
    wind_fc = np.clip(wind + ar1(rng_res, n, 0.995, 0.055 * wind_cap), 0.0, 0.97 * wind_cap)
    ratio = np.divide(wind_fc, wind, out=np.ones(n), where=wind > 1.0)
    wind_on_fc = np.where(wind > 1.0, wind_on * ratio, wind_fc * (p.wind_onshore / max(wind_cap, 1)))
    wind_off_fc = wind_fc - wind_on_fc
    solar_fc = np.clip(solar * np.exp(ar1(rng_res, n, 0.99, 0.12)), 0.0, 0.72 * p.solar)

    gas, co2 = fuel_prices(zone, day, seed)
    rng_price = day_rng(seed, zone, day, "price")
    spike = bool(rng_price.random() < 0.015 + 0.025 * winter.mean())
    residual = load_fc - wind_fc - solar_fc
    price = _price(p, residual, gas, co2, rng_price, spike=spike)

    meters = _meters(zone, seed, day, load, hours, retail_share=retail_share)
    return DayTruth(
        zone,
        day,
        starts,
        weather,
        weather_fc,
        load,
        load_fc,
        wind_on,
        wind_off,
        solar,
        wind_on_fc,
        wind_off_fc,
        solar_fc,
        price,
        meters,
    )


METER_KINDS = ("residential", "residential", "commercial", "commercial", "industrial")


def meter_ids(zone: str) -> list[str]:
    prefix = zone.replace("_", "")
    return [f"{prefix}-{kind[:3].upper()}-{i + 1:03d}" for i, kind in enumerate(METER_KINDS)]


def _meters(
    zone: str, seed: int, day: date, load: np.ndarray, hours: np.ndarray, *, retail_share: float | None
) -> dict[str, np.ndarray]:
    """Split the retail share of system load over a few meters; they always sum to the share."""
    share = default_retail_share(zone) if retail_share is None else retail_share
    ids = meter_ids(zone)
    weights = 0.5 + np.abs(np.array([np.sin(stable_key(seed, zone, m) % 1000) for m in ids]))
    rng = day_rng(seed, zone, day, "meters")
    weekend = day.weekday() >= 5 or is_holiday(zone, day)
    raw = []
    for kind, w in zip(METER_KINDS, weights, strict=True):
        if kind == "residential":
            shape = (
                1
                + 0.35 * np.exp(-0.5 * ((hours - 19.0) / 2.0) ** 2)
                - 0.2 * np.exp(-0.5 * ((hours - 4) / 2) ** 2)
            )
        elif kind == "commercial":
            shape = 1 + (0.1 if weekend else 0.45) * np.exp(-0.5 * ((hours - 12.5) / 3.5) ** 2)
        else:
            shape = np.full_like(hours, 0.8 if weekend else 1.1)
        raw.append(w * shape * np.exp(ar1(rng, len(hours), 0.9, 0.03)))
    stack = np.array(raw)
    fractions = stack / stack.sum(axis=0)
    return {m: share * load * f for m, f in zip(ids, fractions, strict=True)}


# --------------------------------------------------------------------------- frames


def _aggregate(values: np.ndarray, mtu_minutes: int) -> np.ndarray:
    if mtu_minutes == 15:
        return values
    if mtu_minutes != 60:
        raise ValueError(f"mtu_minutes must be 15 or 60, got {mtu_minutes}")
    return values.reshape(-1, 4).mean(axis=1)


def _grid(truth: DayTruth, mtu_minutes: int) -> pd.DatetimeIndex:
    import pandas as pd

    step = mtu_minutes // 15
    return pd.DatetimeIndex(truth.starts[::step]).tz_convert("UTC")


def frames_from_truth(truth: DayTruth, mtu_minutes: int) -> dict[str, pd.DataFrame]:
    """Processed-schema frames, plus ``renewables_forecast`` with ``wind_offshore_mw`` kept for writers."""
    import pandas as pd

    idx = _grid(truth, mtu_minutes)
    res = np.full(len(idx), mtu_minutes, dtype=np.int64)

    def frame(**cols: np.ndarray) -> pd.DataFrame:
        data = {"timestamp_utc": idx, "resolution_minutes": res}
        data.update({k: np.round(_aggregate(v, mtu_minutes), 3) for k, v in cols.items()})
        return pd.DataFrame(data)

    prices = frame(price_eur_mwh=truth.price)
    prices["price_eur_mwh"] = prices["price_eur_mwh"].round(2)
    out = {
        "day_ahead_prices": prices,
        "load_forecast": frame(load_mw=truth.load_fc),
        "load_actual": frame(load_mw=truth.load),
        "renewables_forecast": frame(
            wind_mw=truth.wind_on_fc + truth.wind_off_fc,
            solar_mw=truth.solar_fc,
            wind_offshore_mw=truth.wind_off_fc,
        ),
        "renewables_actual": frame(
            wind_mw=truth.wind_on + truth.wind_off, solar_mw=truth.solar, wind_offshore_mw=truth.wind_off
        ),
    }
    # Weather: hourly means per site (a service's hourly values), forecast issued on D-1.
    hourly = _grid(truth, 60)
    rows = []
    for site, series in truth.weather_fc.items():
        rows.append(
            pd.DataFrame(
                {
                    "timestamp_utc": hourly,
                    "resolution_minutes": np.full(len(hourly), 60, dtype=np.int64),
                    "location": site,
                    "temperature_c": np.round(_aggregate(series["temperature_c"], 60), 1),
                    "wind_speed_ms": np.round(_aggregate(series["wind_speed_ms"], 60), 2),
                    "ghi_w_m2": np.round(_aggregate(series["ghi_w_m2"], 60), 1),
                }
            )
        )
    out["weather_forecast"] = (
        pd.concat(rows, ignore_index=True)
        .sort_values(["timestamp_utc", "location"], kind="stable")
        .reset_index(drop=True)
    )
    quarter = _grid(truth, 15)
    meter_rows = [
        pd.DataFrame(
            {
                "timestamp_utc": quarter,
                "resolution_minutes": np.full(len(quarter), 15, dtype=np.int64),
                "meter_id": meter,
                "power_mw": np.round(values, 4),
            }
        )
        for meter, values in truth.meters.items()
    ]
    out["meter_readings"] = (
        pd.concat(meter_rows, ignore_index=True)
        .sort_values(["timestamp_utc", "meter_id"], kind="stable")
        .reset_index(drop=True)
    )
    return out


def simulate_frames(
    zone: str, day: date, *, seed: int, tz: str, mtu_minutes: int, retail_share: float | None = None
) -> dict[str, pd.DataFrame]:
    """Like simulate_day, but renewables frames keep ``wind_offshore_mw`` (the A69 writer splits B18/B19)."""
    if mtu_minutes not in (15, 60):
        raise ValueError(f"mtu_minutes must be 15 or 60, got {mtu_minutes}")
    truth = simulate_truth(zone, day, seed=seed, tz=tz, retail_share=retail_share)
    return frames_from_truth(truth, mtu_minutes)


def simulate_day(
    zone: str, day: date, *, seed: int, tz: str, mtu_minutes: int, retail_share: float | None = None
) -> dict[str, pd.DataFrame]:
    """Truth of one zone and local day, one frame per processed dataset (+ ``renewables_actual``).

    Columns follow ``tasks.datasets``; ``retail_share`` scales the meter readings
    (default: the repository portfolio's share for the zone).
    """
    frames = simulate_frames(zone, day, seed=seed, tz=tz, mtu_minutes=mtu_minutes, retail_share=retail_share)
    for key in ("renewables_forecast", "renewables_actual"):
        frames[key] = frames[key].drop(columns="wind_offshore_mw")
    return frames
