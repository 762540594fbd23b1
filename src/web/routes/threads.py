"""/threads: create, search, count, read, patch, delete, copy, state and history."""

from __future__ import annotations

from robyn import Response

from src.services.threads.models import HistoryQuery
from src.services.threads.service import ThreadService
from src.services.validation import MAX_LIMIT, query_integer
from src.web.apidoc import Doc
from src.web.auth import ThreadGuard
from src.web.http import HttpRequest, json_response, no_content
from src.web.requests.threads import (
    parse_count,
    parse_create,
    parse_history,
    parse_patch,
    parse_search,
    parse_state_at,
    parse_update_state,
)
from src.web.routing import route
from src.web.schemas import (
    HISTORY_BEFORE,
    HISTORY_LIMIT,
    SUBGRAPHS,
    THREAD_COUNT,
    THREAD_CREATE,
    THREAD_HISTORY,
    THREAD_PATCH,
    THREAD_SEARCH,
    THREAD_STATE_AT,
    THREAD_STATE_UPDATE,
)


class ThreadRoutes:
    """Each route first asks the auth guard (src/web/auth.py), then hands its service the filter it got."""

    def __init__(self, threads: ThreadService, guard: ThreadGuard) -> None:
        self._threads = threads
        self._guard = guard

    @route("POST", "/threads", doc=Doc((200, 409, 422), THREAD_CREATE, body_required=False))
    async def create(self, request: HttpRequest) -> Response:
        create, visible = await self._guard.create(request, parse_create(request.json(empty={})))
        return json_response(await self._threads.create(create, visible))

    @route("POST", "/threads/search", doc=Doc((200, 422), THREAD_SEARCH, body_required=False))
    async def search(self, request: HttpRequest) -> Response:
        search = await self._guard.search(request, parse_search(request.json(empty={})))
        return json_response(await self._threads.search(search))

    @route("POST", "/threads/count", doc=Doc((200, 422), THREAD_COUNT, body_required=False))
    async def count(self, request: HttpRequest) -> Response:
        where = await self._guard.count(request, parse_count(request.json(empty={})))
        return json_response(await self._threads.count(where))

    @route("GET", "/threads/:thread_id", doc=Doc((200, 404, 422)))
    async def get(self, request: HttpRequest) -> Response:
        thread_id = request.path_params["thread_id"]
        return json_response(await self._threads.get(thread_id, await self._guard.read(request, thread_id)))

    @route("PATCH", "/threads/:thread_id", doc=Doc((200, 404, 422), THREAD_PATCH))
    async def patch(self, request: HttpRequest) -> Response:
        thread_id = request.path_params["thread_id"]
        metadata, visible = await self._guard.update(request, thread_id, parse_patch(request.json()))
        return json_response(await self._threads.patch(thread_id, metadata, visible))

    @route("DELETE", "/threads/:thread_id", doc=Doc((204, 404, 409, 422)))
    async def delete(self, request: HttpRequest) -> Response:
        thread_id = request.path_params["thread_id"]
        await self._threads.delete(thread_id, await self._guard.delete(request, thread_id))
        return no_content()

    @route("POST", "/threads/:thread_id/copy", doc=Doc((200, 404, 422)))
    async def copy(self, request: HttpRequest) -> Response:
        thread_id = request.path_params["thread_id"]
        visible, new_thread_id, metadata = await self._guard.copy(request, thread_id)
        return json_response(await self._threads.copy(thread_id, visible, new_thread_id, metadata))

    @route("GET", "/threads/:thread_id/state", doc=Doc((200, 404, 422), params=(SUBGRAPHS,)))
    async def get_state(self, request: HttpRequest) -> Response:
        thread_id = request.path_params["thread_id"]
        visible = await self._guard.read(request, thread_id)
        state = await self._threads.state(thread_id, subgraphs=request.flag("subgraphs"), visible=visible)
        return json_response(state)

    @route("GET", "/threads/:thread_id/state/:checkpoint_id", doc=Doc((200, 404, 422), params=(SUBGRAPHS,)))
    async def get_state_at(self, request: HttpRequest) -> Response:
        thread_id, checkpoint_id = request.path_params["thread_id"], request.path_params["checkpoint_id"]
        visible = await self._guard.read(request, thread_id)
        return json_response(await self._threads.state(thread_id, checkpoint_id, request.flag("subgraphs"), visible))

    @route("POST", "/threads/:thread_id/state/checkpoint", doc=Doc((200, 404, 422), THREAD_STATE_AT))
    async def post_state_at(self, request: HttpRequest) -> Response:
        checkpoint, subgraphs = parse_state_at(request.json())
        thread_id = request.path_params["thread_id"]
        visible = await self._guard.read(request, thread_id)
        return json_response(await self._threads.state(thread_id, checkpoint, subgraphs, visible))

    @route("POST", "/threads/:thread_id/state", doc=Doc((200, 404, 409, 422), THREAD_STATE_UPDATE))
    async def update_state(self, request: HttpRequest) -> Response:
        update = parse_update_state(request.json())
        thread_id = request.path_params["thread_id"]
        _, visible = await self._guard.update(request, thread_id)
        return json_response(await self._threads.update_state(thread_id, update, visible))

    @route("POST", "/threads/:thread_id/history", doc=Doc((200, 404, 422), THREAD_HISTORY, body_required=False))
    async def post_history(self, request: HttpRequest) -> Response:
        query = parse_history(request.json(empty={}))
        thread_id = request.path_params["thread_id"]
        visible = await self._guard.read(request, thread_id)
        return json_response(await self._threads.history(thread_id, query, visible))

    @route(
        "GET",
        "/threads/:thread_id/history",
        doc=Doc((200, 404, 422), params=(HISTORY_LIMIT, HISTORY_BEFORE)),
    )
    async def get_history(self, request: HttpRequest) -> Response:
        query = HistoryQuery(
            limit=query_integer(request.param("limit"), "limit", 10, 0, MAX_LIMIT), before=request.param("before")
        )
        thread_id = request.path_params["thread_id"]
        visible = await self._guard.read(request, thread_id)
        return json_response(await self._threads.history(thread_id, query, visible))
