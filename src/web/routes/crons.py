"""/runs/crons and /threads/{thread_id}/runs/crons: the LangGraph API's crons (client.crons)."""

from __future__ import annotations

from robyn import Response

from src.services.crons.service import CronService
from src.web.apidoc import Doc
from src.web.auth import CronGuard
from src.web.http import HttpRequest, json_response, no_content
from src.web.requests.crons import parse_count, parse_create, parse_patch, parse_search
from src.web.routing import route
from src.web.schemas import CRON_COUNT, CRON_CREATE, CRON_PATCH, CRON_SEARCH, STATELESS_CRON_CREATE


class CronRoutes:
    """Each route first asks the auth guard (src/web/auth.py, crons:*), then hands its service the
    filter it got: a cron it hides is not found (404), searches and counts see only what it lets through."""

    def __init__(self, crons: CronService, guard: CronGuard) -> None:
        self._crons = crons
        self._guard = guard

    @route("POST", "/runs/crons", doc=Doc((200, 404, 422), STATELESS_CRON_CREATE))
    async def create_stateless(self, request: HttpRequest) -> Response:
        cron = await self._guard.create(request, None, parse_create(request.json(), stateless=True))
        return json_response(await self._crons.create(None, cron))

    @route("POST", "/threads/:thread_id/runs/crons", doc=Doc((200, 404, 422), CRON_CREATE))
    async def create(self, request: HttpRequest) -> Response:
        thread_id = request.path_params["thread_id"]
        cron = await self._guard.create(request, thread_id, parse_create(request.json(), stateless=False))
        return json_response(await self._crons.create(thread_id, cron))

    @route("POST", "/runs/crons/search", doc=Doc((200, 422), CRON_SEARCH, body_required=False))
    async def search(self, request: HttpRequest) -> Response:
        search = await self._guard.search(request, parse_search(request.json(empty={})))
        page = await self._crons.search(search)
        # The LangGraph API's pagination headers: a total past this page when more follow.
        shown = len(page.crons)
        headers = {"X-Pagination-Total": str(page.offset + shown + (1 if page.more else 0))}
        if page.more:
            headers["X-Pagination-Next"] = str(page.offset + shown)
        return json_response(page.crons, headers=headers)

    @route("POST", "/runs/crons/count", doc=Doc((200, 422), CRON_COUNT, body_required=False))
    async def count(self, request: HttpRequest) -> Response:
        where = await self._guard.count(request, parse_count(request.json(empty={})))
        return json_response(await self._crons.count(where))

    @route("GET", "/runs/crons/:cron_id", doc=Doc((200, 404, 422)))
    async def get(self, request: HttpRequest) -> Response:
        cron_id = request.path_params["cron_id"]
        return json_response(await self._crons.get(cron_id, await self._guard.read(request, cron_id)))

    @route("PATCH", "/runs/crons/:cron_id", doc=Doc((200, 404, 422), CRON_PATCH))
    async def patch(self, request: HttpRequest) -> Response:
        cron_id = request.path_params["cron_id"]
        patch, visible = await self._guard.update(request, cron_id, parse_patch(request.json()))
        return json_response(await self._crons.update(cron_id, patch, visible))

    @route("DELETE", "/runs/crons/:cron_id", doc=Doc((204, 404, 422)))
    async def delete(self, request: HttpRequest) -> Response:
        cron_id = request.path_params["cron_id"]
        await self._crons.delete(cron_id, await self._guard.delete(request, cron_id))
        return no_content()
