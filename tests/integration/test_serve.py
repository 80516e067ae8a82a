"""The schedule API (python -m tasks.serve) on a real uvicorn server on 127.0.0.1 over a published data root."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from devtools.sample_schedules import publish_day, write_forecast
from devtools.stack import free_port
from tasks.config import Settings
from tasks.optimise import Storage, optimise_zone
from tasks.schedule import run_schedule
from tests.helpers.serve import ApiDidNotStart, start_api

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOKENS = ("desk-token-1", "analyst-token-2")
NORMAL, SHORT = date(2026, 3, 28), date(2026, 3, 29)  # 96 and 92 quarter-hours (CET -> CEST)
ZONES = ("DE_LU", "BE")


@dataclasses.dataclass(frozen=True)
class Api:
    url: str
    root: Path
    settings: Settings

    def client(self, token: str | None = TOKENS[0]) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Two published days (one of them a 23-hour day), an unpublished v=002, and the API serving them."""
    root = tmp_path_factory.mktemp("serve") / "data"
    settings = Settings(data_root=root, zones=ZONES)
    publish_day(settings, NORMAL, seed=1)
    publish_day(settings, SHORT, seed=2)
    for k, zone in enumerate(ZONES):  # a newer version of NORMAL that is not published
        write_forecast(settings, zone, NORMAL, seed=50 + k)
    assert run_schedule(NORMAL, settings, log_mlflow=False)["version"] == "v=002"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        proc = start_api(root, port, {"DAP_ZONES": ",".join(ZONES), "DAP_API_TOKENS": ",".join(TOKENS)})
    except ApiDidNotStart as exc:
        pytest.fail(str(exc))
    try:
        yield Api(url, root, settings)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def version_dir(api: Api, day: date, version: str = "v=001") -> Path:
    return api.root / "schedules" / f"day={day}" / version


def one_line(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert "\n" not in detail
    for word in words:
        assert word in detail, detail
    return detail


def test_probes_metrics_and_openapi_need_no_token(api: Api) -> None:
    with api.client(token=None) as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/ready").json() == {"status": "ready"}
        paths = c.get("/openapi.json").json()["paths"]
        assert {"/v1/days", "/v1/days/{day}/schedule", "/v1/days/{day}/what-if"} <= set(paths)
        assert c.get("/docs").status_code == 404  # no CDN-backed pages
        with api.client() as authed:
            authed.get("/v1/days")
        metrics = c.get("/metrics").text
    assert 'dap_api_requests_total{method="GET",route="/v1/days",status="200"}' in metrics
    assert "dap_api_request_seconds_bucket" in metrics


def test_auth(api: Api) -> None:
    with api.client(token=None) as c:
        r = c.get("/v1/days")
        one_line(r, 401, "missing bearer token")
        assert r.headers["www-authenticate"] == "Bearer"
        one_line(c.get("/v1/days", headers={"Authorization": "Basic dXNlcjpwdw=="}), 401, "missing")
    with api.client(token="not-a-token") as c:
        one_line(c.get("/v1/days/2026-03-28/schedule"), 401, "invalid bearer token")
        one_line(c.post("/v1/days/2026-03-28/what-if", json={"zone": "DE_LU"}), 401, "invalid")
    with api.client(token=TOKENS[1]) as c:
        assert c.get("/v1/days").status_code == 200


def test_days(api: Api) -> None:
    with api.client() as c:
        days = c.get("/v1/days").json()["days"]
    assert days == [
        {"delivery_date": "2026-03-28", "published_version": "v=001", "versions": ["v=001", "v=002"]},
        {"delivery_date": "2026-03-29", "published_version": "v=001", "versions": ["v=001"]},
    ]


def test_schedule_in_three_formats_is_the_published_version(api: Api) -> None:
    vdir = version_dir(api, NORMAL)
    with api.client() as c:
        body = c.get("/v1/days/2026-03-28/schedule").json()
        csv = c.get("/v1/days/2026-03-28/schedule", headers={"Accept": "text/csv"})
        parquet = c.get("/v1/days/2026-03-28/schedule", headers={"Accept": "application/vnd.apache.parquet"})
        mixed = c.get("/v1/days/2026-03-28/schedule", headers={"Accept": "text/html;q=0.9, text/csv;q=0.5"})
    published = pd.read_parquet(vdir / "schedule.parquet")
    assert body["version"] == "v=001"
    assert len(body["rows"]) == len(published) == 96 * 2 * len(ZONES)
    rows = pd.DataFrame(body["rows"])
    assert np.allclose(rows["position_mw"], published["position_mw"])
    assert rows["delivery_start_utc"].iloc[0] == "2026-03-27T23:00:00Z"
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.content == (vdir / "schedule.csv").read_bytes()
    assert parquet.content == (vdir / "schedule.parquet").read_bytes()
    assert mixed.headers["content-type"].startswith("text/csv")


def test_zone_filter_version_bids_manifest(api: Api) -> None:
    with api.client() as c:
        be = c.get("/v1/days/2026-03-29/schedule", params={"zone": "BE"}, headers={"Accept": "text/csv"})
        v2 = c.get("/v1/days/2026-03-28/schedule", params={"version": "v=002"}).json()
        v1 = c.get("/v1/days/2026-03-28/schedule", params={"version": "1"}).json()
        bids = c.get("/v1/days/2026-03-29/bids", headers={"Accept": "text/csv"})
        manifest = c.get("/v1/days/2026-03-28/manifest", params={"version": "v=002"}).json()
    frame = pd.read_csv(io.BytesIO(be.content))
    assert set(frame["zone"]) == {"BE"}
    assert len(frame) == 92 * 2
    assert v2["version"] == "v=002"
    assert v1["version"] == "v=001"
    assert [r["position_mw"] for r in v1["rows"]] != [r["position_mw"] for r in v2["rows"]]
    assert bids.content == (version_dir(api, SHORT) / "bids.csv").read_bytes()
    assert manifest == json.loads((version_dir(api, NORMAL, "v=002") / "manifest.json").read_text())


def test_etags(api: Api) -> None:
    with api.client() as c:
        first = c.get("/v1/days/2026-03-28/schedule")
        etag = first.headers["etag"]
        again = c.get("/v1/days/2026-03-28/schedule", headers={"If-None-Match": etag})
        weak = c.get("/v1/days/2026-03-28/schedule", headers={"If-None-Match": f'"x", W/{etag}'})
        csv = c.get("/v1/days/2026-03-28/schedule", headers={"Accept": "text/csv", "If-None-Match": etag})
        other = c.get(
            "/v1/days/2026-03-28/schedule", params={"version": "v=002"}, headers={"If-None-Match": etag}
        )
        man = c.get("/v1/days/2026-03-28/manifest")
        man_again = c.get("/v1/days/2026-03-28/manifest", headers={"If-None-Match": man.headers["etag"]})
    assert first.status_code == 200
    assert first.headers["cache-control"] == "private, no-cache"  # latest can move
    assert again.status_code == 304
    assert again.content == b""
    assert weak.status_code == 304
    assert csv.status_code == 200
    assert csv.headers["etag"] != etag
    assert other.status_code == 200
    assert "immutable" in other.headers["cache-control"]
    assert man_again.status_code == 304


def test_forecast(api: Api) -> None:
    with api.client() as c:
        body = c.get("/v1/days/2026-03-29/forecast/DE_LU").json()
        parquet = c.get("/v1/days/2026-03-29/forecast/BE", headers={"Accept": "application/x-parquet"})
        missing = c.get("/v1/days/2026-03-30/forecast/DE_LU")
    assert body["quantiles"] == [0.1, 0.5, 0.9]
    assert len(body["rows"]) == 92
    assert {"price_q10", "price_q50", "price_q90"} <= set(body["rows"][0])
    file = api.root / "forecasts" / "zone=BE" / "2026-03-29.parquet"
    assert pd.read_parquet(io.BytesIO(parquet.content)).equals(pd.read_parquet(file))
    one_line(missing, 404, "no forecast for zone DE_LU on 2026-03-30")


def test_error_statuses(api: Api) -> None:
    with api.client() as c:
        one_line(c.get("/v1/days/2026-01-01/schedule"), 404, "no schedule for delivery day 2026-01-01")
        one_line(c.get("/v1/days/2026-3-28/schedule"), 422, "malformed delivery date", "YYYY-MM-DD")
        one_line(c.get("/v1/days/2026-02-30/bids"), 422, "malformed delivery date")
        one_line(c.get("/v1/days/2026-03-28/schedule", params={"version": "v2"}), 422, "malformed version")
        one_line(
            c.get("/v1/days/2026-03-28/schedule", params={"version": "v=009"}), 404, "v=009 of 2026-03-28"
        )
        one_line(c.get("/v1/days/2026-03-28/schedule", params={"zone": "FR"}), 404, "zone 'FR'")
        one_line(c.get("/v1/days/2026-03-28/schedule", headers={"Accept": "image/png"}), 406, "image/png")
        one_line(
            c.post("/v1/days/2026-13-01/what-if", json={"zone": "DE_LU"}), 422, "malformed delivery date"
        )


# --- what-if ---


def assets_of(api: Api, zone: str) -> list[Storage]:
    return [Storage.from_asset(a) for a in api.settings.load_portfolio().storage if a.zone == zone]


def portfolio_rows(api: Api, day: date, zone: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    sched = pd.read_parquet(version_dir(api, day) / "schedule.parquet")
    rows = sched[sched["zone"] == zone]
    return rows[rows["asset_type"] == "portfolio"].sort_values("mtu_index"), rows


def assert_same(body: dict[str, Any], direct: Any) -> None:
    got = {a["asset"]: a for a in body["assets"]}
    for k, name in enumerate(got):
        assert np.allclose(got[name]["charge_mw"], direct.charge_mw[k], atol=1e-9)
        assert np.allclose(got[name]["discharge_mw"], direct.discharge_mw[k], atol=1e-9)
        assert np.allclose(got[name]["soc_mwh"], direct.soc_mwh[k], atol=1e-9)
    assert np.allclose([m["position_mw"] for m in body["mtus"]], direct.position_mw, atol=1e-9)
    assert body["figures"]["expected_margin_eur"] == pytest.approx(direct.storage_margin_eur, abs=0.01)


def test_what_if_equals_a_direct_call_to_the_optimiser(api: Api) -> None:
    port, _ = portfolio_rows(api, NORMAL, "DE_LU")
    rng = np.random.default_rng(3)
    prices = (port["price_expected"].to_numpy() + rng.normal(0, 40, len(port))).round(2)
    with api.client() as c:
        r = c.post("/v1/days/2026-03-28/what-if", json={"zone": "DE_LU", "prices": prices.tolist()})
    assert r.status_code == 200, r.text
    base = (port["retail_load_mw"] - port["renewables_mw"]).to_numpy()
    direct = optimise_zone(prices[None, :], base, assets_of(api, "DE_LU"), 15, weights=[1.0])
    body = r.json()
    assert_same(body, direct)
    assert len(body["mtus"]) == 96
    figures = body["figures"]
    assert figures["margin_change_eur"] >= -0.01  # re-optimising never loses against the published dispatch
    assert figures["margin_change_eur"] == pytest.approx(
        figures["expected_margin_eur"] - figures["published_dispatch_margin_eur"], abs=0.011
    )


def test_what_if_rest_of_day_with_new_state_of_charge(api: Api) -> None:
    port, rows = portfolio_rows(api, NORMAL, "DE_LU")
    start, soc = 40, 15.0
    prices = port["price_q50"].to_numpy()[start:] * 1.5
    payload = {"zone": "DE_LU", "from_mtu": start, "prices": prices.tolist(), "soc_mwh": {"de-bess-1": soc}}
    with api.client() as c:
        r = c.post("/v1/days/2026-03-28/what-if", json=payload)
    assert r.status_code == 200, r.text
    (asset,) = assets_of(api, "DE_LU")
    battery = rows[rows["asset"] == "de-bess-1"].sort_values("mtu_index")
    used = battery["discharge_mw"].to_numpy()[:start].sum() * 0.25
    assert asset.max_cycles is not None
    changed = dataclasses.replace(
        asset, soc_start_mwh=soc, max_cycles=(asset.max_cycles * asset.energy_mwh - used) / asset.energy_mwh
    )
    base = (port["retail_load_mw"] - port["renewables_mw"]).to_numpy()[start:]
    direct = optimise_zone(prices[None, :], base, [changed], 15, weights=[1.0])
    body = r.json()
    assert_same(body, direct)
    assert body["mtus"][0]["mtu_index"] == start
    assert body["assets"][0]["soc_start_mwh"] == soc


def test_what_if_without_changes_reproduces_the_published_schedule(api: Api) -> None:
    port, _rows = portfolio_rows(api, SHORT, "BE")
    with api.client() as c:
        body = c.post("/v1/days/2026-03-29/what-if", json={"zone": "BE"}).json()
    assert len(body["mtus"]) == 92
    assert body["scenarios"] == 3  # the published P10/P50/P90
    assert np.allclose([m["position_mw"] for m in body["mtus"]], port["position_mw"], atol=1e-6)
    assert body["figures"]["margin_change_eur"] == pytest.approx(0.0, abs=0.01)
    manifest = json.loads((version_dir(api, SHORT) / "manifest.json").read_text())
    assert body["figures"]["expected_margin_eur"] == pytest.approx(
        manifest["figures"]["BE"]["expected_margin_eur"], abs=0.01
    )


def test_what_if_scenarios_and_asset_limit(api: Api) -> None:
    port, _ = portfolio_rows(api, NORMAL, "BE")
    p = port["price_q50"].to_numpy()
    payload = {
        "zone": "BE",
        "scenarios": [(p - 20).tolist(), (p + 30).tolist()],
        "weights": [0.25, 0.75],
        "assets": {"be-bess-1": {"power_mw": 2.5}},
    }
    with api.client() as c:
        body = c.post("/v1/days/2026-03-28/what-if", json=payload).json()
    (asset,) = assets_of(api, "BE")
    base = (port["retail_load_mw"] - port["renewables_mw"]).to_numpy()
    direct = optimise_zone(
        np.vstack([p - 20, p + 30]),
        base,
        [dataclasses.replace(asset, power_mw=2.5)],
        15,
        weights=[0.25, 0.75],
    )
    assert_same(body, direct)
    assert max(body["assets"][0]["charge_mw"] + body["assets"][0]["discharge_mw"]) <= 2.5 + 1e-9


def test_what_if_bad_input(api: Api) -> None:
    url = "/v1/days/2026-03-29/what-if"
    with api.client() as c:
        one_line(
            c.post(url, json={"zone": "DE_LU", "prices": [50.0] * 96}), 422, "expected 92 prices", "23-hour"
        )
        one_line(
            c.post(
                "/v1/days/2026-03-28/what-if", json={"zone": "DE_LU", "from_mtu": 90, "prices": [1.0] * 5}
            ),
            422,
            "expected 6 prices for MTUs 90..95",
        )
        high = [50.0] * 92
        high[10] = 4500.0
        one_line(c.post(url, json={"zone": "DE_LU", "prices": high}), 422, "4500", "cap 4000")
        one_line(c.post(url, json={"zone": "DE_LU", "prices": [-600.0] * 92}), 422, "floor -500")
        infeasible = {"zone": "DE_LU", "assets": {"de-bess-1": {"soc_min_mwh": 15, "soc_max_mwh": 12}}}
        one_line(c.post(url, json=infeasible), 422, "infeasible", "de-bess-1")
        slow = {"zone": "DE_LU", "from_mtu": 90, "soc_mwh": {"de-bess-1": 1.0}}
        one_line(c.post(url, json=slow), 422, "infeasible", "unreachable")
        one_line(
            c.post(url, json={"zone": "DE_LU", "soc_mwh": {"nope": 1}}), 422, "unknown storage asset 'nope'"
        )
        one_line(c.post(url, json={"zone": "FR"}), 404, "zone 'FR'")
        one_line(c.post(url, json={"zone": "DE_LU", "prices": ["cheap"]}), 422, "prices.0")
        one_line(c.post(url, json={"zone": "DE_LU", "colour": "red"}), 422, "colour")
        one_line(c.post(url, json={"zone": "DE_LU", "from_mtu": 92}), 422, "past the last MTU 91")


def test_the_store_follows_a_republish_and_a_broken_pointer(tmp_path: Path) -> None:
    """LATEST and manifests are cached by inode, size and mtime: a new publish is seen at once."""
    from tasks.serve.store import ApiError, ScheduleStore

    settings = Settings(data_root=tmp_path / "data", zones=("DE_LU",))
    publish_day(settings, NORMAL, seed=1)
    store = ScheduleStore(tmp_path / "data")
    first = store.version(NORMAL, "latest")
    assert (first.name, first.published) == ("v=001", True)
    assert store.version(NORMAL, "latest") == first  # served from the cache

    publish_day(settings, NORMAL, seed=3)  # v=002, published over v=001
    second = store.version(NORMAL, "latest")
    assert (second.name, second.published) == ("v=002", True)
    assert second.manifest_sha256 != first.manifest_sha256
    assert store.version(NORMAL, "v=001").published is False

    (tmp_path / "data" / "schedules" / f"day={NORMAL}" / "LATEST").write_text("{not json")
    with pytest.raises(ApiError) as broken:
        store.version(NORMAL, "latest")
    assert broken.value.status == 503
