"""/ok, /health and /info."""

from __future__ import annotations

from robyn import Request, Response, Robyn

from src.containers import Container
from src.web.http import endpoint, json_response, provide


def register(app: Robyn, container: Container) -> None:
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

    app.add_route("GET", "/ok", ok)
    app.add_route("GET", "/health", health)
    app.add_route("GET", "/info", info)
