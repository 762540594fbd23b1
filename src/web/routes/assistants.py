"""/assistants: create, read, update, delete, search, count, versions and the graph behind each."""

from __future__ import annotations

from robyn import Response

from src.services.assistants import AssistantService
from src.web.apidoc import Doc
from src.web.http import HttpRequest, json_response, no_content
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
    def __init__(self, assistants: AssistantService) -> None:
        self._assistants = assistants

    @route("POST", "/assistants", doc=Doc((200, 400, 404, 409, 422), ASSISTANT_CREATE))
    async def create(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.create(request.json()))

    @route("POST", "/assistants/search", doc=Doc((200, 404, 422), ASSISTANT_SEARCH, body_required=False))
    async def search(self, request: HttpRequest) -> Response:
        found, headers = await self._assistants.search(request.json(empty={}))
        return json_response(found, headers=headers)

    @route("POST", "/assistants/count", doc=Doc((200, 404, 422), ASSISTANT_COUNT, body_required=False))
    async def count(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.count(request.json(empty={})))

    @route("GET", "/assistants/:assistant_id", doc=Doc((200, 404, 422)))
    async def get(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.get(request.path_params["assistant_id"]))

    @route("PATCH", "/assistants/:assistant_id", doc=Doc((200, 400, 404, 422), ASSISTANT_PATCH))
    async def patch(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.patch(request.path_params["assistant_id"], request.json()))

    @route("DELETE", "/assistants/:assistant_id", doc=Doc((204, 404, 422), params=(DELETE_THREADS,)))
    async def delete(self, request: HttpRequest) -> Response:
        await self._assistants.delete(request.path_params["assistant_id"], request.param("delete_threads"))
        return no_content()

    @route("GET", "/assistants/:assistant_id/graph", doc=Doc((200, 404, 422), params=(XRAY,)))
    async def graph(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.graph(request.path_params["assistant_id"], request.param("xray")))

    @route("GET", "/assistants/:assistant_id/schemas", doc=Doc((200, 404, 422)))
    async def schemas(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.schemas(request.path_params["assistant_id"]))

    @route(
        "GET",
        "/assistants/:assistant_id/subgraphs",
        "/assistants/:assistant_id/subgraphs/:namespace",
        doc=Doc((200, 404, 422), params=(RECURSE,)),
    )
    async def subgraphs(self, request: HttpRequest) -> Response:
        return json_response(
            await self._assistants.subgraphs(
                request.path_params["assistant_id"], request.path_params.get("namespace"), request.param("recurse")
            )
        )

    @route(
        "POST",
        "/assistants/:assistant_id/versions",
        doc=Doc((200, 404, 422), ASSISTANT_VERSIONS, body_required=False),
    )
    async def versions(self, request: HttpRequest) -> Response:
        return json_response(
            await self._assistants.versions(request.path_params["assistant_id"], request.json(empty={}))
        )

    @route(
        "POST",
        "/assistants/:assistant_id/latest",
        doc=Doc((200, 404, 422), ASSISTANT_SET_LATEST, params=(LATEST_VERSION,)),
    )
    async def set_latest(self, request: HttpRequest) -> Response:
        return json_response(
            await self._assistants.set_latest(
                request.path_params["assistant_id"], request.json(empty={}), request.param("version")
            )
        )
