"""/ok, /health and /info."""

from __future__ import annotations

from robyn import Response

from src.services.health import HealthService
from src.web.apidoc import Doc
from src.web.http import HttpRequest, json_response
from src.web.routing import route


class SystemRoutes:
    def __init__(self, health: HealthService) -> None:
        self._health = health

    @route("GET", "/ok")
    async def ok(self, request: HttpRequest) -> Response:
        return json_response({"ok": True})

    @route("GET", "/health", doc=Doc((200, 503), description="Pool statistics; 503 while Postgres does not answer"))
    async def health(self, request: HttpRequest) -> Response:
        healthy, report = await self._health.health()
        return json_response(report, 200 if healthy else 503)

    @route("GET", "/info", doc=Doc(description="Version, persistence backend and graphs"))
    async def info(self, request: HttpRequest) -> Response:
        return json_response(self._health.info())
