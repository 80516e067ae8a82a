"""Airflow's own metrics settings for the official Airflow chart: valid options of the installed Airflow.

The chart writes its ``config`` values into airflow.cfg. The official chart itself is not
vendored and there is no cluster here, so the test renders that section as the chart does
(one INI section per key), parses it with Airflow's own config parser and checks every
option against the installed Airflow's option catalogue (config_templates/config.yml).
The StatsD values are charts/airflow-metrics-values.yaml; the OpenTelemetry alternative is
the block in docs/operations.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "charts" / "airflow-metrics-values.yaml"
DOCS = REPO / "docs" / "operations.md"
pytestmark = pytest.mark.unit


def airflow_options() -> dict[str, set[str]]:
    import airflow.config_templates as templates

    catalogue = yaml.safe_load((Path(templates.__file__).parent / "config.yml").read_text())
    return {section: set(spec["options"]) for section, spec in catalogue.items()}


def render_cfg(config: dict[str, dict[str, Any]]) -> str:
    """airflow.cfg as the chart renders its ``config`` value."""
    lines = []
    for section, options in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def parsed(config: dict[str, dict[str, Any]]) -> Any:
    from airflow.configuration import AirflowConfigParser

    parser = AirflowConfigParser()
    parser.read_string(render_cfg(config))
    return parser


def otel_values() -> dict[str, Any]:
    blocks = re.findall(r"```yaml\n(# airflow-otel-values\n.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) == 1, "docs/operations.md has one ```yaml block starting '# airflow-otel-values'"
    values: dict[str, Any] = yaml.safe_load(blocks[0])
    return values


@pytest.mark.parametrize("source", ["statsd", "otel"])
def test_config_options_exist_in_the_installed_airflow(source: str) -> None:
    values = yaml.safe_load(VALUES.read_text()) if source == "statsd" else otel_values()
    known = airflow_options()
    for section, options in values["config"].items():
        assert section in known, f"unknown airflow.cfg section [{section}]"
        unknown = set(options) - known[section]
        assert not unknown, f"[{section}] has no options {sorted(unknown)} in Airflow's config.yml"


def test_statsd_values_parse_as_airflow_config() -> None:
    values = yaml.safe_load(VALUES.read_text())
    conf = parsed(values["config"])
    assert conf.getboolean("metrics", "statsd_on") is True
    assert conf.getint("metrics", "statsd_port") == 9125
    assert conf.get("metrics", "statsd_prefix") == "airflow"
    assert "deadline_alerts" in conf.get("metrics", "metrics_allow_list").split(",")
    assert values["statsd"]["enabled"] is True
    # Every exporter mapping names a Prometheus-legal metric.
    for mapping in values["statsd"]["extraMappings"]:
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", mapping["name"]), mapping
    assert values["triggerer"]["enabled"] is True, "deadline callbacks run in the triggerer"
    assert {s["envName"] for s in values["secret"]} == {"AIRFLOW_CONN_DAP_ALERTS_SMTP"}


def test_otel_values_parse_as_airflow_config() -> None:
    values = otel_values()
    conf = parsed(values["config"])
    assert conf.getboolean("metrics", "otel_on") is True
    assert conf.getboolean("metrics", "statsd_on") is False
    assert conf.getint("metrics", "otel_port") == 4318
    assert values["statsd"]["enabled"] is False
