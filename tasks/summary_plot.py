"""The schedulers' summary of one schedule version: a PNG and a self-contained HTML page.

Both are in market time (``market_timezone``, e.g. CET/CEST) and carry the key
figures of every zone (expected margin, MWh bought and sold, storage cycles, the
forecasting model's version, the fallback flag when the manifest has one) and the
gate closure on D-1. The PNG has per zone the prices with the P10–P90 band, the
net position, and the storage on its own axes (power, and state of charge on a
second axis), so a 10 MW battery does not vanish on an 800 MW position scale. The
HTML page embeds the PNG as a ``data:`` URI, its CSS inline and one table per
zone with every MTU: it opens offline. Both are deterministic bytes.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

GATE_COLOUR = "#b22222"
FALLBACK_COLOUR = "#b22222"


@dataclass(frozen=True)
class SummaryInfo:
    """What the summaries write beside the schedule rows (all from the manifest and the run)."""

    delivery_date: str
    market_timezone: str
    gate_closure_utc: datetime
    figures: dict[str, dict[str, float]] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    fallback: dict[str, Any] | None = None

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], gate_closure_utc: datetime) -> SummaryInfo:
        inputs = manifest.get("inputs", {})
        models = {
            zone: f"{rec.get('model_name') or '?'} v{rec.get('model_version') or '?'}"
            for zone, rec in inputs.items()
        }
        fallback = manifest.get("fallback")
        return cls(
            delivery_date=str(manifest["delivery_date"]),
            market_timezone=str(manifest["market_timezone"]),
            gate_closure_utc=gate_closure_utc,
            figures=dict(manifest.get("figures", {})),
            models=models,
            fallback=dict(fallback) if fallback else None,
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.market_timezone)

    def gate_closure_local(self) -> str:
        local = self.gate_closure_utc.astimezone(self.tz)
        return f"{local:%a %d %b %Y %H:%M} {local.tzname()}"

    def fallback_text(self) -> str | None:
        if not self.fallback:
            return None
        source = self.fallback.get("source", "?")
        reason = self.fallback.get("reason", "")
        return f"FALLBACK forecast ({source}): {reason}".rstrip(": ")

    def zone_lines(self, zone: str) -> list[str]:
        """The key figures of one zone, one short line each."""
        f = self.figures.get(zone, {})
        return [
            f"expected margin {f.get('expected_margin_eur', float('nan')):,.0f} EUR",
            f"bought {f.get('energy_bought_mwh', float('nan')):,.1f} MWh, sold {f.get('energy_sold_mwh', float('nan')):,.1f} MWh",
            f"storage cycles {f.get('storage_cycles', float('nan')):.2f}",
            f"model {self.models.get(zone, '?')}",
            *self._zone_fallback(zone),
        ]

    def _zone_fallback(self, zone: str) -> list[str]:
        """``FALLBACK forecast: naive`` for a zone whose forecast was a fallback (manifest 1.4 ``zones``)."""
        zones = (self.fallback or {}).get("zones") or {}
        info = zones.get(zone)
        return [f"FALLBACK forecast: {info.get('source', '?')}"] if info else []


def zone_label(schedule: pd.DataFrame, tz: str) -> str:
    """The time zone abbreviations of the day, e.g. ``CET/CEST`` on the spring DST day."""
    zone = ZoneInfo(tz)
    names: list[str] = []
    for ts in schedule["delivery_start_utc"]:
        name = ts.to_pydatetime().astimezone(zone).tzname() or tz
        if name not in names:
            names.append(name)
    return "/".join(names)


def _portfolio(schedule: pd.DataFrame, zone: str) -> pd.DataFrame:
    rows = schedule[(schedule["zone"] == zone) & (schedule["asset_type"] == "portfolio")]
    return rows.sort_values("mtu_index")


def _time_x(frame: pd.DataFrame) -> Any:
    """Naive UTC times: a real time axis (a DST day has 23 or 25 hours), labelled in market time."""
    return frame["delivery_start_utc"].dt.tz_convert("UTC").dt.tz_localize(None)


def _price_panel(ax: Axes, port: pd.DataFrame, x: Any, zone: str) -> None:
    ax.fill_between(x, port["price_q10"], port["price_q90"], step="post", alpha=0.3, label="P10–P90")
    ax.step(x, port["price_q50"], where="post", label="P50")
    ax.set_ylabel("EUR/MWh")
    ax.set_title(f"{zone}: day-ahead price forecast")
    ax.legend(loc="upper right", fontsize=8)


def _position_panel(ax: Axes, port: pd.DataFrame, x: Any) -> None:
    ax.step(x, port["position_mw"], where="post", label="net position (buy > 0)")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel("MW")
    ax.legend(loc="upper right", fontsize=8)


def _storage_panel(ax: Axes, rows: pd.DataFrame) -> None:
    """Charge − discharge per asset on the left axis, state of charge on the right one."""
    soc_ax = ax.twinx()
    storage = rows[rows["asset_type"] == "storage"]
    for asset, unsorted in storage.groupby("asset"):
        part = unsorted.sort_values("mtu_index")
        x = _time_x(part)
        ax.step(
            x, part["charge_mw"] - part["discharge_mw"], where="post", label=f"{asset} charge − discharge"
        )
        soc_ax.step(x, part["soc_mwh"], where="post", linestyle="--", label=f"{asset} state of charge")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel("storage MW")
    soc_ax.set_ylabel("MWh (end of MTU)")
    handles = ax.get_legend_handles_labels()[0] + soc_ax.get_legend_handles_labels()[0]
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no storage in this zone", transform=ax.transAxes, ha="center", va="center")


def render_summary(schedule: pd.DataFrame, target: Path, info: SummaryInfo) -> Path:
    """One column of three panels per zone, figures underneath; deterministic bytes (no metadata time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    zones = sorted(schedule["zone"].unique())
    fig, axes = plt.subplots(3, len(zones), figsize=(7 * len(zones), 9.5), sharex="col", squeeze=False)
    tz = info.market_timezone
    label = zone_label(schedule, tz)
    for j, zone in enumerate(zones):
        port = _portfolio(schedule, zone)
        x = _time_x(port)
        _price_panel(axes[0][j], port, x, zone)
        _position_panel(axes[1][j], port, x)
        _storage_panel(axes[2][j], schedule[schedule["zone"] == zone])
        axes[2][j].set_xlabel(f"delivery start, market time ({label})")
        axes[2][j].xaxis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, 3), tz=info.tz))
        axes[2][j].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=info.tz))
        axes[0][j].annotate(
            f"◀ gate closure {info.gate_closure_local()}",
            xy=(0, 1.0),
            xycoords="axes fraction",
            xytext=(2, -12),
            textcoords="offset points",
            color=GATE_COLOUR,
            fontsize=8,
        )
        axes[2][j].text(
            0.0,
            -0.32,
            "\n".join(info.zone_lines(zone)),
            transform=axes[2][j].transAxes,
            fontsize=9,
            va="top",
            family="monospace",
        )
    title = f"Day-ahead schedule {info.delivery_date} ({label}); gate closure {info.gate_closure_local()}"
    fig.suptitle(title, y=0.99)
    warning = info.fallback_text()
    if warning:
        fig.text(
            0.5, 0.945, warning, ha="center", va="top", color=FALLBACK_COLOUR, fontsize=11, weight="bold"
        )
    fig.tight_layout(rect=(0, 0.04, 1, 0.91 if warning else 0.95))
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    return target


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}
.fallback{background:#fde8e8;border:2px solid #b22222;color:#b22222;padding:.6em;font-weight:bold}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.15em .5em;text-align:right}
th{background:#f0f0f0;position:sticky;top:0}td.l,th.l{text-align:left}
tr.neg td.p{color:#1f5fa8}.figures td{font-weight:bold}
img{max-width:100%;border:1px solid #ddd}
"""

MTU_COLUMNS = (
    ("price_q10", "P10", "{:.2f}"),
    ("price_q50", "P50", "{:.2f}"),
    ("price_q90", "P90", "{:.2f}"),
    ("price_expected", "expected EUR/MWh", "{:.2f}"),
    ("position_mw", "net position MW", "{:.1f}"),
    ("retail_load_mw", "retail load MW", "{:.1f}"),
    ("renewables_mw", "own renewables MW", "{:.1f}"),
    ("charge_mw", "storage charge MW", "{:.2f}"),
    ("discharge_mw", "storage discharge MW", "{:.2f}"),
    ("soc_mwh", "state of charge MWh", "{:.2f}"),
)


def _figures_table(info: SummaryInfo, zones: list[str]) -> str:
    head = "".join(f"<th>{html.escape(z)}</th>" for z in zones)
    rows = []
    for key, label, fmt in (
        ("expected_margin_eur", "expected margin (EUR)", "{:,.0f}"),
        ("expected_cost_eur", "expected cost (EUR)", "{:,.0f}"),
        ("energy_bought_mwh", "bought (MWh)", "{:,.1f}"),
        ("energy_sold_mwh", "sold (MWh)", "{:,.1f}"),
        ("storage_cycles", "storage cycles", "{:.2f}"),
    ):
        cells = "".join(
            f"<td>{fmt.format(info.figures[z][key]) if key in info.figures.get(z, {}) else '–'}</td>"
            for z in zones
        )
        rows.append(f"<tr><td class=l>{label}</td>{cells}</tr>")
    models = "".join(f"<td>{html.escape(info.models.get(z, '?'))}</td>" for z in zones)
    rows.append(f"<tr><td class=l>model</td>{models}</tr>")
    return f"<table class=figures><tr><th class=l></th>{head}</tr>{''.join(rows)}</table>"


def _mtu_table(port: pd.DataFrame, tz: str) -> str:
    cols = [(c, label, fmt) for c, label, fmt in MTU_COLUMNS if c in port.columns]
    head = "<th class=l>MTU</th><th class=l>delivery start (local)</th>" + "".join(
        f"<th>{html.escape(label)}</th>" for _, label, _ in cols
    )
    zone = ZoneInfo(tz)
    body = []
    for row in port.itertuples(index=False):
        start = row.delivery_start_utc.to_pydatetime().astimezone(zone)
        cells = "".join(
            f"<td{' class=p' if c == 'position_mw' else ''}>{fmt.format(getattr(row, c))}</td>"
            for c, _, fmt in cols
        )
        css = " class=neg" if row.position_mw < 0 else ""
        body.append(f"<tr{css}><td class=l>{row.mtu_index}</td><td class=l>{start:%H:%M %Z}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(schedule: pd.DataFrame, target: Path, info: SummaryInfo, png: Path) -> Path:
    """A self-contained page (inline CSS, the PNG as a data: URI, no external link) with the same figures."""
    zones = sorted(schedule["zone"].unique())
    label = zone_label(schedule, info.market_timezone)
    image = base64.b64encode(png.read_bytes()).decode()
    title = f"Day-ahead schedule {info.delivery_date}"
    warning = info.fallback_text()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Market time {html.escape(label)} ({html.escape(info.market_timezone)}). "
        f"Gate closure: <strong>{html.escape(info.gate_closure_local())}</strong> "
        f"({info.gate_closure_utc.astimezone(UTC):%Y-%m-%d %H:%M} UTC).</p>",
    ]
    if warning:
        parts.append(f'<p class="fallback">{html.escape(warning)}</p>')
    parts += [
        "<h2>Key figures</h2>",
        _figures_table(info, zones),
        f'<img alt="schedule summary chart" src="data:image/png;base64,{image}">',
    ]
    for zone in zones:
        parts += [
            f"<h2>{html.escape(zone)}: every market time unit</h2>",
            _mtu_table(_portfolio(schedule, zone), info.market_timezone),
        ]
    parts.append("</body></html>\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(parts), encoding="utf-8")
    return target
