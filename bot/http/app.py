"""The HTTP app: health and metrics, the operator API, the public pages, and whatever
routers the packages add through `bot.host` (billing webhooks, the audio room, Slack).

    create_app(core, api_token=...)      -> FastAPI
    app.state.ready = True               once the wiring has started everything

Routes:
    GET  /healthz                        200 {"status": "ok"} once ready, 503 before
    GET  /metrics                        Prometheus text, with the operator token; or
                                         without one on an address of its own
                                         (`metrics_app`, STAGEPASS_METRICS_ADDRESS)
    GET  /openapi.json                   the API's schema
    /api/v1/...                          `bot.http.api`, bearer token
    GET  /spaces/{id}                    `bot.http.pages`
    /spaces/{id}/manage...               `bot.http.desk`, the host's desk (desk link token)
    /tickets/{id}...                     `bot.http.mytickets`, manage my ticket
    /signin, /spaces/{id}/buy|pay,
    /invites/{token}                     `bot.http.buying`, buying on the web, signed in

There is no Swagger UI: it loads its assets from a CDN, and Stagepass serves none.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY, CollectorRegistry

from bot.core import Core
from bot.errors import ConfigError
from bot.http import api, buying, desk, errors, mytickets, pages
from bot.http.dependencies import BearerAuth
from bot.http.metrics import CoreMetrics, core_metrics
from bot.http.middleware import RequestContext
from bot.http.schemas import document_limits


def _version() -> str:
    try:
        return version("stagepass")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(
    core: Core,
    *,
    api_token: str,
    routers: Sequence[APIRouter] = (),
    registry: CollectorRegistry = REGISTRY,
    metrics_route: bool = True,
) -> FastAPI:
    """Build the app around `core`. `api_token` guards `/api/v1`; `routers` are mounted as
    they are (they bring their own auth: Stripe and Slack sign their requests). `registry`
    is what `/metrics` serves (behind the operator token: sales counters and room figures
    are not public); tests may pass their own. `metrics_route=False` leaves `/metrics` to
    a `metrics_app` on an address of its own.

    Every router whose routes read a body declares what they take with
    `APIRouter(max_body_size=...)`: the body is counted while it is read, chunked or not,
    and refused with a 413 once past it (before any token in it is checked)."""
    if not api_token.strip():
        raise ConfigError("Setting STAGEPASS_API_TOKEN: the operator API needs a non-empty token")
    app = FastAPI(
        title="Stagepass",
        version=_version(),
        summary="Ticketed live-audio Spaces for chat communities: the operator API.",
        description=(
            "Authenticate with `Authorization: Bearer <token>`. Errors come as "
            '`{"error": {"type", "message", "field"}}`. Money is integer minor units plus a '
            "currency code; times are ISO 8601 in UTC."
        ),
        openapi_tags=[*api.TAGS, {"name": "ops", "description": "Health and metrics."}],
        docs_url=None,
        redoc_url=None,
    )
    app.state.core = core
    app.state.ready = False
    metrics = core_metrics(registry)
    metrics.watch(core.bus)
    app.state.metrics = metrics

    errors.install(app)
    app.add_middleware(RequestContext, metrics=metrics)

    operator = Depends(BearerAuth(api_token))
    app.include_router(_ops_router())
    if metrics_route:
        app.include_router(_metrics_router(metrics), dependencies=[operator])
    app.include_router(api.router, dependencies=[operator])
    app.include_router(pages.router)
    app.include_router(desk.router)
    app.include_router(mytickets.router)
    app.include_router(buying.router)
    for router in routers:
        app.include_router(router)
    _document(app, core)
    return app


def _document(app: FastAPI, core: Core) -> None:
    """The OpenAPI document as FastAPI makes it, plus the deployment's limits."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_limits(build(), core.settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace the schema


def metrics_app(metrics: CoreMetrics) -> FastAPI:
    """`/metrics` alone and without a token, for an address only the scraper reaches."""
    app = FastAPI(title="Stagepass metrics", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(_metrics_router(metrics))
    return app


def _ops_router() -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get(
        "/healthz",
        summary="Readiness: 200 once started, 503 before",
        responses={503: {"description": "Still starting (or shutting down)."}},
    )
    async def healthz(request: Request) -> JSONResponse:
        if getattr(request.app.state, "ready", False):
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "starting"}, status_code=503)

    return router


def _metrics_router(metrics: CoreMetrics) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={401: {"model": errors.ErrorBody}},
    )
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return router
