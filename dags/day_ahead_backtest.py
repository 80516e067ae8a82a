"""Rolling backtest of the served price ensemble, one task per member and period.

Triggered by hand (no schedule) with the dataset and a work directory as params.
The same steps as ``python -m research.backtest`` (its default run), each a
``python -m research.ensemble_backtest <step> ...`` command through the stage
runner (dap_common.stages: a local process, or a pod on the kubernetes runner,
whose image must ship ``research/``): ``plan`` splits the test origins into
periods, ``search`` runs the DNN search on the window before the first
forecast day, ``member`` is mapped over every member and period, and
``combine`` scores the combination and writes ``metrics.json`` and
``forecasts.csv``. This file only wires.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from dap_common.stages import default_args, stage

from tasks.config import get_settings

settings = get_settings()
MODULE = "ensemble_backtest"


def _common(params: dict[str, Any]) -> list[str]:
    """The options every step receives, from the run's params."""
    args = ["--dataset", str(params["dataset"]), "--work", str(params["work"])]
    args += ["--test-days", str(params["test_days"]), "--periods", str(params["periods"])]
    args += ["--holidays", str(params["holidays"])]
    for key in ("market", "timezone", "last_day", "config", "retrain_every", "window_days"):
        if params.get(key) not in (None, ""):
            args += [f"--{key.replace('_', '-')}", str(params[key])]
    return args


@dag(
    dag_id="day_ahead_backtest",
    description="Rolling backtest of the served price ensemble: search, members x periods, combine.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={**default_args(settings), "retries": 0},
    params={
        "dataset": Param("", type="string", title="Hourly epftoolbox-layout CSV (a path the workers read)"),
        "work": Param("", type="string", title="Work directory the steps share (metrics.json lands here)"),
        "market": Param(None, type=["string", "null"], title="Market name (default: the file's stem)"),
        "timezone": Param(None, type=["string", "null"], title="IANA time zone of the file"),
        "holidays": Param("none", type="string", title="Holiday country code, 'auto' or 'none'"),
        "last_day": Param(
            None, type=["string", "null"], format="date", title="Last test day (default: the file's last day)"
        ),
        "config": Param(None, type=["string", "null"], title="JSON overriding models.json keys"),
        "test_days": Param(728, type="integer", minimum=8),
        "periods": Param(4, type="integer", minimum=1, title="Periods per member (mapped tasks)"),
        "retrain_every": Param(None, type=["integer", "null"], minimum=1),
        "window_days": Param(None, type=["integer", "null"], minimum=28),
    },
    tags=["day-ahead", "research", "backtest", f"runner:{settings.runner}"],
    doc_md=__doc__,
)
def day_ahead_backtest() -> None:
    @task(task_id="plan_args", retries=0)
    def plan_args() -> list[list[str]]:
        return [["plan", *_common(get_current_context()["params"])]]

    @task(task_id="step_args", retries=0)
    def step_args(step: str) -> list[list[str]]:
        return [[step, *_common(get_current_context()["params"])]]

    @task(task_id="member_args", retries=0)
    def member_args(plans: list[dict[str, Any]]) -> list[list[str]]:
        common = _common(get_current_context()["params"])
        return [["member", *common, *member] for member in plans[0]["tasks"]]

    run = stage(settings, "plan", MODULE, package="research").expand(arguments=plan_args())
    search = stage(settings, "search", MODULE, package="research").expand(
        arguments=step_args.override(task_id="search_args")("search")
    )
    members = stage(settings, "member", MODULE, package="research").expand(
        arguments=member_args(_output(run))
    )
    combine = stage(settings, "combine", MODULE, package="research").expand(
        arguments=step_args.override(task_id="combine_args")("combine")
    )
    run >> search >> members >> combine


def _output(task_or_arg: Any) -> Any:
    from dap_common.stages import output_of

    return output_of(task_or_arg)


day_ahead_backtest()
