"""The daily DAG's wiring, run for real with ``dag.test()`` over stub stage commands.

The stubs stand in for ``python -m tasks.<stage>`` (a ``tasks`` package placed first on
the child's path) and record the arguments each stage received. This checks what the
DAG passes between stages — delivery day from the logical date, per-zone mapping, the
training run id into evaluate/register — in seconds; the real stages run end to end in
tests/e2e.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

STUB = """
import json, os, sys
stage = __spec__.name.removesuffix(".__main__").split(".")[-1]
args = sys.argv[1:]
record = os.environ["STUB_RECORD"]
with open(record, "a") as f:
    f.write(json.dumps({"stage": stage, "args": args}) + "\\n")
zone = args[args.index("--zone") + 1] if "--zone" in args else None
dataset = args[args.index("--dataset") + 1] if "--dataset" in args else None
result = {"stage": stage, "zone": zone}
if stage == "train":
    result["run_id"] = None if zone == "BE" else f"run-{zone}"
    result["skipped"] = zone == "BE"
if stage == "publish" and os.environ.get("STUB_PUBLISH_FALLBACK"):
    result["fallback"] = {"source": "naive", "reason": "stub: no forecast of BE"}
# STUB_FAIL="stage[:dataset[:zone]],..." fails those calls as tasks.cli does on a PipelineError
# (an empty dataset matches any).
for spec in filter(None, (os.environ.get("STUB_FAIL") or "").split(",")):
    fail = spec.split(":")
    if fail[0] == stage and fail[1:2] in ([], [""], [dataset]) and fail[2:3] in ([], [zone]):
        print("ERROR ValidationFailed: stub gate failed", file=sys.stderr)
        sys.exit(2)
with open(os.environ["DAP_RESULT_FILE"], "w") as f:
    json.dump(result, f)
"""
STAGES = [
    "ingest",
    "validate",
    "features",
    "train",
    "evaluate",
    "register",
    "forecast",
    "fallback",
    "schedule",
    "publish",
    "realise",
]


@pytest.fixture
def stub_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "stubs" / "tasks"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for stage in STAGES:
        (pkg / f"{stage}.py").write_text(STUB)
    # The development upstream that fills the inbox: python -m devtools.simulator.
    simulator = tmp_path / "stubs" / "devtools" / "simulator"
    simulator.mkdir(parents=True)
    (simulator.parent / "__init__.py").write_text("")
    (simulator / "__init__.py").write_text("")
    (simulator / "__main__.py").write_text(STUB)
    record = tmp_path / "calls.jsonl"
    monkeypatch.chdir(tmp_path / "stubs")  # `python -m` puts the cwd first on the child's path
    monkeypatch.setenv("STUB_RECORD", str(record))
    monkeypatch.setenv("DAP_ZONES", "DE_LU,BE")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv(
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}"
    )
    return record


def _run_dag(
    tmp_path: Path, extra_env: dict[str, str], run_conf: dict | None = None
) -> tuple[str, list[dict], dict[str, list[str]]]:
    """Run the DAG in a fresh interpreter (Airflow reads its config at import).

    Returns the run state (``refused`` if Airflow would not create the run with
    ``run_conf``), the recorded stage calls and each task's final
    ``state/try_number`` per map index.
    """
    import subprocess

    code = f"""
import json, sys
sys.path[:0] = [{str(REPO)!r}, {str(REPO / "dags")!r}]
from datetime import datetime
from zoneinfo import ZoneInfo
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError
dag = DagBag({str(REPO / "dags")!r}).dags["day_ahead_daily"]
dag.deadline = None  # Airflow 3.3.2's dag.test() fails a successful run with a deadline (maintainers.md)
try:
    run = dag.test(
        logical_date=datetime(2026, 3, 28, 10, 15, tzinfo=ZoneInfo("Europe/Berlin")), run_conf={run_conf!r}
    )
except ParamValidationError as exc:
    print("TIS {{}}")
    print("STATE refused", str(exc).splitlines()[0], file=sys.stderr)
    print("STATE refused")
    raise SystemExit(0)
tis = {{}}
for ti in sorted(run.get_task_instances(), key=lambda t: (t.task_id, t.map_index)):
    tis.setdefault(ti.task_id, []).append(f"{{ti.state}}/{{ti.try_number}}")
print("TIS", json.dumps(tis))
print("STATE", run.state)
"""
    env = {**os.environ, **extra_env, "PYTHONPATH": f"{REPO}:{REPO / 'dags'}"}
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True, cwd=REPO
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    state = next((line.split()[-1] for line in out.stdout.splitlines() if line.startswith("STATE")), "")
    assert state, out.stdout[-2000:] + out.stderr[-4000:]
    tis_line = next(line for line in out.stdout.splitlines() if line.startswith("TIS "))
    record = Path(os.environ["STUB_RECORD"])
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return state, calls, json.loads(tis_line[len("TIS ") :])


@pytest.mark.slow
def test_stage_arguments_flow_through_the_dag(stub_tasks: Path, tmp_path: Path) -> None:
    state, calls, _ = _run_dag(tmp_path, {})
    assert state == "success"
    by_stage: dict[str, list[list[str]]] = {}
    for call in calls:
        by_stage.setdefault(call["stage"], []).append(call["args"])
    # Fired 2026-03-28 10:15 Berlin -> delivery day 2026-03-29 (the 23-hour spring DST day).
    assert sorted(by_stage["ingest"]) == [
        ["--delivery-date", "2026-03-29", "--zone", "BE"],
        ["--delivery-date", "2026-03-29", "--zone", "DE_LU"],
    ]
    # The simulator fills each zone's inbox before any ingest reads it.
    assert sorted(by_stage["simulator"]) == sorted(by_stage["ingest"])
    stages_in_order = [c["stage"] for c in calls]
    assert max(i for i, s in enumerate(stages_in_order) if s == "simulator") < stages_in_order.index("ingest")
    assert sorted(by_stage["train"])[0][0] == "--if-due"
    assert sorted(by_stage["evaluate"]) == [
        ["--delivery-date", "2026-03-29", "--zone", "BE", "--run-id", "none"],
        ["--delivery-date", "2026-03-29", "--zone", "DE_LU", "--run-id", "run-DE_LU"],
    ]
    assert by_stage["schedule"] == [["--delivery-date", "2026-03-29"]]
    assert by_stage["publish"] == [["--delivery-date", "2026-03-29"]]
    # Realised value: each zone settles the earliest pending day before D, once its inputs passed.
    assert sorted(by_stage["realise"]) == [
        ["--earliest-pending", "--delivery-date", "2026-03-29", "--zone", "BE"],
        ["--earliest-pending", "--delivery-date", "2026-03-29", "--zone", "DE_LU"],
    ]
    # BE's features read DE_LU's forecasts (neighbour_zones): no zone's features are built
    # before every zone's inputs passed their gate.
    order = [(c["stage"], c["args"][:2]) for c in calls]
    input_gates = [i for i, (stage, head) in enumerate(order) if stage == "validate" and head[1] == "inputs"]
    features = [i for i, (stage, _) in enumerate(order) if stage == "features"]
    assert len(input_gates) == len(features) == 2
    assert max(input_gates) < min(features)
    assert (
        sorted(a[:2] for a in by_stage["validate"])
        == [["--dataset", "features"]] * 2 + [["--dataset", "inputs"]] * 2 + [["--dataset", "schedule"]] * 2
    )


@pytest.mark.slow
def test_failed_gate_stops_the_run_before_publishing(stub_tasks: Path, tmp_path: Path) -> None:
    """BE's features gate exits 2 (PipelineError): it fails once, without retry, and nothing
    downstream runs — no training, forecast, schedule, schedule gate or publish for the day.
    """
    # A zero retry delay: were the gate failure retried, the retry would show here at once.
    state, calls, tis = _run_dag(
        # tasks.fallback refuses a gate-closed zone (exit 2), as the real stage does.
        tmp_path,
        {"STUB_FAIL": "validate:features:BE,fallback::BE", "DAP_RETRY_DELAY_MINUTES": "0"},
    )
    assert state == "failed"
    gate_calls = [c["args"] for c in calls if c["stage"] == "validate" and "features" in c["args"]]
    assert sorted(a[-1] for a in gate_calls) == ["BE", "DE_LU"], "each zone's gate ran exactly once"
    assert sorted(tis["validate_features"]) == ["failed/1", "success/1"]  # BE failed on try 1, no retry
    # The realised value of past days needs only the inputs gate, which passed.
    assert {c["stage"] for c in calls} == {
        "simulator",
        "ingest",
        "validate",
        "features",
        "fallback",
        "realise",
    }
    assert not [c for c in calls if c["stage"] == "validate" and "schedule" in c["args"]]
    for task_id in ("train_if_due", "forecast", "optimise_schedule", "validate_schedule", "publish_schedule"):
        assert set(tis[task_id]) == {"upstream_failed/0"}, (task_id, tis[task_id])


@pytest.mark.slow
def test_failed_forecast_publishes_a_flagged_fallback_and_fails_the_run(
    stub_tasks: Path, tmp_path: Path
) -> None:
    """BE's forecast fails for good: the fallback stage runs anyway (trigger rule all_done),
    the schedule is built, validated and published, and the last task turns the run red."""
    state, calls, tis = _run_dag(
        tmp_path,
        {"STUB_FAIL": "forecast::BE", "STUB_PUBLISH_FALLBACK": "1", "DAP_RETRY_DELAY_MINUTES": "0"},
    )
    assert sorted(tis["forecast"]) == ["failed/1", "success/1"]
    assert tis["fallback_forecast"] == ["success/1", "success/1"]
    for task_id in ("optimise_schedule", "validate_schedule", "publish_schedule"):
        assert {s.split("/")[0] for s in tis[task_id]} == {"success"}, (task_id, tis[task_id])
    assert sorted(c["args"][-1] for c in calls if c["stage"] == "fallback") == ["BE", "DE_LU"]
    assert tis["flag_fallback"] == ["failed/1"]
    assert state == "failed"


@pytest.mark.slow
def test_manual_run_schedules_the_delivery_date_param(stub_tasks: Path, tmp_path: Path) -> None:
    """``airflow dags trigger --conf '{"delivery_date": ...}'`` or the trigger form's date field."""
    state, calls, _ = _run_dag(tmp_path, {}, run_conf={"delivery_date": "2026-04-02"})
    assert state == "success"
    days = {
        c["args"][c["args"].index("--delivery-date") + 1] for c in calls if "--delivery-date" in c["args"]
    }
    assert days == {"2026-04-02"}, "every stage schedules the requested day, not the day after firing"
    assert {c["stage"] for c in calls} >= {"ingest", "schedule", "publish"}


@pytest.mark.slow
def test_manual_run_with_an_impossible_date_is_refused(stub_tasks: Path, tmp_path: Path) -> None:
    state, calls, _ = _run_dag(tmp_path, {}, run_conf={"delivery_date": "2026-02-30"})
    assert state == "refused"
    assert calls == [], "no stage ran"


@pytest.mark.slow
def test_late_sources_time_out_the_inbox_sensor_and_publish_a_flagged_fallback(
    stub_tasks: Path, tmp_path: Path
) -> None:
    """DAP_SOURCE=inbox and the upstream never delivers: wait_inbox waits its minute, fails
    (no retry: waiting longer is the timeout's job), ingest to forecast never run, the
    fallback stage writes each zone's forecast, the flagged schedule is validated and
    published, and the run ends red."""
    state, calls, tis = _run_dag(
        tmp_path,
        {
            "DAP_SOURCE": "inbox",
            "DAP_INBOX_WAIT_MINUTES": "1",
            "DAP_INBOX_POKE_SECONDS": "5",
            "DAP_DATA_ROOT": str(tmp_path / "data"),
            "STUB_PUBLISH_FALLBACK": "1",
            "DAP_RETRY_DELAY_MINUTES": "0",
        },
    )
    assert tis["wait_inbox"] == ["failed/1"]
    for task_id in ("ingest", "validate_inputs", "train_if_due", "forecast", "realise_value"):
        assert {s.split("/")[0] for s in tis[task_id]} == {"upstream_failed"}, (task_id, tis[task_id])
    assert tis["fallback_forecast"] == ["success/1", "success/1"]
    assert {c["stage"] for c in calls} == {"fallback", "schedule", "validate", "publish"}
    assert tis["publish_schedule"] == ["success/1"]
    assert tis["flag_fallback"] == ["failed/1"]
    assert state == "failed"
