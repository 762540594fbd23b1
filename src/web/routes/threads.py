"""/threads: create, search, count, read, patch, delete, copy, state and history."""

from __future__ import annotations

from robyn import Response

from src.services.errors import InvalidRequest
from src.services.threads import ThreadService
from src.services.validation import checkpoint_object, json_type, query_integer, reject_unknown, require_object
from src.web.apidoc import Doc
from src.web.http import HttpRequest, json_response, no_content
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

# The body of POST /threads/{id}/state/checkpoint (the LangGraph API's ThreadStateCheckpointRequest).
STATE_AT_FIELDS = frozenset({"checkpoint", "subgraphs"})


class ThreadRoutes:
    def __init__(self, threads: ThreadService) -> None:
        self._threads = threads

    @route("POST", "/threads", doc=Doc((200, 409, 422), THREAD_CREATE, body_required=False))
    async def create(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.create(request.json(empty={})))

    @route("POST", "/threads/search", doc=Doc((200, 422), THREAD_SEARCH, body_required=False))
    async def search(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.search(request.json(empty={})))

    @route("POST", "/threads/count", doc=Doc((200, 422), THREAD_COUNT, body_required=False))
    async def count(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.count(request.json(empty={})))

    @route("GET", "/threads/:thread_id", doc=Doc((200, 404, 422)))
    async def get(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.get(request.path_params["thread_id"]))

    @route("PATCH", "/threads/:thread_id", doc=Doc((200, 404, 422), THREAD_PATCH))
    async def patch(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.patch(request.path_params["thread_id"], request.json()))

    @route("DELETE", "/threads/:thread_id", doc=Doc((204, 404, 409, 422)))
    async def delete(self, request: HttpRequest) -> Response:
        await self._threads.delete(request.path_params["thread_id"])
        return no_content()

    @route("POST", "/threads/:thread_id/copy", doc=Doc((200, 404, 422)))
    async def copy(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.copy(request.path_params["thread_id"]))

    @route("GET", "/threads/:thread_id/state", doc=Doc((200, 404, 422), params=(SUBGRAPHS,)))
    async def get_state(self, request: HttpRequest) -> Response:
        state = await self._threads.state(request.path_params["thread_id"], subgraphs=request.flag("subgraphs"))
        return json_response(state)

    @route("GET", "/threads/:thread_id/state/:checkpoint_id", doc=Doc((200, 404, 422), params=(SUBGRAPHS,)))
    async def get_state_at(self, request: HttpRequest) -> Response:
        thread_id, checkpoint_id = request.path_params["thread_id"], request.path_params["checkpoint_id"]
        return json_response(await self._threads.state(thread_id, checkpoint_id, request.flag("subgraphs")))

    @route("POST", "/threads/:thread_id/state/checkpoint", doc=Doc((200, 404, 422), THREAD_STATE_AT))
    async def post_state_at(self, request: HttpRequest) -> Response:
        body = require_object(request.json())
        reject_unknown(body, STATE_AT_FIELDS)
        checkpoint = checkpoint_object(body.get("checkpoint"))
        subgraphs = body.get("subgraphs")
        if subgraphs is not None and not isinstance(subgraphs, bool):
            raise InvalidRequest(f"subgraphs must be a boolean, got {json_type(subgraphs)}")
        thread_id = request.path_params["thread_id"]
        return json_response(await self._threads.state(thread_id, checkpoint, bool(subgraphs)))

    @route("POST", "/threads/:thread_id/state", doc=Doc((200, 404, 409, 422), THREAD_STATE_UPDATE))
    async def update_state(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.update_state(request.path_params["thread_id"], request.json()))

    @route("POST", "/threads/:thread_id/history", doc=Doc((200, 404, 422), THREAD_HISTORY, body_required=False))
    async def post_history(self, request: HttpRequest) -> Response:
        return json_response(await self._threads.history(request.path_params["thread_id"], request.json(empty={})))

    @route(
        "GET",
        "/threads/:thread_id/history",
        doc=Doc((200, 404, 422), params=(HISTORY_LIMIT, HISTORY_BEFORE)),
    )
    async def get_history(self, request: HttpRequest) -> Response:
        body: dict[str, object] = {"limit": query_integer(request.param("limit"), "limit", 10)}
        if before := request.param("before"):
            body["before"] = before
        return json_response(await self._threads.history(request.path_params["thread_id"], body))
