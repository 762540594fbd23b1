"""The Robyn application: start-up, shutdown and the HTTP handlers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time

from robyn import Robyn
from robyn.argument_parser import Config as RobynConfig

from src.containers import Container
from src.services.database import DatabaseUnavailable
from src.services.errors import ServiceError
from src.settings import ConfigError, redact
from src.web import openapi
from src.web.http import provide, resolved
from src.web.routes import assistants, runs, store, system, threads

logger = logging.getLogger("agent_server")


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
            # Every served graph has its default assistant before the first request.
            await (await provide(container.assistant_service)).ensure_defaults()
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

    for register in (system.register, assistants.register, threads.register, runs.register, store.register):
        register(app, container)
    openapi.register(app)
    return app
