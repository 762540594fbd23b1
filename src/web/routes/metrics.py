"""/metrics: the server's figures in Prometheus text format (see src/services/metrics.py)."""

from __future__ import annotations

from robyn import Response

from src.services.metrics import CONTENT_TYPE, MetricsService
from src.web.apidoc import Doc
from src.web.http import HttpRequest
from src.web.routing import route


class MetricsRoutes:
    def __init__(self, metrics: MetricsService) -> None:
        self._metrics = metrics

    @route("GET", "/metrics", doc=Doc(media_type="text/plain", description="Prometheus text format"))
    async def metrics(self, request: HttpRequest) -> Response:
        return Response(
            status_code=200, headers={"Content-Type": CONTENT_TYPE}, description=await self._metrics.scrape()
        )
