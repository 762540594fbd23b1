"""/threads: create, search, count, read, patch, delete, copy, state and history."""

from __future__ import annotations

from robyn import Response

from src.services.errors import InvalidRequest
from src.services.threads.models import HistoryQuery
from src.services.threads.service import ThreadService
from src.services.validation import MAX_LIMIT, query_integer
from src.web.http import HttpRequest, json_response, no_content
from src.web.requests.threads import (
    parse_count,
    parse_create,
    parse_history,
    parse_patch,
    parse_search,
    parse_update_state,
)
from src.web.routing import route


class ThreadRoutes:
    def __init__(self, threads: ThreadService) -> None:
        self._threads = threads

    @route("POST", "/threads")
    async def create(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.create(parse_create(request.json(empty={}))))

    @route("POST", "/threads/search")
    async def search(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.search(parse_search(request.json(empty={}))))

    @route("POST", "/threads/count")
    async def count(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.count(parse_count(request.json(empty={}))))

    @route("GET", "/threads/:thread_id")
    async def get(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.get(request.path_params["thread_id"]))

    @route("PATCH", "/threads/:thread_id")
    async def patch(self, request: HttpRequest) -> Response:
        metadata = parse_patch(request.json())
        return json_response(await self._threads.patch(request.path_params["thread_id"], metadata))

    @route("DELETE", "/threads/:thread_id")
    async def delete(self, request: HttpRequest) -> Response:
        await self._threads.delete(request.path_params["thread_id"])
        return no_content()

    @route("POST", "/threads/:thread_id/copy")
    async def copy(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.copy(request.path_params["thread_id"]))

    @route("GET", "/threads/:thread_id/state")
    async def get_state(self, request: HttpRequest) -> Response:
        state = await self._threads.state(request.path_params["thread_id"], subgraphs=request.flag("subgraphs"))
        return json_response(state)

    @route("GET", "/threads/:thread_id/state/:checkpoint_id")
    async def get_state_at(self, request: HttpRequest) -> Response:
        thread_id, checkpoint_id = request.path_params["thread_id"], request.path_params["checkpoint_id"]
        return json_response(await self._threads.state(thread_id, checkpoint_id, request.flag("subgraphs")))

    @route("POST", "/threads/:thread_id/state/checkpoint")
    async def post_state_at(self, request: HttpRequest) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("checkpoint"), dict):
            raise InvalidRequest("body must be an object with a checkpoint object")
        subgraphs = bool(body.get("subgraphs"))
        return json_response(await self._threads.state(request.path_params["thread_id"], body["checkpoint"], subgraphs))

    @route("POST", "/threads/:thread_id/state")
    async def update_state(self, request: HttpRequest) -> Response:
        update = parse_update_state(request.json())
        return json_response(await self._threads.update_state(request.path_params["thread_id"], update))

    @route("POST", "/threads/:thread_id/history")
    async def post_history(self, request: HttpRequest) -> Response:
        query = parse_history(request.json(empty={}))
        return json_response(await self._threads.history(request.path_params["thread_id"], query))

    @route("GET", "/threads/:thread_id/history")
    async def get_history(self, request: HttpRequest) -> Response:
        query = HistoryQuery(
            limit=query_integer(request.param("limit"), "limit", 10, 0, MAX_LIMIT), before=request.param("before")
        )
        return json_response(await self._threads.history(request.path_params["thread_id"], query))
