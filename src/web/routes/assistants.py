"""/assistants: create, read, update, delete, search, count, versions and the graph behind each."""

from __future__ import annotations

from robyn import Response

from src.services.assistants.service import AssistantService
from src.web.apidoc import Doc
from src.web.auth import AssistantGuard
from src.web.http import HttpRequest, json_response, no_content
from src.web.requests.assistants import (
    parse_count,
    parse_create,
    parse_latest,
    parse_patch,
    parse_search,
    parse_versions,
    parse_xray,
)
from src.web.routing import route
from src.web.schemas import (
    ASSISTANT_COUNT,
    ASSISTANT_CREATE,
    ASSISTANT_PATCH,
    ASSISTANT_SEARCH,
    ASSISTANT_SET_LATEST,
    ASSISTANT_VERSIONS,
    DELETE_THREADS,
    LATEST_VERSION,
    RECURSE,
    XRAY,
)


class AssistantRoutes:
    """Each route first asks the auth guard (src/web/auth.py), then hands its service the filter it got."""

    def __init__(self, assistants: AssistantService, guard: AssistantGuard) -> None:
        self._assistants = assistants
        self._guard = guard

    @route("POST", "/assistants", doc=Doc((200, 400, 404, 409, 422), ASSISTANT_CREATE))
    async def create(self, request: HttpRequest) -> Response:
        create, visible = await self._guard.create(request, parse_create(request.json()))
        return json_response(await self._assistants.create(create, visible))

    @route("POST", "/assistants/search", doc=Doc((200, 404, 422), ASSISTANT_SEARCH, body_required=False))
    async def search(self, request: HttpRequest) -> Response:
        search = await self._guard.search(request, parse_search(request.json(empty={})))
        page = await self._assistants.search(search)
        # The LangGraph API's pagination headers: a total past this page when more follow.
        shown = len(page.assistants)
        headers = {"X-Pagination-Total": str(page.offset + shown + (1 if page.more else 0))}
        if page.more:
            headers["X-Pagination-Next"] = str(page.offset + page.limit)
        return json_response(page.assistants, headers=headers)

    @route("POST", "/assistants/count", doc=Doc((200, 404, 422), ASSISTANT_COUNT, body_required=False))
    async def count(self, request: HttpRequest) -> Response:
        query = await self._guard.count(request, parse_count(request.json(empty={})))
        return json_response(await self._assistants.count(query))

    @route("GET", "/assistants/:assistant_id", doc=Doc((200, 404, 422)))
    async def get(self, request: HttpRequest) -> Response:
        assistant_id = request.path_params["assistant_id"]
        return json_response(await self._assistants.get(assistant_id, await self._guard.read(request, assistant_id)))

    @route("PATCH", "/assistants/:assistant_id", doc=Doc((200, 400, 404, 422), ASSISTANT_PATCH))
    async def patch(self, request: HttpRequest) -> Response:
        assistant_id = request.path_params["assistant_id"]
        patch, visible = await self._guard.update(request, assistant_id, parse_patch(request.json()))
        return json_response(await self._assistants.patch(assistant_id, patch, visible))

    @route("DELETE", "/assistants/:assistant_id", doc=Doc((204, 404, 422), params=(DELETE_THREADS,)))
    async def delete(self, request: HttpRequest) -> Response:
        assistant_id = request.path_params["assistant_id"]
        visible = await self._guard.delete(request, assistant_id)
        await self._assistants.delete(assistant_id, request.flag("delete_threads"), visible)
        return no_content()

    @route("GET", "/assistants/:assistant_id/graph", doc=Doc((200, 404, 422), params=(XRAY,)))
    async def graph(self, request: HttpRequest) -> Response:
        xray = parse_xray(request.param("xray"))
        assistant_id = request.path_params["assistant_id"]
        visible = await self._guard.read(request, assistant_id)
        return json_response(await self._assistants.graph(assistant_id, xray, visible))

    @route("GET", "/assistants/:assistant_id/schemas", doc=Doc((200, 404, 422)))
    async def schemas(self, request: HttpRequest) -> Response:
        assistant_id = request.path_params["assistant_id"]
        visible = await self._guard.read(request, assistant_id)
        return json_response(await self._assistants.schemas(assistant_id, visible))

    @route(
        "GET",
        "/assistants/:assistant_id/subgraphs",
        "/assistants/:assistant_id/subgraphs/:namespace",
        doc=Doc((200, 404, 422), params=(RECURSE,)),
    )
    async def subgraphs(self, request: HttpRequest) -> Response:
        assistant_id = request.path_params["assistant_id"]
        visible = await self._guard.read(request, assistant_id)
        return json_response(
            await self._assistants.subgraphs(
                assistant_id, request.path_params.get("namespace"), request.flag("recurse"), visible
            )
        )

    @route(
        "POST",
        "/assistants/:assistant_id/versions",
        doc=Doc((200, 404, 422), ASSISTANT_VERSIONS, body_required=False),
    )
    async def versions(self, request: HttpRequest) -> Response:
        query = parse_versions(request.json(empty={}))
        assistant_id = request.path_params["assistant_id"]
        visible = await self._guard.read(request, assistant_id)
        return json_response(await self._assistants.versions(assistant_id, query, visible))

    @route(
        "POST",
        "/assistants/:assistant_id/latest",
        doc=Doc((200, 404, 422), ASSISTANT_SET_LATEST, params=(LATEST_VERSION,)),
    )
    async def set_latest(self, request: HttpRequest) -> Response:
        version = parse_latest(request.json(empty={}), request.param("version"))
        assistant_id = request.path_params["assistant_id"]
        visible = await self._guard.set_latest(request, assistant_id, version)
        return json_response(await self._assistants.set_latest(assistant_id, version, visible))
