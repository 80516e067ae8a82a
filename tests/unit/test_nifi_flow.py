"""The versioned NiFi flow definition is self-consistent and carries no secrets.

Static checks only: no NiFi can run here to import it (see nifi/README.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

FLOW = Path(__file__).resolve().parents[2] / "nifi" / "day_ahead_ingest.json"


@pytest.fixture(scope="module")
def flow() -> dict:
    return json.loads(FLOW.read_text())


def test_flow_definition_shape(flow: dict) -> None:
    contents = flow["flowContents"]
    assert contents["name"] == "day-ahead-ingest"  # Settings.nifi_process_group
    assert contents["componentType"] == "PROCESS_GROUP"
    assert contents["parameterContextName"] in flow["parameterContexts"]
    ids = {p["identifier"] for p in contents["processors"]}
    assert len(ids) == len(contents["processors"])
    for conn in contents["connections"]:
        assert conn["source"]["id"] in ids
        assert conn["destination"]["id"] in ids
        assert conn["selectedRelationships"]


def test_every_parameter_reference_is_defined_and_secrets_are_empty(flow: dict) -> None:
    params = {p["name"]: p for p in flow["parameterContexts"]["day-ahead-ingest"]["parameters"]}
    used = set(re.findall(r"#\{([^}]+)\}", json.dumps(flow["flowContents"])))
    assert used <= set(params), used - set(params)
    for name in ("entsoe.security.token", "weather.api.key", "meter.sftp.password"):
        assert params[name]["sensitive"] is True
        assert params[name]["value"] is None
    text = FLOW.read_text()
    assert "securityToken=#{entsoe.security.token}" in text


def test_files_go_into_the_inbox_with_contract_names(flow: dict) -> None:
    procs = {p["name"]: p for p in flow["flowContents"]["processors"]}
    puts = [p for p in procs.values() if p["type"].endswith("PutFile")]
    assert sum(p["properties"]["Directory"] == "#{inbox.dir}" for p in puts) == 3
    entsoe_name = procs["Delivery window and inbox file name"]["properties"]["filename"]
    assert entsoe_name == "entsoe_${documentType}_${zone}_${dataDay}${suffix}.xml"
    requests = json.loads(
        next(
            p
            for p in flow["parameterContexts"]["day-ahead-ingest"]["parameters"]
            if p["name"] == "entsoe.requests"
        )["value"]
    )
    kinds = {(r["documentType"], r["suffix"], r["dayOffset"]) for r in requests}
    assert kinds == {("A44", "", -1), ("A65", "_A01", 0), ("A65", "_A16", -2), ("A69", "_A01", 0)}
