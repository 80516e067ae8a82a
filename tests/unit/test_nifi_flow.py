"""The versioned NiFi flow definition is self-consistent, asks the ENTSO-E API for what it
requires, takes the delivery day from Airflow and keeps secrets out of URLs and git.

Contract-level checks only: no NiFi can run here to import it (see nifi/README.md). The
InvokeHTTP URL templates are evaluated for every request object the flow can get (its
defaults and what Airflow sets for each zone) with the two Expression Language forms the
flow uses (``${attr}`` and the optional ``&name=`` append); anything else fails the test.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tasks.nifi.run_parameters import run_parameters
from tasks.sources.zones import ZONES

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
    assert "securityToken" not in FLOW.read_text(), "the token travels in a header, never in a URL"


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


#: ENTSO-E Transparency Platform RESTful API: required and optional query parameters of the
#: documents the flow fetches (A44 day-ahead prices [12.1.D], A65 system total load [6.1.A/B],
#: A69 wind and solar forecast [14.1.D]) and their allowed process types.
ENTSOE_API = {
    "A44": {
        "required": {"documentType", "in_Domain", "out_Domain", "periodStart", "periodEnd"},
        "optional": {"contract_MarketAgreement.type", "offset"},
        "processType": set(),
    },
    "A65": {
        "required": {"documentType", "processType", "outBiddingZone_Domain", "periodStart", "periodEnd"},
        "optional": set(),
        "processType": {"A01", "A16", "A31", "A32", "A33"},
    },
    "A69": {
        "required": {"documentType", "processType", "in_Domain", "periodStart", "periodEnd"},
        "optional": {"psrType"},
        "processType": {"A01", "A18", "A40"},
    },
}
#: Built-in processor properties NiFi treats as sensitive (may reference sensitive parameters).
SENSITIVE_BUILTIN = {"Password"}
#: NiFi 1.x property names and their NiFi 2.x names: a processor must carry one, not both.
RENAMED = {
    "canonical-value-lookup-cache-size": "Cache Value Lookup Cache Size",
    "character-set": "Character Set",
    "mime-type": "Mime Type",
}
OPTIONAL_APPEND = re.compile(
    r"\$\{(\w+):isEmpty\(\):not\(\):ifElse\(\$\{\1:prepend\('&([\w.]+)='\)\}, ''\)\}"
)


def _processors(flow: dict) -> dict[str, dict]:
    return {p["name"]: p for p in flow["flowContents"]["processors"]}


def _parameters(flow: dict) -> dict[str, dict]:
    return {p["name"]: p for p in flow["parameterContexts"]["day-ahead-ingest"]["parameters"]}


def _evaluate(template: str, parameters: dict[str, str], attributes: dict[str, str]) -> str:
    """The URL NiFi builds from ``template`` for one flowfile (the two EL forms the flow uses)."""
    url = re.sub(r"#\{([^}]+)\}", lambda m: parameters[m[1]], template)
    url = OPTIONAL_APPEND.sub(lambda m: f"&{m[2]}={attributes[m[1]]}" if attributes[m[1]] else "", url)
    url = re.sub(r"\$\{(\w+)\}", lambda m: attributes[m[1]], url)
    assert not re.search(r"[$#]\{", url), f"unevaluated expression left in {url}"
    return url


def _entsoe_attributes(flow: dict, request: dict[str, object]) -> dict[str, str]:
    """Flowfile attributes at InvokeHTTP: EvaluateJsonPath fields, then UpdateAttribute's."""
    procs = _processors(flow)
    paths = procs["Request fields to attributes"]["properties"]
    attrs = {}
    for name, path in paths.items():
        if isinstance(path, str) and path.startswith("$."):
            value = request.get(path[2:], "")  # Path Not Found -> empty string (flow setting)
            attrs[name] = str(value)
    for name in procs["Delivery window and inbox file name"]["properties"]:
        if name[0].islower():  # dynamic properties = attributes it sets (values: NiFi EL)
            attrs[name] = f"<{name}>"
    attrs["periodStart"], attrs["periodEnd"] = "202603272300", "202603282200"
    return attrs


def _request_lists(flow: dict) -> list[list[dict[str, object]]]:
    default = json.loads(_parameters(flow)["entsoe.requests"]["value"])
    per_zone = [
        json.loads(run_parameters(date(2026, 3, 29), [zone], ZONES[zone].tz)["entsoe.requests"])
        for zone in ZONES
    ]
    return [default, *per_zone]


def test_every_entsoe_request_carries_the_parameters_the_api_requires(flow: dict) -> None:
    procs = _processors(flow)
    params = {name: str(p["value"]) for name, p in _parameters(flow).items()}
    template = procs["GET ENTSO-E Transparency Platform"]["properties"]["HTTP URL"]
    seen = set()
    for requests in _request_lists(flow):
        for request in requests:
            url = _evaluate(template, params, _entsoe_attributes(flow, request))
            parts = urlsplit(url)
            assert f"{parts.scheme}://{parts.netloc}{parts.path}" == params["entsoe.base.url"]
            query = parse_qs(parts.query, keep_blank_values=True)
            assert all(len(v) == 1 and v[0] for v in query.values()), f"empty or repeated parameter: {url}"
            doc = query["documentType"][0]
            api = ENTSOE_API[doc]
            assert api["required"] <= set(query), f"{doc} misses {api['required'] - set(query)}: {url}"
            assert set(query) <= api["required"] | api["optional"], f"{doc} unknown: {url}"
            if api["processType"]:
                assert query["processType"][0] in api["processType"], url
            eics = {v[0] for k, v in query.items() if k.endswith("_Domain")}
            assert eics == {ZONES[str(request["zone"])].eic}, f"domains must be the zone's EIC: {url}"
            seen.add((doc, query.get("processType", [""])[0]))
    assert seen == {("A44", ""), ("A65", "A01"), ("A65", "A16"), ("A69", "A01")}


def test_the_url_check_catches_a_price_request_without_out_domain(flow: dict) -> None:
    params = {name: str(p["value"]) for name, p in _parameters(flow).items()}
    template = _processors(flow)["GET ENTSO-E Transparency Platform"]["properties"]["HTTP URL"]
    price = next(r for r in _request_lists(flow)[0] if r["documentType"] == "A44")
    url = _evaluate(template, params, _entsoe_attributes(flow, {**price, "outDomain": ""}))
    query = parse_qs(urlsplit(url).query)
    assert "out_Domain" not in query
    assert not ENTSOE_API["A44"]["required"] <= set(query)


def test_every_invokehttp_references_defined_parameters_and_attributes(flow: dict) -> None:
    params = _parameters(flow)
    procs = _processors(flow)
    produced = set()  # attributes some processor of the flow sets
    for proc in procs.values():
        if proc["type"].endswith(("EvaluateJsonPath", "UpdateAttribute")):
            produced |= {k for k in proc["properties"] if k[0].islower()}
    produced |= {"path", "filename"}  # ListSFTP / core attributes
    for proc in procs.values():
        if not proc["type"].endswith("InvokeHTTP"):
            continue
        url = proc["properties"]["HTTP URL"]
        assert set(re.findall(r"#\{([^}]+)\}", url)) <= set(params)
        assert set(re.findall(r"\$\{(\w+)", url)) <= produced, proc["name"]
        assert not any(params[p]["sensitive"] for p in re.findall(r"#\{([^}]+)\}", url)), (
            f"{proc['name']}: a sensitive parameter in the URL ends up in attributes and provenance"
        )


def test_secrets_travel_only_in_sensitive_properties(flow: dict) -> None:
    params = _parameters(flow)
    sensitive = {n for n, p in params.items() if p["sensitive"]}
    headers = {}
    for proc in _processors(flow).values():
        for name, value in proc["properties"].items():
            refs = set(re.findall(r"#\{([^}]+)\}", str(value or "")))
            if not refs & sensitive:
                continue
            descriptor = proc["propertyDescriptors"].get(name, {})
            assert descriptor.get("sensitive") or name in SENSITIVE_BUILTIN, f"{proc['name']}.{name}"
            assert value == f"#{{{(refs & sensitive).pop()}}}", (
                "a sensitive property holds only the reference"
            )
            if descriptor.get("dynamic"):
                headers[proc["name"]] = name
    assert headers == {
        "GET ENTSO-E Transparency Platform": "SECURITY_TOKEN",
        "GET weather forecast": "X-API-Key",
    }


def test_no_processor_carries_a_property_under_two_names(flow: dict) -> None:
    for proc in _processors(flow).values():
        names = set(proc["properties"])
        for old, new in RENAMED.items():
            assert not {old, new} <= names, f"{proc['name']}: {old!r} and {new!r}"


def test_the_delivery_day_and_zones_come_from_airflow(flow: dict) -> None:
    params = _parameters(flow)
    assert "now()" not in FLOW.read_text(), "NiFi's clock must not pick the delivery day"
    procs = _processors(flow)
    for name in ("Delivery window and inbox file name", "Weather file name"):
        assert procs[name]["properties"]["deliveryDay"] == "#{delivery.day}"
    # The defaults in git are what Airflow would set for DE_LU: the two cannot drift apart.
    airflow = run_parameters(date(2026, 3, 29), ["DE_LU"], "Europe/Berlin")
    for name in ("entsoe.requests", "weather.requests", "market.timezone"):
        assert params[name]["value"] == airflow[name], name
    assert set(airflow) <= set(params), "every parameter Airflow sets exists in the context"
    assert procs["Weather requests (one JSON per zone)"]["properties"]["Custom Text"] == "#{weather.requests}"
