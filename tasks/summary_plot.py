"""A one-page PNG for schedulers: prices with the forecast band, positions, state of charge."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def render_summary(schedule: pd.DataFrame, target: Path, title: str) -> Path:
    """Draw one column of three panels per zone; deterministic bytes (no timestamps in metadata)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    zones = sorted(schedule["zone"].unique())
    fig, axes = plt.subplots(3, len(zones), figsize=(7 * len(zones), 8), sharex="col", squeeze=False)
    for j, zone in enumerate(zones):
        rows = schedule[schedule["zone"] == zone]
        port = rows[rows["asset_type"] == "portfolio"].sort_values("mtu_index")
        x = port["delivery_start_utc"].dt.tz_convert(None)
        ax = axes[0][j]
        ax.fill_between(x, port["price_q10"], port["price_q90"], step="post", alpha=0.3, label="P10–P90")
        ax.step(x, port["price_q50"], where="post", label="P50")
        ax.set_ylabel("EUR/MWh")
        ax.set_title(f"{zone}: day-ahead price forecast")
        ax.legend(loc="upper right", fontsize=8)
        ax = axes[1][j]
        ax.step(x, port["position_mw"], where="post", label="net position (buy > 0)")
        ax.step(x, port["charge_mw"] - port["discharge_mw"], where="post", label="storage charge − discharge")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_ylabel("MW")
        ax.legend(loc="upper right", fontsize=8)
        ax = axes[2][j]
        for asset, unsorted in rows[rows["asset_type"] == "storage"].groupby("asset"):
            part = unsorted.sort_values("mtu_index")
            ax.step(
                part["delivery_start_utc"].dt.tz_convert(None), part["soc_mwh"], where="post", label=asset
            )
        ax.set_ylabel("state of charge, MWh (end of MTU)")
        ax.set_xlabel("delivery start (UTC)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    return target
