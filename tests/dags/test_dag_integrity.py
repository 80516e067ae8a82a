"""DAG integrity: every DAG imports cleanly, fast, without heavy libraries or DB/connection use."""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p for p in (REPO / "dags").glob("*.py"))
HEAVY = {
    "tensorflow",
    "great_expectations",
    "mlflow",
    "pandas",
    "tensorflow_data_validation",
    "keras",
    "pyarrow",
}

pytestmark = pytest.mark.integration


@pytest.mark.unit
@pytest.mark.parametrize(
    "path", DAG_FILES + sorted((REPO / "dags").glob("dap_common/*.py")), ids=lambda p: p.name
)
def test_no_heavy_import_at_top_level(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module.split(".")[0]]
        assert not set(names) & HEAVY, f"{path.name}:{node.lineno} imports {names} at top level"


# A fresh interpreter: Airflow and the provider imported first (as in a DAG processor),
# then the whole dags/ folder parsed. It reports parse time, import errors, the heavy
# modules that parsing pulled in, and whether parsing touched the metadata DB or a
# connection (both are patched to raise). A DAG with a cycle lands in the import errors
# (DagBag.bag_dag runs check_cycle), so "errors" == {} covers cycles for every DAG;
# test_daily_dag_structure also sorts the daily DAG topologically.
PARSE_PROBE = r"""
import json, sys, time, os
sys.path.insert(0, {dags!r})
import airflow, airflow.sdk
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator  # noqa: F401
from airflow.dag_processing.dagbag import DagBag
import airflow.settings as af_settings
touched = []
def _forbidden(*a, **k):
    touched.append("db-or-connection")
    raise RuntimeError("DB or connection used at parse time")
af_settings.Session = _forbidden
from airflow.sdk import BaseHook
BaseHook.get_connection = classmethod(lambda cls, *a, **k: _forbidden())
heavy = {heavy!r}
before = {{m for m in sys.modules if m.split(".")[0] in heavy}}
t0 = time.perf_counter()
bag = DagBag({dags!r}, safe_mode=False)
elapsed = time.perf_counter() - t0
after = {{m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}} - {{m.split(".")[0] for m in before}}
print("PROBE " + json.dumps({{
    "seconds": elapsed,
    "errors": {{k: v[-400:] for k, v in bag.import_errors.items()}},
    "dags": sorted(bag.dag_ids),
    "heavy": sorted(after),
    "touched": touched,
    "tasks": {{d.dag_id: len(d.tasks) for d in bag.dags.values()}},
}}))
"""


def _probe(env_overrides: dict[str, str] | None = None) -> dict:
    import os

    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'dags'}", **(env_overrides or {})}
    code = PARSE_PROBE.format(dags=str(REPO / "dags"), heavy=sorted(HEAVY))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("PROBE ")]
    assert lines, f"parse probe failed:\n{out.stderr[-3000:]}"
    return json.loads(lines[-1][len("PROBE ") :])


@pytest.mark.parametrize("runner", ["local", "kubernetes"])
def test_dagbag_imports_fast_and_clean(runner: str) -> None:
    result = _probe({"DAP_RUNNER": runner, "DAP_ZONES": "DE_LU,BE"})
    assert result["errors"] == {}
    assert "day_ahead_daily" in result["dags"]
    assert result["heavy"] == [], f"parsing imported heavy modules: {result['heavy']}"
    assert result["touched"] == []
    print(f"DagBag parse of dags/ with runner={runner}: {result['seconds']:.3f} s")
    # Parse-time target: <= 1 s with Airflow and the providers already imported.
    assert result["seconds"] <= 1.0


def test_daily_dag_structure() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(REPO / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["day_ahead_daily"]
    order = [
        "fill_inbox",  # the development upstream (simulator) in the default embedded mode
        "ingest",
        "validate_inputs",
        "build_features",
        "validate_features",
        "train_if_due",
        "evaluate",
        "register",
        "forecast",
        "fallback_forecast",
        "optimise_schedule",
        "validate_schedule",
        "publish_schedule",
    ]
    for upstream, downstream in itertools.pairwise(order):
        assert upstream in dag.get_task(downstream).upstream_task_ids, (upstream, downstream)
    # No cycles: a topological sort covers every task.
    assert len(dag.topological_sort()) == len(dag.tasks)
    assert dag.tags
    assert "day-ahead" in dag.tags
    assert dag.max_active_runs == 1
    for t in dag.tasks:
        assert t.owner == "energy-trading-data"
    assert (dag.get_task("train_if_due").retries or 0) >= 1
    assert "validate_inputs" in dag.get_task("realise_value").upstream_task_ids
    # The deadline and the failure notifier survive serialisation as the scheduler stores them.
    from airflow.serialization.serialized_objects import DagSerialization

    serialised = DagSerialization.serialize_dag(dag)
    (alert,) = serialised["deadline"]
    assert "dap_common.alerts.DayAheadAlert" in json.dumps(alert, default=str)
    assert serialised.get("has_on_failure_callback") is True
    assert not dag.get_task("realise_value").downstream_task_ids, "off the critical path to the schedule"


def test_nifi_mode_puts_the_flow_in_front_of_ingest(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseSensorOperator

    from tasks.config import get_settings

    monkeypatch.setenv("DAP_INGEST_MODE", "nifi")
    get_settings.cache_clear()
    try:
        bag = DagBag(str(REPO / "dags"))
    finally:
        get_settings.cache_clear()
    assert bag.import_errors == {}
    dag = bag.dags["day_ahead_daily"]
    ingest = dag.get_task("ingest")
    assert {"nifi_wait", "nifi_stop"} <= ingest.upstream_task_ids
    assert "fill_inbox" not in dag.task_ids, "NiFi fills the inbox: no simulator step"
    assert "nifi_start" in dag.get_task("nifi_wait").upstream_task_ids
    assert dag.get_task("nifi_stop").trigger_rule == "all_done"
    wait = dag.get_task("nifi_wait")
    assert isinstance(wait, BaseSensorOperator)
    assert wait.mode == "reschedule"
