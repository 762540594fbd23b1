"""/assistants: create, read, update, delete, search, count, versions and the graph behind each."""

from __future__ import annotations

from robyn import Response

from src.services.assistants import AssistantService
from src.web.http import HttpRequest, json_response, no_content
from src.web.routing import route


class AssistantRoutes:
    def __init__(self, assistants: AssistantService) -> None:
        self._assistants = assistants

    @route("POST", "/assistants")
    async def create(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.create(request.json()))

    @route("POST", "/assistants/search")
    async def search(self, request: HttpRequest) -> Response:
        found, headers = await self._assistants.search(request.json(empty={}))
        return json_response(found, headers=headers)

    @route("POST", "/assistants/count")
    async def count(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.count(request.json(empty={})))

    @route("GET", "/assistants/:assistant_id")
    async def get(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.get(request.path_params["assistant_id"]))

    @route("PATCH", "/assistants/:assistant_id")
    async def patch(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.patch(request.path_params["assistant_id"], request.json()))

    @route("DELETE", "/assistants/:assistant_id")
    async def delete(self, request: HttpRequest) -> Response:
        await self._assistants.delete(request.path_params["assistant_id"], request.param("delete_threads"))
        return no_content()

    @route("GET", "/assistants/:assistant_id/graph")
    async def graph(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.graph(request.path_params["assistant_id"], request.param("xray")))

    @route("GET", "/assistants/:assistant_id/schemas")
    async def schemas(self, request: HttpRequest) -> Response:
        return json_response(await self._assistants.schemas(request.path_params["assistant_id"]))

    @route("GET", "/assistants/:assistant_id/subgraphs", "/assistants/:assistant_id/subgraphs/:namespace")
    async def subgraphs(self, request: HttpRequest) -> Response:
        return json_response(
            await self._assistants.subgraphs(
                request.path_params["assistant_id"], request.path_params.get("namespace"), request.param("recurse")
            )
        )

    @route("POST", "/assistants/:assistant_id/versions")
    async def versions(self, request: HttpRequest) -> Response:
        return json_response(
            await self._assistants.versions(request.path_params["assistant_id"], request.json(empty={}))
        )

    @route("POST", "/assistants/:assistant_id/latest")
    async def set_latest(self, request: HttpRequest) -> Response:
        return json_response(
            await self._assistants.set_latest(
                request.path_params["assistant_id"], request.json(empty={}), request.param("version")
            )
        )
