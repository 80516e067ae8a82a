"""The backtest DAG: it parses, its pods run the research command, and a run on an excerpt succeeds."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "fixtures" / "epf"
pytestmark = pytest.mark.integration

#: A tiny ensemble: the excerpt holds 120 days, the search is off, the networks and trees small.
TINY = {
    "lear": {"calibration_window_days": [28, None]},
    "dnn": {"hidden": [8], "epochs": 3, "patience": 2},
    "gbm": {"max_iter": 10, "intraday_profile": False},
    "ensemble": {
        "members": ["lear", "dnn", "gbm"],
        "combination": {
            "rule": "validation_weights",
            "validation_days": 7,
            "weight_step": 0.5,
            "margin": 0.01,
        },
    },
    "search": {"trials": 0, "validation_days": 14},
}


def test_dag_structure() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(REPO / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["day_ahead_backtest"]
    order = ["plan", "search", "member", "combine"]
    for upstream, downstream in itertools.pairwise(order):
        assert upstream in dag.get_task(downstream).upstream_task_ids, (upstream, downstream)
    assert "plan" in dag.get_task("member_args").upstream_task_ids  # members come from the plan's result
    assert dag.schedule is None or str(dag.timetable.summary) == "None"


def test_pods_run_the_research_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from dap_common.stages import pod_kwargs

    from tasks.config import get_settings

    monkeypatch.setenv("DAP_RUNNER", "kubernetes")
    get_settings.cache_clear()
    try:
        kwargs = pod_kwargs(get_settings(), "ensemble_backtest", (), "research")
        stage_kwargs = pod_kwargs(get_settings(), "train")
    finally:
        get_settings.cache_clear()
    assert kwargs["cmds"] == ["python", "-m", "research.ensemble_backtest"]
    assert kwargs["name"] == "dap-ensemble-backtest"  # a pod name has no underscores
    assert stage_kwargs["cmds"] == ["python", "-m", "tasks.train"]  # the pipeline's stages unchanged


@pytest.mark.slow
def test_mapped_tasks_run_under_dag_test_on_an_excerpt(tmp_path: Path) -> None:
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    work = tmp_path / "work"
    conf = {
        "dataset": str(FIX / "DE_excerpt.csv"),
        "work": str(work),
        "config": str(config),
        "test_days": 14,
        "periods": 2,
        "window_days": 56,
        "last_day": "2017-12-24",  # the test period ends a week before the file
    }
    code = f"""
import json, sys
sys.path[:0] = [{str(REPO)!r}, {str(REPO / "dags")!r}]
from airflow.dag_processing.dagbag import DagBag
dag = DagBag({str(REPO / "dags")!r}).dags["day_ahead_backtest"]
run = dag.test(run_conf={conf!r})
tis = {{}}
for ti in run.get_task_instances():
    tis.setdefault(ti.task_id, []).append(str(ti.state))
print("TIS", json.dumps(tis))
print("STATE", run.state)
"""
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}:{REPO / 'dags'}",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True, cwd=REPO
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, cwd=REPO
    )
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith(("TIS", "STATE"))}
    assert lines.get("STATE", "").endswith("success"), out.stdout[-3000:] + out.stderr[-4000:]
    tis = json.loads(lines["TIS"][len("TIS ") :])
    assert tis["member"] == ["success"] * 6  # dnn, lear, gbm x 2 periods
    assert len(tis["combine"]) == 1
    metrics = json.loads((work / "metrics.json").read_text())
    assert metrics["market"] == "DE_EXCERPT"  # the file's stem: never guessed from the columns
    assert (metrics["test_end"], metrics["data_until"]) == ("2017-12-24", "2017-12-24")
    assert metrics["published"] == {}
    assert set(metrics["definition"]["members"]) == {"lear", "dnn", "gbm"}
    assert {"naive", "lear", "dnn", "gbm", "ensemble"} <= set(metrics["metrics"])
    assert len(metrics["weights"]) == 2  # one combination per test origin (14 days, weekly)
    assert (work / "forecasts.csv").is_file()
