"""The schedulers' summaries (PNG and self-contained HTML) from a real LP schedule of a DST day."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.config import Portfolio, RetailLoad, StorageAsset
from tasks.schedule import build_zone
from tasks.summary_plot import SummaryInfo, render_html, render_summary, zone_label
from tasks.timeutil import mtu_starts_utc

pytestmark = pytest.mark.unit

DAY = date(2026, 10, 25)  # 25 hours: 100 quarter-hours, CEST then CET
TZ = "Europe/Berlin"
GATE = datetime(2026, 10, 24, 10, 0, tzinfo=UTC)  # 12:00 CEST


def schedule() -> tuple[pd.DataFrame, dict[str, float]]:
    starts = mtu_starts_utc(DAY, TZ, 15)
    x = np.arange(len(starts)) / len(starts)
    p50 = 60 + 40 * np.sin(4 * np.pi * x)
    forecast = pd.DataFrame(
        {
            "timestamp_utc": pd.DatetimeIndex(starts),
            "resolution_minutes": 15,
            "price_q10": p50 - 10,
            "price_q50": p50,
            "price_q90": p50 + 10,
            "load_mw": 40_000.0,
            "wind_mw": 5_000.0,
            "solar_mw": 0.0,
        }
    )
    portfolio = Portfolio(
        retail_loads=(RetailLoad(zone="DE_LU", share_of_system_load=0.02),),
        storage=(
            StorageAsset(name="bess", zone="DE_LU", power_mw=10, energy_mwh=20, round_trip_efficiency=0.9),
        ),
    )
    sched, _, figures = build_zone(
        DAY, "DE_LU", forecast, portfolio, tz=TZ, mtu_minutes=15, quantiles=(0.1, 0.5, 0.9)
    )
    return sched, figures


def info(figures: dict[str, float], fallback: object = None) -> SummaryInfo:
    manifest = {
        "delivery_date": DAY.isoformat(),
        "market_timezone": TZ,
        "figures": {"DE_LU": figures},
        "inputs": {"DE_LU": {"model_name": "day_ahead_price_DE_LU", "model_version": "7"}},
        "fallback": fallback,
    }
    return SummaryInfo.from_manifest(manifest, GATE)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v or "" for k, v in attrs if k in ("src", "href")]


def test_png_is_deterministic_and_html_self_contained(tmp_path: Path) -> None:
    sched, figures = schedule()
    zone_info = {"source": "naive", "reason": "champion failed to load", "reference_day": "2026-10-24"}
    summary = info(
        figures,
        {"reason": "DE_LU: champion failed to load", "source": "naive", "zones": {"DE_LU": zone_info}},
    )
    assert summary.zone_lines("DE_LU")[-1] == "FALLBACK forecast: naive"
    png = render_summary(sched, tmp_path / "a.png", summary)
    again = render_summary(sched, tmp_path / "b.png", summary)
    assert png.read_bytes() == again.read_bytes()
    page = render_html(sched, tmp_path / "s.html", summary, png).read_text()
    parser = Links()
    parser.feed(page)
    assert parser.refs
    assert all(ref.startswith("data:image/png;base64,") for ref in parser.refs)
    assert not re.search(r"https?://", page)
    assert "FALLBACK forecast (naive): DE_LU: champion failed to load" in page
    assert "Sat 24 Oct 2026 12:00 CEST" in page
    assert f"{figures['expected_margin_eur']:,.0f}" in page
    assert "day_ahead_price_DE_LU v7" in page
    rows = re.findall(r"<tr(?: class=neg)?><td class=l>(\d+)</td><td class=l>([^<]+)</td>", page)
    assert [int(i) for i, _ in rows] == list(range(100))
    # The repeated hour is told apart by its zone name.
    assert ("8", "02:00 CEST") in rows
    assert ("12", "02:00 CET") in rows


def test_no_fallback_no_banner_and_zone_label(tmp_path: Path) -> None:
    sched, figures = schedule()
    png = render_summary(sched, tmp_path / "a.png", info(figures))
    for flag in (None, {}):
        summary = info(figures, flag)
        assert summary.fallback_text() is None
        assert "FALLBACK" not in render_html(sched, tmp_path / "s.html", summary, png).read_text()
    assert zone_label(sched, TZ) == "CEST/CET"
    assert summary.zone_lines("DE_LU")[-1] == "model day_ahead_price_DE_LU v7"
