"""The Grafana dashboard of the day-ahead pipeline, generated from code (grafanalib).

``make dashboard`` (``python monitoring/grafana/dashboard.py``) writes
``monitoring/grafana/day_ahead_pipeline.json``, the file to import or provision in Grafana;
tests/unit/test_dashboard.py regenerates it, compares it with the checked-in file and
checks that every query names a metric tasks/metrics.py exports.

Every stage pushes one group per zone and delivery day, and a Pushgateway keeps every
group, so "the latest day" panels keep a group for 24 h after its push
(``dap_stage_finished_timestamp_seconds`` of the same group): a daily metric then draws
as a step line over time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    BarGauge,
    Dashboard,
    GridPos,
    Stat,
    Table,
    Target,
    Template,
    Templating,
    Threshold,
    TimeSeries,
)

OUT = Path(__file__).with_name("day_ahead_pipeline.json")
DATASOURCE = "${datasource}"
ZONE = 'zone=~"$zone"'
#: Keep a group on the panels for a day after it was pushed (see the module docstring).
RECENT = "and on (job, stage, zone, delivery_day) (time() - dap_stage_finished_timestamp_seconds < 86400)"


def daily(expr: str, by: str = "zone") -> str:
    """The value of the newest pushed day of ``expr`` (per ``by``), held for 24 h."""
    return f"max by ({by}) ({expr} {RECENT})"


def target(expr: str, legend: str, ref: str = "A", *, instant: bool = False, table: bool = False) -> Target:
    return Target(
        expr=expr,
        legendFormat=legend,
        refId=ref,
        datasource=DATASOURCE,
        instant=instant,
        format="table" if table else "time_series",
    )


def at(x: int, y: int, w: int = 12, h: int = 8) -> GridPos:
    return GridPos(h=h, w=w, x=x, y=y)


def panels() -> list[object]:
    return [
        # Today's run against gate closure.
        BarGauge(
            title="Today's run: minutes before gate closure each stage finished",
            description="Gate closure minus the time each stage of the newest delivery day finished; "
            "under the publish deadline margin (30 min by default) the schedule is late.",
            dataSource=DATASOURCE,
            targets=[
                target(
                    daily(
                        f"(dap_gate_closure_timestamp_seconds{{{ZONE}}} - "
                        f"on (job, stage, zone, delivery_day) dap_stage_finished_timestamp_seconds{{{ZONE}}}) / 60",
                        by="stage, zone",
                    ),
                    "{{stage}} {{zone}}",
                    instant=True,
                )
            ],
            format="m",
            orientation="horizontal",
            thresholds=[Threshold("red", 0, 0.0), Threshold("orange", 1, 15.0), Threshold("green", 2, 30.0)],
            gridPos=at(0, 0),
        ),
        Stat(
            title="Schedule published: minutes before gate closure",
            dataSource=DATASOURCE,
            targets=[
                target(
                    daily("dap_schedule_publish_margin_seconds / 60", by="delivery_day"), "{{delivery_day}}"
                )
            ],
            format="m",
            thresholds=[
                {"color": "red", "value": None},
                {"color": "orange", "value": 0},
                {"color": "green", "value": 30},
            ],
            gridPos=at(12, 0, w=6),
        ),
        Stat(
            title="Failed stages (newest day)",
            dataSource=DATASOURCE,
            targets=[
                target(
                    f"count(({daily(f'dap_stage_success{{{ZONE}}}', by='stage, zone')}) == 0) or vector(0)",
                    "failed",
                )
            ],
            thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
            gridPos=at(18, 0, w=6),
        ),
        TimeSeries(
            title="Stage durations",
            dataSource=DATASOURCE,
            targets=[
                target(daily(f"dap_stage_duration_seconds{{{ZONE}}}", by="stage, zone"), "{{stage}} {{zone}}")
            ],
            unit="s",
            gridPos=at(0, 8),
        ),
        # Gates and quarantine.
        Table(
            title="Quality gates (newest day; 0 = failed)",
            dataSource=DATASOURCE,
            targets=[
                target(
                    daily(f"dap_gate_passed{{{ZONE}}}", by="zone, dataset, delivery_day"),
                    "",
                    instant=True,
                    table=True,
                )
            ],
            gridPos=at(12, 8),
        ),
        TimeSeries(
            title="Files quarantined by reason",
            dataSource=DATASOURCE,
            targets=[
                target(
                    daily(f"dap_ingest_files_quarantined{{{ZONE}}}", by="zone, reason"),
                    "{{zone}} {{reason}}",
                ),
                target(daily(f"dap_ingest_files_landed{{{ZONE}}}"), "{{zone}} landed", "B"),
            ],
            drawStyle="bars",
            gridPos=at(0, 16),
        ),
        # Model.
        TimeSeries(
            title="Champion age (days before the delivery day it forecast)",
            dataSource=DATASOURCE,
            targets=[target(daily(f"dap_model_age_days{{{ZONE}}}"), "{{zone}}")],
            unit="d",
            gridPos=at(12, 16),
        ),
        TimeSeries(
            title="Forecast error: realised MAE vs hold-out MAE of the champion",
            dataSource=DATASOURCE,
            targets=[
                target(daily(f"dap_realised_forecast_mae_eur_mwh{{{ZONE}}}"), "{{zone}} realised MAE"),
                target(
                    daily(f"dap_realised_forecast_mae_recent_mean_eur_mwh{{{ZONE}}}"),
                    "{{zone}} recent mean",
                    "B",
                ),
                target(daily(f"dap_champion_holdout_mae_eur_mwh{{{ZONE}}}"), "{{zone}} hold-out MAE", "C"),
            ],
            unit="currencyEUR",
            gridPos=at(0, 24),
        ),
        TimeSeries(
            title="P10-P90 coverage of the actual prices",
            dataSource=DATASOURCE,
            targets=[target(daily(f"dap_realised_interval_coverage_ratio{{{ZONE}}}"), "{{zone}}")],
            unit="percentunit",
            gridPos=at(12, 24),
        ),
        # Value.
        TimeSeries(
            title="Realised capture of perfect-foresight profit",
            dataSource=DATASOURCE,
            targets=[
                target(daily(f"dap_realised_capture_ratio{{{ZONE}}}"), "{{zone}} capture"),
                target(
                    daily(f"dap_realised_capture_ratio_recent_mean{{{ZONE}}}"), "{{zone}} recent mean", "B"
                ),
            ],
            unit="percentunit",
            gridPos=at(0, 32),
        ),
        TimeSeries(
            title="Expected vs realised margin (EUR per day)",
            dataSource=DATASOURCE,
            targets=[
                target(daily(f"dap_realised_expected_margin_eur{{{ZONE}}}"), "{{zone}} expected"),
                target(daily(f"dap_realised_profit_eur{{{ZONE}}}"), "{{zone}} realised", "B"),
                target(
                    daily(f"dap_realised_perfect_foresight_profit_eur{{{ZONE}}}"),
                    "{{zone}} perfect foresight",
                    "C",
                ),
            ],
            unit="currencyEUR",
            gridPos=at(12, 32),
        ),
        TimeSeries(
            title="Energy bought and sold by the schedule (MWh per day)",
            dataSource=DATASOURCE,
            targets=[
                target(daily(f"dap_schedule_energy_bought_mwh{{{ZONE}}}"), "{{zone}} bought"),
                target(daily(f"dap_schedule_energy_sold_mwh{{{ZONE}}}"), "{{zone}} sold", "B"),
                target(
                    daily(f"dap_schedule_expected_margin_eur{{{ZONE}}}"), "{{zone}} expected margin EUR", "C"
                ),
            ],
            gridPos=at(0, 40, w=24),
        ),
    ]


def dashboard() -> Dashboard:
    return Dashboard(
        title="Day-ahead pipeline",
        uid="day-ahead-pipeline",
        description="Run timeline against gate closure, gates and quarantine, model age and error, realised value.",
        tags=["day-ahead", "trading"],
        timezone="browser",
        refresh="1m",
        templating=Templating(
            list=[
                Template(name="datasource", query="prometheus", type="datasource", label="Prometheus"),
                Template(
                    name="zone",
                    query="label_values(dap_stage_success, zone)",
                    dataSource=DATASOURCE,
                    includeAll=True,
                    multi=True,
                    default="$__all",
                    label="Zone",
                ),
            ]
        ),
        panels=panels(),
    ).auto_panel_ids()


def render() -> str:
    return json.dumps(dashboard().to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
