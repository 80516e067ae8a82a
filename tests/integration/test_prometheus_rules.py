"""The alert rules and the Alertmanager routing example, checked by Prometheus's own tools.

``promtool check rules`` and ``promtool test rules`` (each rule shown firing and not firing in
monitoring/prometheus/tests/), ``amtool check-config`` and ``amtool config routes test`` on
monitoring/alertmanager/alertmanager.yml. The Debian packages come from tools/system_packages.sh.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tasks.metrics import exported_metric_names

REPO = Path(__file__).resolve().parents[2]
PROM = REPO / "monitoring" / "prometheus"
ALERTMANAGER = REPO / "monitoring" / "alertmanager" / "alertmanager.yml"
pytestmark = pytest.mark.integration


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (tools/system_packages.sh installs it)")
    return path


def _run(*argv: str, cwd: Path = REPO) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def _rules() -> list[dict]:
    return [
        rule
        for group in yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
        for rule in group["rules"]
    ]


def test_rules_are_valid() -> None:
    out = _run(_tool("promtool"), "check", "rules", str(PROM / "rules.yml"))
    assert f"SUCCESS: {len(_rules())} rules found" in out


def test_rule_unit_tests_pass() -> None:
    tests = sorted((PROM / "tests").glob("*.yml"))
    assert tests
    out = _run(_tool("promtool"), "test", "rules", *map(str, tests), cwd=PROM / "tests")
    assert "SUCCESS" in out
    assert "FAILED" not in out


def test_every_rule_is_tested_firing_and_silent() -> None:
    """Each alert has an expected firing and an expected empty evaluation in the unit tests."""
    fired: set[str] = set()
    silent: set[str] = set()
    for path in (PROM / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in _rules()}
    assert names - fired == set(), "never shown firing"
    assert names - silent == set(), "never shown silent"


def test_rules_query_exported_metrics() -> None:
    """Every dap_* name in a rule is a metric tasks/metrics.py exports (no typo silently never fires)."""
    exported = exported_metric_names()
    used = {name for rule in _rules() for name in re.findall(r"\bdap_[a-z0-9_]+", rule["expr"])}
    assert used
    assert used <= exported, used - exported


def test_alertmanager_example_is_valid_and_routes_by_severity() -> None:
    amtool = _tool("amtool")
    out = _run(amtool, "check-config", str(ALERTMANAGER))
    assert "SUCCESS" in out

    def receiver(*labels: str) -> str:
        text = _run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
        return [line for line in text.splitlines() if line and not line.startswith("Warning")][-1].strip()

    assert (
        receiver("severity=critical", "alertname=DapScheduleNotPublishedByDeadline") == "desk-and-operators"
    )
    assert receiver("severity=warning", "alertname=DapModelTooOld") == "ml-engineers"
    assert receiver("severity=warning", "alertname=DapIngestQuarantinedFiles") == "operators-mail"
