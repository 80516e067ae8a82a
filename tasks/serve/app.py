"""Routes of the schedule API: auth, content negotiation, ETags, metrics (docs/desk-api.md)."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from tasks.errors import ConfigError
from tasks.serve import whatif
from tasks.serve.http import (
    JSON,
    TABLE_TYPES,
    etag_of,
    negotiate,
    not_modified,
    table_csv,
    table_json,
    table_parquet,
)
from tasks.serve.store import TABLES, ApiError, ScheduleStore, Version, parse_day, parse_version
from tasks.storage import sha256_file

if TYPE_CHECKING:
    import pandas as pd

    from tasks.config import Portfolio, Settings
    from tasks.serve.sync import StoreSync

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Float format of each table's CSV, as tasks.schedule writes it.
CSV_FLOATS = {"schedule": "%.6f", "bids": "%.1f", "forecast": "%.6f"}
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ZONE_FILTER = Query(default=None, description="Only the rows of this bidding zone.")
BEARER = HTTPBearer(auto_error=False, description="One of the tokens in DAP_API_TOKENS.")
VERSION_QUERY = Query(default="latest", description="latest (the published version) or v=NNN.")


class Metrics:
    """Prometheus metrics of one app (own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dap_api_requests",
            "Requests answered by the schedule API.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dap_api_request_seconds",
            "Time to answer a request.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.solve = Histogram(
            "dap_api_whatif_solve_seconds",
            "Time of the what-if LP (HiGHS).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts and times every request by its route template (bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - start)


def check_settings(settings: Settings) -> None:
    """The API does not start without a bearer token (it would serve nobody or everybody)."""
    if not settings.api_tokens:
        raise ConfigError(
            "the schedule API has no bearer token: set DAP_API_TOKENS (comma-separated; in the chart the "
            "Secret named by serve.tokensSecret) and start it again"
        )


def create_app(settings: Settings) -> FastAPI:
    """The API over ``settings.data_root``; one store (cache) and one metrics registry per app.

    With ``settings.data_url`` the data root is the API's mirror of the object store,
    pulled once here (ServiceUnavailable when the store cannot be read) and then every
    ``api_sync_seconds`` while the app runs (:mod:`tasks.serve.sync`).
    """
    check_settings(settings)
    store = ScheduleStore(Path(settings.data_root), settings.api_cache_entries)
    metrics = Metrics()
    sync = None
    if settings.data_url:
        from tasks.serve.sync import StoreSync

        sync = StoreSync(settings, metrics.registry)
        sync.sync_once()
    tokens = [t.get_secret_value().encode() for t in settings.api_tokens]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if sync is not None:
            sync.start()
        try:
            yield
        finally:
            if sync is not None:
                sync.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="Day-ahead schedule API",
        version="1",
        description="Published day-ahead schedules, bids, manifests and forecasts, and what-if "
        "re-optimisation of the rest of a day (docs/desk-api.md). Read-only.",
        docs_url=None,  # the Swagger/ReDoc pages load scripts from a CDN; the OpenAPI document is enough
        redoc_url=None,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _error_handlers(app)

    async def authorised(  # async: a check this cheap must not hop to the thread pool
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        if credentials is None:
            raise ApiError(401, "missing bearer token: send Authorization: Bearer <token>")
        given = credentials.credentials.encode()
        match = False
        for token in tokens:  # every token is compared: the time does not tell which one matched
            match |= hmac.compare_digest(given, token)
        if not match:
            raise ApiError(401, "invalid bearer token")

    auth = [Depends(authorised)]
    _probe_routes(app, store, metrics, settings, sync)
    _day_routes(app, store, auth)
    _forecast_routes(app, store, settings, auth)
    _whatif_routes(app, store, settings, metrics, auth)
    return app


def _error_handlers(app: FastAPI) -> None:
    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    async def invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}{more}"}, status_code=422)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)


def _probe_routes(
    app: FastAPI, store: ScheduleStore, metrics: Metrics, settings: Settings, sync: StoreSync | None
) -> None:
    @app.get("/health", tags=["probes"], summary="Liveness: the process answers.")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["probes"], summary="Readiness: the data root and portfolio can be read.")
    def ready() -> Response:
        problems = []
        if not store.root.is_dir():
            problems.append(f"no schedules under {store.root}")
        if not Path(settings.portfolio_file).is_file():
            problems.append(f"portfolio {settings.portfolio_file} missing")
        extra = sync.status() if sync is not None else {}
        if problems:
            return JSONResponse(
                {"status": "not ready", "detail": "; ".join(problems), **extra}, status_code=503
            )
        return JSONResponse({"status": "ready", **extra})

    @app.get("/metrics", tags=["probes"], summary="Prometheus metrics.", response_class=Response)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _cached_response(
    request: Request, etag: str, media_type: str, body: Callable[[], bytes], *, immutable: bool
) -> Response:
    headers = {
        "ETag": etag,
        "Vary": "Accept, Authorization",
        "Cache-Control": "private, max-age=31536000, immutable" if immutable else "private, no-cache",
    }
    if not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body(), media_type=media_type, headers=headers)


def _day_routes(app: FastAPI, store: ScheduleStore, auth: list[Any]) -> None:
    @app.get("/v1/days", tags=["schedules"], dependencies=auth, summary="Delivery days with their versions.")
    def days(request: Request) -> Response:
        import orjson

        body = orjson.dumps({"days": store.days()})
        return _cached_response(request, etag_of(body.decode()), JSON, lambda: body, immutable=False)

    @app.get(
        "/v1/days/{day}/manifest", tags=["schedules"], dependencies=auth, summary="Manifest of a version."
    )
    def manifest(request: Request, day: str, version: str = VERSION_QUERY) -> Response:
        v = _version(store, day, version)
        body = (v.path / "manifest.json").read_bytes()
        etag = etag_of(v.manifest_sha256, "manifest")
        return _cached_response(request, etag, JSON, lambda: body, immutable=version != "latest")

    for table in TABLES:
        _table_route(app, store, auth, table)


def _version(store: ScheduleStore, day: str, version: str) -> Version:
    return store.version(parse_day(day), parse_version(version))


def _table_route(app: FastAPI, store: ScheduleStore, auth: list[Any], table: str) -> None:
    # async: a read is a cache hit after the first (two small file reads: LATEST and the
    # manifest), cheaper on the event loop than a hop to the thread pool; the first render
    # of a version blocks the loop once.
    @app.get(
        f"/v1/days/{{day}}/{table}",
        tags=["schedules"],
        dependencies=auth,
        summary=f"The {table} of a version: JSON, CSV or Parquet by the Accept header.",
        responses={200: {"content": {t: {} for t in set(TABLE_TYPES.values())}}},
        name=table,
    )
    async def read(
        request: Request,
        day: str,
        version: str = VERSION_QUERY,
        zone: str | None = ZONE_FILTER,
        accept: Annotated[str | None, Header()] = None,
    ) -> Response:
        media = negotiate(accept, TABLE_TYPES)
        v = _version(store, day, version)
        etag = etag_of(v.file_sha256(f"{table}.parquet"), table, zone or "*", media)

        def body() -> bytes:
            return store.memo((str(v.path), etag), lambda: _render_table(store, v, table, zone, media))

        return _cached_response(request, etag, media, body, immutable=version != "latest")


def _render_table(store: ScheduleStore, v: Version, table: str, zone: str | None, media: str) -> bytes:
    if zone is None and media != JSON:  # the published files as they are
        return store.file_bytes(v, f"{table}.{'csv' if media.startswith('text/') else 'parquet'}")
    frame = store.table(v, table)
    if zone is not None:
        if zone not in set(frame["zone"]):
            raise ApiError(
                404, f"zone {zone!r} is not in the {table} of {v.day} {v.name} (zones: {v.manifest['zones']})"
            )
        frame = frame[frame["zone"] == zone]
    return _encode(frame, media, table, {"delivery_date": v.day.isoformat(), "version": v.name, "zone": zone})


def _encode(frame: pd.DataFrame, media: str, kind: str, header: dict[str, object]) -> bytes:
    if media == JSON:
        return table_json(frame, header)
    if media.startswith("text/"):
        return table_csv(frame, CSV_FLOATS[kind])
    return table_parquet(frame)


def _forecast_routes(app: FastAPI, store: ScheduleStore, settings: Settings, auth: list[Any]) -> None:
    @app.get(
        "/v1/days/{day}/forecast/{zone}",
        tags=["forecasts"],
        dependencies=auth,
        summary="The price quantiles and volume forecast of a zone and day (what the schedule read).",
        responses={200: {"content": {t: {} for t in set(TABLE_TYPES.values())}}},
    )
    def forecast(
        request: Request, day: str, zone: str, accept: Annotated[str | None, Header()] = None
    ) -> Response:
        media = negotiate(accept, TABLE_TYPES)
        d = parse_day(day)
        frame, sha = store.forecast(zone, d)
        etag = etag_of(sha, "forecast", media)

        def body() -> bytes:
            header: dict[str, object] = {
                "delivery_date": d.isoformat(),
                "zone": zone,
                "quantiles": list(settings.quantiles),
            }
            return store.memo(("forecast", etag), lambda: _encode(frame, media, "forecast", header))

        return _cached_response(request, etag, media, body, immutable=False)


def _whatif_routes(
    app: FastAPI, store: ScheduleStore, settings: Settings, metrics: Metrics, auth: list[Any]
) -> None:
    @app.post(
        "/v1/days/{day}/what-if",
        tags=["what-if"],
        dependencies=auth,
        summary="Re-optimise the storage dispatch of the rest of a day on revised prices or limits.",
    )
    def what_if(day: str, req: whatif.WhatIfRequest) -> dict[str, Any]:
        d = parse_day(day)
        v = store.version(d, parse_version(req.version))
        portfolio = _portfolio_of(store, settings, v)
        full = store.table(v, "schedule")
        key = (str(v.path), v.file_sha256("schedule.parquet"), "zone", req.zone)
        schedule = store.memo(key, lambda: whatif.zone_rows(full, req.zone))
        inputs = whatif.build_inputs(
            req,
            d,
            schedule,
            v.manifest,
            portfolio.storage,
            price_floor=settings.price_floor_eur_mwh,
            price_cap=settings.price_cap_eur_mwh,
            max_scenarios=settings.api_whatif_max_scenarios,
        )
        start = time.perf_counter()
        result = whatif.solve(inputs)
        metrics.solve.observe(time.perf_counter() - start)
        return whatif.answer(req, day=d, version=v.name, schedule=schedule, inputs=inputs, result=result)


def _portfolio_of(store: ScheduleStore, settings: Settings, v: Version) -> Portfolio:
    """The portfolio the version was scheduled with (same sha256 as its manifest), else 409."""
    path = Path(settings.portfolio_file)
    stat = path.stat()
    sha = store.cache.get(
        ("portfolio-sha", str(path), stat.st_size, stat.st_mtime_ns), lambda: sha256_file(path)
    )
    want = v.manifest.get("options", {}).get("portfolio_sha256")
    if want and want != sha:
        raise ApiError(
            409,
            f"the portfolio {path} changed since {v.day} {v.name} was scheduled; re-run tasks.schedule "
            "or start the API on the portfolio of that version",
        )
    portfolio: Portfolio = store.cache.get(("portfolio", sha), settings.load_portfolio)
    return portfolio
