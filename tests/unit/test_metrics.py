"""Stage metrics: what each stage reports, and that monitoring down never changes a stage's outcome."""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tasks.cli import base_parser, run_stage
from tasks.config import Settings, get_settings
from tasks.errors import ValidationFailed
from tasks.metrics import (
    METRICS,
    Group,
    StageRun,
    collect,
    exported_metric_names,
    grouping_key,
    push_stage_metrics,
)

pytestmark = pytest.mark.unit
DAY = date(2026, 3, 29)


def samples(groups: dict[str, Group]) -> dict[tuple[str, str], list[tuple[dict[str, str], float]]]:
    return {(zone, name): values for zone, g in groups.items() for name, values in g.samples.items()}


def test_generic_figures_and_deadline_of_every_stage() -> None:
    settings = Settings()
    got = samples(collect(StageRun("features", DAY, "BE", 1.5, 0, result={}), settings))
    assert got[("BE", "dap_stage_duration_seconds")] == [({}, 1.5)]
    assert got[("BE", "dap_stage_success")] == [({}, 1.0)]
    # Deadline 11:30 and gate closure 12:00 Berlin (CET) on D-1 = 10:30 / 11:00 UTC on 2026-03-28.
    assert got[("BE", "dap_schedule_deadline_timestamp_seconds")] == [({}, 1774693800.0)]
    assert got[("BE", "dap_gate_closure_timestamp_seconds")] == [({}, 1774695600.0)]


def test_stage_specific_figures_from_results_and_errors() -> None:
    settings = Settings()
    ingest = {
        "landed": [{"file": "a"}, {"file": "b"}],
        "quarantined": [{"reason": "bad_values"}, {"reason": "bad_values"}, {"reason": "unparseable"}],
        "processed": ["x"],
        "errors": [],
    }
    got = samples(collect(StageRun("ingest", DAY, "DE_LU", 3.0, 0, result=ingest), settings))
    assert got[("DE_LU", "dap_ingest_files_landed")] == [({}, 2.0)]
    assert got[("DE_LU", "dap_ingest_files_quarantined")] == [
        ({"reason": "bad_values"}, 2.0),
        ({"reason": "unparseable"}, 1.0),
    ]
    failed = ValidationFailed("gate", dataset="features", delivery_day="2026-03-29")
    got = samples(collect(StageRun("validate", DAY, "BE", 1.0, 2, error=failed), settings))
    assert got[("BE", "dap_gate_passed")] == [({"dataset": "features"}, 0.0)]
    assert got[("BE", "dap_stage_exit_code")] == [({}, 2.0)]
    schedule = {"zones": {"DE_LU": {"expected_margin_eur": 812.5, "energy_bought_mwh": 10.0}, "BE": {}}}
    got = samples(collect(StageRun("schedule", DAY, None, 4.0, 0, result=schedule), settings))
    assert got[("DE_LU", "dap_schedule_expected_margin_eur")] == [({}, 812.5)]
    assert ("all", "dap_stage_duration_seconds") in got  # day-level stage: generic figures under zone "all"
    forecast = {"model_version": 4, "model_trained_for": "2026-03-20", "model_holdout_mae": 9.5}
    got = samples(collect(StageRun("forecast", DAY, "DE_LU", 2.0, 0, result=forecast), settings))
    assert got[("DE_LU", "dap_model_age_days")] == [({}, 9.0)]
    train = samples(collect(StageRun("train", DAY, "DE_LU", 60.0, 0, result={"skipped": True}), settings))
    assert train[("DE_LU", "dap_training_ran")] == [({}, 0.0)]
    assert ("DE_LU", "dap_training_duration_seconds") not in train


def test_realise_reports_under_the_day_it_settled() -> None:
    result = {"skipped": False, "delivery_date": "2026-03-27", "zone": "DE_LU", "capture_ratio": 0.61}
    run = StageRun("realise", DAY, "DE_LU", 2.0, 0, result=result)
    assert grouping_key(run, "DE_LU") == {"stage": "realise", "zone": "DE_LU", "delivery_day": "2026-03-27"}
    assert samples(collect(run, Settings()))[("DE_LU", "dap_realised_capture_ratio")] == [({}, 0.61)]
    skipped = StageRun("realise", DAY, "DE_LU", 1.0, 0, result={"skipped": True, "delivery_date": None})
    assert "dap_realised_capture_ratio" not in collect(skipped, Settings())["DE_LU"].samples


def test_metric_definitions_are_the_registry() -> None:
    assert exported_metric_names() == {m.name for m in METRICS}
    assert all(m.name.startswith("dap_") for m in METRICS)
    with pytest.raises(KeyError):
        Group().set("dap_not_a_metric", 1.0)


def test_nothing_is_pushed_without_a_gateway() -> None:
    assert push_stage_metrics(StageRun("ingest", DAY, "DE_LU", 1.0, 0, result={}), Settings()) == 0


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a hung Pushgateway."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.integration
def test_a_hung_gateway_is_cut_off_by_the_timeout(
    silent_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(pushgateway_url=silent_server, pushgateway_timeout_s=0.3)
    started = time.perf_counter()
    assert push_stage_metrics(StageRun("ingest", DAY, "DE_LU", 1.0, 0, result={}), settings) == 0
    assert time.perf_counter() - started < 2.0
    assert "not pushed" in caplog.text
    assert "the stage result is unaffected" in caplog.text


@pytest.mark.integration
def test_stage_outcome_and_result_are_unchanged_when_the_gateway_is_down(
    data_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DAP_PUSHGATEWAY_URL", _closed_port())
    result_file = tmp_path / "return.json"
    monkeypatch.setenv("DAP_RESULT_FILE", str(result_file))
    get_settings.cache_clear()

    def ok(args: argparse.Namespace) -> dict[str, object]:
        return {"published": True, "day": args.delivery_date.isoformat()}

    def gate(args: argparse.Namespace) -> dict[str, object]:
        raise ValidationFailed("features gate failed", dataset="features")

    parser = base_parser("test stage")
    assert run_stage(ok, parser, ["--delivery-date", "2026-03-29"]) == 0
    assert json.loads(result_file.read_text()) == {"day": "2026-03-29", "published": True}
    assert run_stage(gate, parser, ["--delivery-date", "2026-03-29", "--zone", "BE"]) == 2
    assert caplog.text.count("not pushed") == 2
