"""The Robyn application: start-up, shutdown and the HTTP handlers."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dependency_injector import providers
from robyn import Request, Response, Robyn
from robyn.argument_parser import Config as RobynConfig

from src.containers import Container
from src.services.database import DatabaseUnavailable
from src.services.errors import Conflict, InvalidRequest, NotFound, ServiceError
from src.services.serialization import dumps
from src.settings import ConfigError

logger = logging.getLogger("agent_server")
T = TypeVar("T")

Handler = Callable[[Request], Awaitable[Response]]
STATUS_BY_ERROR: tuple[tuple[type[ServiceError], int], ...] = (
    (InvalidRequest, 422),
    (NotFound, 404),
    (Conflict, 409),
)


class BadRequest(ServiceError):
    """The request could not be read at all (HTTP 400)."""


def json_response(body: Any, status: int = 200) -> Response:
    return Response(status_code=status, headers={"Content-Type": "application/json"}, description=dumps(body))


def error_response(status: int, detail: str) -> Response:
    return json_response({"detail": detail}, status)


def read_json(request: Request, *, empty: Any = None) -> Any:
    """The request body as JSON; an empty body reads as `empty` when that is given."""
    raw = request.body
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw or ""
    if not text.strip():
        if empty is not None:
            return empty
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def endpoint(handler: Handler) -> Handler:
    """Map domain errors to their status codes; never let a traceback reach the client."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as exc:
            return error_response(400, str(exc))
        except ServiceError as exc:
            status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 400)
            return error_response(status, str(exc))
        except Exception:
            logger.exception("unhandled error in %s %s", request.method, request.url.path)
            return error_response(500, "internal server error; the server log has the details")

    return wrapped


async def provide(provider: providers.Provider[T]) -> T:
    """The provider's object; a provider that depends on an async resource returns an awaitable."""
    result: Any = provider()
    return await result if inspect.isawaitable(result) else result


async def resolved(result: Awaitable[None] | None) -> None:
    """Await what the container returns: an awaitable when any resource is async."""
    if result is not None:
        await result


def describe_error(exc: BaseException) -> str:
    """One line: our own errors speak for themselves; others get their type too."""
    text = " ".join(str(exc).split())
    if isinstance(exc, (ServiceError, DatabaseUnavailable, ConfigError)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def exit_now(code: int) -> None:
    """Leave the process at once: Robyn's Rust server threads ignore a normal exit."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def create_app(container: Container, started_at: float | None = None) -> Robyn:
    """Build the Robyn app around a configured (not yet initialised) container."""
    robyn_config = RobynConfig()
    robyn_config.disable_openapi = True  # the LangGraph API serves its own /openapi.json
    robyn_config.log_level = "WARN"
    app = Robyn(__file__, config=robyn_config)
    stopping: list[asyncio.Task[None]] = []
    begun = started_at if started_at is not None else time.monotonic()

    async def stop(signum: int) -> None:
        logger.info("received %s: shutting down", signal.Signals(signum).name)
        try:
            await asyncio.wait_for(resolved(container.shutdown_resources()), timeout=4.0)
        except Exception as exc:
            logger.error("shutdown did not finish cleanly: %s", exc)
            exit_now(1)
        logger.info("stopped")
        exit_now(0)

    def on_signal(signum: int) -> None:
        if not stopping:  # a second signal while stopping changes nothing
            stopping.append(asyncio.ensure_future(stop(signum)))

    async def startup() -> None:
        # Runs on the loop that serves the async handlers: the pool must live there.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            await resolved(container.init_resources())
            graphs = await provide(container.graphs)
            await provide(container.thread_service)
            await provide(container.run_service)
            await provide(container.health_service)
        except Exception as exc:
            logger.error("start-up failed: %s", describe_error(exc))
            try:
                await asyncio.wait_for(resolved(container.shutdown_resources()), timeout=4.0)
            finally:
                exit_now(1)
        server = container.config.server()
        logger.info("graphs loaded: %s", ", ".join(graphs.ids))
        logger.info(
            "listening on http://%s:%s (start-up took %.0f ms)",
            server["host"],
            server["port"],
            (time.monotonic() - begun) * 1000,
        )

    async def shutdown() -> None:
        await resolved(container.shutdown_resources())

    app.startup_handler(startup)
    app.shutdown_handler(shutdown)

    @endpoint
    async def ok(request: Request) -> Response:
        return json_response({"ok": True})

    @endpoint
    async def health(request: Request) -> Response:
        healthy, report = await (await provide(container.health_service)).health()
        return json_response(report, 200 if healthy else 503)

    @endpoint
    async def info(request: Request) -> Response:
        return json_response((await provide(container.health_service)).info())

    @endpoint
    async def create_thread(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.create(read_json(request, empty={})))

    @endpoint
    async def get_thread(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.get(request.path_params["thread_id"]))

    @endpoint
    async def get_thread_state(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.state(request.path_params["thread_id"]))

    @endpoint
    async def wait_run(request: Request) -> Response:
        runs = await provide(container.run_service)
        return json_response(await runs.wait(request.path_params["thread_id"], read_json(request)))

    app.add_route("GET", "/ok", ok)
    app.add_route("GET", "/health", health)
    app.add_route("GET", "/info", info)
    app.add_route("POST", "/threads", create_thread)
    app.add_route("GET", "/threads/:thread_id", get_thread)
    app.add_route("GET", "/threads/:thread_id/state", get_thread_state)
    app.add_route("POST", "/threads/:thread_id/runs/wait", wait_run)
    return app
