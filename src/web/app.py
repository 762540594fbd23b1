"""The Robyn application: start-up, shutdown and the HTTP handlers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, cast

from robyn import Robyn
from robyn.argument_parser import Config as RobynConfig
from robyn.robyn import HttpMethod

from src.containers import Container, provide, shutdown
from src.services.database import DatabaseUnavailable
from src.services.errors import ServiceError
from src.settings import ConfigError, redact
from src.web.cors import CorsPolicy
from src.web.http import HttpRequest
from src.web.openapi import DocsRoutes
from src.web.pipeline import Fallback, RequestPipeline
from src.web.routes.assistants import AssistantRoutes
from src.web.routes.crons import CronRoutes
from src.web.routes.metrics import MetricsRoutes
from src.web.routes.runs import RunRoutes
from src.web.routes.store import StoreRoutes
from src.web.routes.system import SystemRoutes
from src.web.routes.threads import ThreadRoutes
from src.web.routing import Handler, HandlerResult, RouteMatcher, RouteSpec, routes_of

logger = logging.getLogger("agent_server")
# Each API area's route class; the area names the OpenAPI tag.
ROUTE_CLASSES: tuple[tuple[str, type], ...] = (
    ("system", SystemRoutes),
    ("system", MetricsRoutes),
    ("assistants", AssistantRoutes),
    ("threads", ThreadRoutes),
    ("runs", RunRoutes),
    ("crons", CronRoutes),
    ("store", StoreRoutes),
)
# Unknown paths and wrong methods get JSON 404/405 from `Fallback`, for every method Robyn knows.
FALLBACK_METHODS = tuple(
    getattr(HttpMethod, name)
    for name in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "CONNECT")
)


def describe_error(exc: BaseException) -> str:
    """One line, without any password: our own errors speak for themselves; others get their type too."""
    text = redact(" ".join(str(exc).split()))
    if isinstance(exc, (ServiceError, DatabaseUnavailable, ConfigError)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def exit_now(code: int) -> None:
    """Leave the process at once: Robyn's Rust server threads ignore a normal exit."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class RouteObjects:
    """The route objects, built by the container at start-up.

    Robyn needs every route before it starts, but the route objects need services
    that exist only once the resources are up (in the start-up handler, on the
    serving loop). So the handlers registered up front call into the objects bound
    here at start-up; Robyn serves no request before that.
    """

    def __init__(self) -> None:
        self._objects: dict[type, Any] = {}

    def bind(self, route_object: object) -> None:
        self._objects[type(route_object)] = route_object

    def handler(self, cls: type, name: str) -> Handler:
        async def call(request: HttpRequest) -> HandlerResult:
            return cast(HandlerResult, await getattr(self._objects[cls], name)(request))

        call.__name__ = name
        return call


class Lifecycle:
    """Start-up, signals and shutdown of one server process around its container."""

    def __init__(
        self,
        container: Container,
        objects: RouteObjects,
        docs: DocsRoutes,
        begun: float,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._container = container
        self._on_ready = on_ready
        self._objects = objects
        self._docs = docs
        self._begun = begun
        self._stopping: list[asyncio.Task[None]] = []

    async def startup(self) -> None:
        # Runs on the loop that serves the async handlers: the pool must live there.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            _, route_objects = await provide(self._container.application)
            for route_object in route_objects:
                self._objects.bind(route_object)
            graphs = await provide(self._container.graphs)
            store = await provide(self._container.store_service)
            auth = await provide(self._container.auth_module)
            self._docs.describe_server(graphs.ids, store.supports_ttl, auth.enabled)
        except Exception as exc:
            logger.error("start-up failed: %s", describe_error(exc))
            try:
                await asyncio.wait_for(shutdown(self._container), timeout=4.0)
            finally:
                exit_now(1)
        server = self._container.config.server()
        logger.info("graphs loaded: %s", ", ".join(graphs.ids))
        logger.info(
            "listening on http://%s:%s (start-up took %.0f ms)",
            server["host"],
            server["port"],
            (time.monotonic() - self._begun) * 1000,
        )
        if self._on_ready is not None:
            self._on_ready()

    async def shutdown(self) -> None:
        await shutdown(self._container)

    def _on_signal(self, signum: int) -> None:
        if not self._stopping:  # a second signal while stopping changes nothing
            self._stopping.append(asyncio.ensure_future(self._stop(signum)))

    async def _stop(self, signum: int) -> None:
        logger.info("received %s: shutting down", signal.Signals(signum).name)
        try:
            await asyncio.wait_for(shutdown(self._container), timeout=4.0)
        except Exception as exc:
            logger.error("shutdown did not finish cleanly: %s", exc)
            exit_now(1)
        logger.info("stopped")
        exit_now(0)


def registered_routes() -> list[tuple[str, RouteSpec]]:
    """Every route of every route class, with its API area (the OpenAPI tag)."""
    return [(area, spec) for area, cls in ROUTE_CLASSES for spec in routes_of(cls)]


def register_routes(
    app: Robyn, pipeline: RequestPipeline, cors: CorsPolicy, objects: RouteObjects, docs: DocsRoutes
) -> None:
    """Every route class's handlers, the OpenAPI document of them, and the JSON 404/405 fallback."""
    registered = registered_routes()
    for _, cls in ROUTE_CLASSES:
        for spec in routes_of(cls):
            app.add_route(spec.method, spec.path, pipeline.wrap(objects.handler(cls, spec.name), spec.path))
    for spec in routes_of(DocsRoutes):
        app.add_route(spec.method, spec.path, pipeline.wrap(getattr(docs, spec.name), spec.path))
    matcher = RouteMatcher([*(spec for _, spec in registered), *routes_of(DocsRoutes)])
    fallback = pipeline.wrap(Fallback(matcher, cors))
    for method in FALLBACK_METHODS:
        for path in ("/", "/*rest"):
            app.add_route(method, path, fallback)


def create_app(
    container: Container, started_at: float | None = None, on_ready: Callable[[], None] | None = None
) -> Robyn:
    """Build the Robyn app around a configured (not yet started) container; `on_ready` is
    called once it has started (a worker tells its supervisor)."""
    robyn_config = RobynConfig()
    robyn_config.disable_openapi = True  # the LangGraph API serves its own /openapi.json
    robyn_config.log_level = "WARN"
    app = Robyn(__file__, config=robyn_config)
    objects = RouteObjects()
    docs = DocsRoutes(registered_routes())
    lifecycle = Lifecycle(
        container, objects, docs, started_at if started_at is not None else time.monotonic(), on_ready
    )
    app.startup_handler(lifecycle.startup)
    app.shutdown_handler(lifecycle.shutdown)
    register_routes(app, container.request_pipeline(), container.cors_policy(), objects, docs)
    return app
