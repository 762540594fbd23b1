"""/runs/crons and /threads/{thread_id}/runs/crons: the LangGraph API's crons (client.crons)."""

from __future__ import annotations

from robyn import Response

from src.services.crons.service import CronService
from src.web.http import HttpRequest, json_response, no_content
from src.web.requests.crons import parse_count, parse_create, parse_patch, parse_search
from src.web.routing import route


class CronRoutes:
    def __init__(self, crons: CronService) -> None:
        self._crons = crons

    @route("POST", "/runs/crons", "/threads/:thread_id/runs/crons")
    async def create(self, request: HttpRequest) -> Response:
        thread_id = request.path_params.get("thread_id")
        cron = parse_create(request.json(), stateless=thread_id is None)
        return json_response(await self._crons.create(thread_id, cron))

    @route("POST", "/runs/crons/search")
    async def search(self, request: HttpRequest) -> Response:
        page = await self._crons.search(parse_search(request.json(empty={})))
        # The LangGraph API's pagination headers: a total past this page when more follow.
        shown = len(page.crons)
        headers = {"X-Pagination-Total": str(page.offset + shown + (1 if page.more else 0))}
        if page.more:
            headers["X-Pagination-Next"] = str(page.offset + shown)
        return json_response(page.crons, headers=headers)

    @route("POST", "/runs/crons/count")
    async def count(self, request: HttpRequest) -> Response:
        return json_response(await self._crons.count(parse_count(request.json(empty={}))))

    @route("GET", "/runs/crons/:cron_id")
    async def get(self, request: HttpRequest) -> Response:
        return json_response(await self._crons.get(request.path_params["cron_id"]))

    @route("PATCH", "/runs/crons/:cron_id")
    async def patch(self, request: HttpRequest) -> Response:
        return json_response(await self._crons.update(request.path_params["cron_id"], parse_patch(request.json())))

    @route("DELETE", "/runs/crons/:cron_id")
    async def delete(self, request: HttpRequest) -> Response:
        await self._crons.delete(request.path_params["cron_id"])
        return no_content()
