"""/runs/crons and /threads/{thread_id}/runs/crons: the LangGraph API's crons (client.crons)."""

from __future__ import annotations

from robyn import Response

from src.services.crons.service import CronService
from src.web.apidoc import Doc
from src.web.http import HttpRequest, json_response, no_content
from src.web.requests.crons import parse_count, parse_create, parse_patch, parse_search
from src.web.routing import route
from src.web.schemas import CRON_COUNT, CRON_CREATE, CRON_PATCH, CRON_SEARCH, STATELESS_CRON_CREATE


class CronRoutes:
    def __init__(self, crons: CronService) -> None:
        self._crons = crons

    @route("POST", "/runs/crons", doc=Doc((200, 404, 422), STATELESS_CRON_CREATE))
    async def create_stateless(self, request: HttpRequest) -> Response:
        return json_response(await self._crons.create(None, parse_create(request.json(), stateless=True)))

    @route("POST", "/threads/:thread_id/runs/crons", doc=Doc((200, 404, 422), CRON_CREATE))
    async def create(self, request: HttpRequest) -> Response:
        thread_id = request.path_params["thread_id"]
        cron = parse_create(request.json(), stateless=False)
        return json_response(await self._crons.create(thread_id, cron))

    @route("POST", "/runs/crons/search", doc=Doc((200, 422), CRON_SEARCH, body_required=False))
    async def search(self, request: HttpRequest) -> Response:
        page = await self._crons.search(parse_search(request.json(empty={})))
        # The LangGraph API's pagination headers: a total past this page when more follow.
        shown = len(page.crons)
        headers = {"X-Pagination-Total": str(page.offset + shown + (1 if page.more else 0))}
        if page.more:
            headers["X-Pagination-Next"] = str(page.offset + shown)
        return json_response(page.crons, headers=headers)

    @route("POST", "/runs/crons/count", doc=Doc((200, 422), CRON_COUNT, body_required=False))
    async def count(self, request: HttpRequest) -> Response:
        return json_response(await self._crons.count(parse_count(request.json(empty={}))))

    @route("GET", "/runs/crons/:cron_id", doc=Doc((200, 404, 422)))
    async def get(self, request: HttpRequest) -> Response:
        return json_response(await self._crons.get(request.path_params["cron_id"]))

    @route("PATCH", "/runs/crons/:cron_id", doc=Doc((200, 404, 422), CRON_PATCH))
    async def patch(self, request: HttpRequest) -> Response:
        return json_response(await self._crons.update(request.path_params["cron_id"], parse_patch(request.json())))

    @route("DELETE", "/runs/crons/:cron_id", doc=Doc((204, 404, 422)))
    async def delete(self, request: HttpRequest) -> Response:
        await self._crons.delete(request.path_params["cron_id"])
        return no_content()
