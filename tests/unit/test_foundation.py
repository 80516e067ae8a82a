"""Settings, delivery-day time grids, atomic storage and the local runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tasks import runner, storage, timeutil
from tasks.config import Settings, get_settings
from tasks.errors import ConfigError

pytestmark = pytest.mark.unit
BERLIN = "Europe/Berlin"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("day", "mtu", "expected"),
    [
        (date(2026, 3, 29), 15, 92),
        (date(2026, 3, 29), 60, 23),
        (date(2026, 10, 25), 15, 100),
        (date(2026, 10, 25), 60, 25),
        (date(2026, 11, 29), 15, 96),
        (date(2026, 11, 29), 60, 24),
    ],
)
def test_mtu_counts_follow_dst(day: date, mtu: int, expected: int) -> None:
    starts = timeutil.mtu_starts_utc(day, BERLIN, mtu)
    assert len(starts) == expected == timeutil.mtu_count(day, BERLIN, mtu)
    assert all(s.tzinfo is UTC for s in starts)
    assert starts[0].astimezone(ZoneInfo(BERLIN)).hour == 0


def test_delivery_day_is_the_local_day_after_the_run_fires() -> None:
    fired = datetime(2026, 11, 28, 10, 15, tzinfo=ZoneInfo(BERLIN))
    assert timeutil.delivery_day_for_run(fired, BERLIN) == date(2026, 11, 29)
    # 23:30 UTC on the 28th is already the 29th in Berlin.
    late = datetime(2026, 11, 28, 23, 30, tzinfo=UTC)
    assert timeutil.delivery_day_for_run(late, BERLIN) == date(2026, 11, 30)
    with pytest.raises(ValueError, match="timezone-aware"):
        timeutil.delivery_day_for_run(datetime(2026, 11, 28, 10), BERLIN)


def test_parse_day_error_is_actionable() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        timeutil.parse_day("28.11.2026")


def test_settings_env_overrides_and_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAP_ZONES", "DE_LU, BE")
    monkeypatch.setenv("DAP_MTU_MINUTES", "60")
    monkeypatch.setenv("DAP_QUANTILES", "[0.05, 0.5, 0.95]")
    s = Settings()
    assert s.zones == ("DE_LU", "BE")
    assert s.mtu_minutes == 60
    assert s.quantiles == (0.05, 0.5, 0.95)
    with pytest.raises(Exception, match="frozen"):
        s.mtu_minutes = 15  # type: ignore[misc]
    monkeypatch.setenv("DAP_MTU_MINUTES", "30")
    with pytest.raises(Exception, match="mtu_minutes"):
        Settings()


def test_neighbour_zones_from_env_are_read_only_where_ingested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAP_ZONES", "DE_LU,BE")
    assert Settings().neighbours_of("BE") == ("DE_LU",), "default: BE reads Germany's forecasts"
    monkeypatch.setenv("DAP_NEIGHBOUR_ZONES", '{"NL": ["BE", "FR", "DE_LU"]}')
    monkeypatch.setenv("DAP_ZONES", "NL,DE_LU,BE")
    s = Settings()
    assert s.neighbours_of("NL") == ("BE", "DE_LU"), "FR is not ingested: not a feature source"
    assert s.neighbours_of("BE") == ()
    monkeypatch.setenv("DAP_NEIGHBOUR_ZONES", '{"BE": ["BE"]}')
    with pytest.raises(ValueError, match="own neighbour"):
        Settings()


BAD_SETTINGS = [
    ("DAP_MTU_MINUTES", "7", "15 or 60"),
    ("DAP_MARKET_TIMEZONE", "Europe/Berlinn", "not an IANA time zone"),
    ("DAP_NEIGHBOUR_ZONES", "{bad", "cannot be parsed as JSON"),
    ("DAP_ZONES", "DE_LU,DE-LU", "unknown bidding zone 'DE-LU'; known: DE_LU, BE"),
    ("DAP_NEIGHBOUR_ZONES", '{"BE": ["DE"]}', "unknown bidding zone 'DE'"),
    ("DAP_QUANTILES", "0.1,0.9", "must contain the median 0.5"),
    ("DAP_QUANTILES", "0.5,0.1,0.9", "strictly increasing"),
    ("DAP_QUANTILES", "0,0.5,1", "strictly between 0 and 1"),
    ("DAP_PRICE_CAP_EUR_MWH", "-600", "DAP_PRICE_FLOOR_EUR_MWH < DAP_PRICE_CAP_EUR_MWH"),
    ("DAP_GATE_CLOSURE_LOCAL", "12h", "HH:MM"),
]


@pytest.mark.parametrize(("var", "value", "expected"), BAD_SETTINGS)
def test_settings_are_checked_when_they_load(
    var: str, value: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(var, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as info:
            get_settings()
    finally:
        get_settings.cache_clear()
    message = str(info.value)
    assert var in message
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("var", "value"),
    [("DAP_MTU_MINUTES", "7"), ("DAP_MARKET_TIMEZONE", "Europe/Berlinn"), ("DAP_NEIGHBOUR_ZONES", "{bad")],
)
def test_stage_cli_refuses_bad_settings_with_one_line_and_exit_2(
    var: str, value: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DAP_DATA_ROOT": str(tmp_path / "data"), var: value}
    proc = subprocess.run(
        [sys.executable, "-m", "tasks.publish", "--delivery-date", "2026-06-10"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("ERROR ConfigError: settings: " + var)


def test_portfolio_with_an_unknown_zone_or_a_bad_file_is_a_config_error(
    settings: Settings, tmp_path: Path
) -> None:
    raw = json.loads(settings.portfolio_file.read_text())
    raw["retail_loads"][0]["zone"] = "DE-LU"
    raw["storage"][1]["zone"] = "be"
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps(raw))
    mistyped = settings.model_copy(update={"portfolio_file": path})
    with pytest.raises(ConfigError) as info:
        mistyped.load_portfolio()
    message = str(info.value)
    assert "retail_loads[0].zone: unknown bidding zone 'DE-LU'; known: DE_LU, BE, NL, FR, AT" in message
    assert "storage[1] 'be-bess-1'.zone: unknown bidding zone 'be'" in message
    assert str(path) in message
    assert "DAP_PORTFOLIO_FILE" in message
    path.write_text('{"retail_loads": [')
    with pytest.raises(ConfigError, match="is not valid JSON"):
        mistyped.load_portfolio()
    with pytest.raises(ConfigError, match="cannot be read"):
        settings.model_copy(update={"portfolio_file": tmp_path / "absent.json"}).load_portfolio()


def test_portfolio_loads_and_splits_by_zone(settings: Settings) -> None:
    portfolio = settings.load_portfolio()
    de = portfolio.for_zone("DE_LU")
    assert de.storage
    assert {s.zone for s in de.storage} == {"DE_LU"}
    assert settings.tracking_uri.startswith("sqlite:///")


def test_atomic_write_keeps_previous_file_on_crash(tmp_path: Path) -> None:
    target = tmp_path / "out" / "schedule.json"
    storage.write_json_atomic(target, {"v": 1})

    class Crash(Exception):
        pass

    def crash_midway() -> None:
        with storage.atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise Crash

    with pytest.raises(Crash):
        crash_midway()
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in target.parent.iterdir()] == ["schedule.json"]


def test_local_runner_returns_result_and_classifies_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "tasks"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ok.py").write_text(
        "import json, os, sys\njson.dump({'args': sys.argv[1:]}, open(os.environ['DAP_RESULT_FILE'], 'w'))\n"
    )
    (pkg / "gate.py").write_text(
        "import sys\nprint('ERROR ValidationFailed: day 2026-11-29 failed', file=sys.stderr)\nsys.exit(2)\n"
    )
    (pkg / "crash.py").write_text("raise MemoryError('boom')\n")
    monkeypatch.chdir(tmp_path)
    assert runner.run_stage_command("ok", ["--delivery-date", "2026-11-29"]) == {
        "args": ["--delivery-date", "2026-11-29"]
    }
    with pytest.raises(runner.StageFailed) as gate:
        runner.run_stage_command("gate", [])
    assert not gate.value.retryable
    assert "ValidationFailed: day 2026-11-29 failed" in str(gate.value)
    with pytest.raises(runner.StageFailed) as crash:
        runner.run_stage_command("crash", [])
    assert crash.value.retryable
    assert runner.stage_command("ok", ["--x", 1])[0] == sys.executable


def test_a_stage_killed_by_a_native_abort_is_named_with_its_python_stack_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A C library aborting (SIGABRT) prints nothing of its own: the runner names the signal,
    the child's fault handler prints the Python stack, and the output's tail is logged at
    ERROR, which a WARNING log level still shows."""
    pkg = tmp_path / "tasks"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "aborts.py").write_text(
        "import os\nprint('building features', flush=True)\n"
        "def native_step():\n    os.abort()\nnative_step()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONFAULTHANDLER", raising=False)
    with caplog.at_level("WARNING", logger="tasks.runner"), pytest.raises(runner.StageFailed) as abort:
        runner.run_stage_command("aborts", [])
    assert abort.value.retryable
    assert "killed by SIGABRT" in str(abort.value)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "building features" in logged
    assert "native_step" in logged  # the fault handler's stack of the aborting thread


def test_failure_hint_names_the_signal_or_points_to_the_log() -> None:
    assert "SIGKILL" in runner.failure_hint(-9)
    assert "out-of-memory" in runner.failure_hint(-9)
    assert "SIGSEGV" in runner.failure_hint(-11)
    assert runner.failure_hint(1) == "see the task log above"


def test_unreachable_server_exits_75_and_the_runner_retries(capsys: pytest.CaptureFixture[str]) -> None:
    from tasks import cli
    from tasks.errors import PIPELINE_ERROR_EXIT, SERVICE_UNAVAILABLE_EXIT, ServiceUnavailable

    message = "MLflow tracking server http://mlflow:5000 is unreachable (connection refused); the task will be retried"

    def main(args: object) -> dict[str, object]:
        raise ServiceUnavailable(message)

    code = cli.run_stage(main, cli.base_parser("test stage"), ["--delivery-date", "2026-06-10"])
    assert code == SERVICE_UNAVAILABLE_EXIT
    assert code not in (0, PIPELINE_ERROR_EXIT)
    err = capsys.readouterr().err
    assert f"ERROR ServiceUnavailable: {message}\n" in err
    assert "Traceback" not in err
    assert runner.StageFailed("forecast", code, message).retryable
    assert not runner.StageFailed("forecast", PIPELINE_ERROR_EXIT, "no champion").retryable


EXIT_STAGE_PROBE = """
import atexit, logging, sys
from tasks.cli import exit_stage
logging.basicConfig(stream=sys.stderr, level=logging.INFO)
atexit.register(lambda: print("atexit handler ran", flush=True))
print("result line")  # block-buffered into a pipe: exit_stage must flush it
logging.getLogger("probe").info("log line")
exit_stage(3)
"""


def test_exit_stage_keeps_the_code_output_and_atexit_handlers_but_skips_teardown() -> None:
    """Stages end with os._exit (no interpreter teardown, where pyarrow's pool can abort)."""
    out = subprocess.run(
        [sys.executable, "-c", EXIT_STAGE_PROBE],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 3
    assert out.stdout.splitlines() == ["result line", "atexit handler ran"]
    assert "log line" in out.stderr


def test_every_stage_command_ends_with_exit_stage() -> None:
    """A stage that ended with sys.exit would run the teardown that can abort after its work is done."""
    import re

    repo = Path(__file__).resolve().parents[2]
    stages = [
        p for p in (repo / "tasks").glob("*.py") if p.name != "cli.py" and "run_stage(main" in p.read_text()
    ]
    assert len(stages) >= 10
    for path in stages:
        main_block = path.read_text().split('if __name__ == "__main__":', 1)[-1]
        assert re.search(r"^    exit_stage\(run_stage\(main, \w+\(\)\)\)$", main_block, re.M), path.name
