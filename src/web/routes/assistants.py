"""/assistants: create, read, update, delete, search, count, versions and the graph behind each."""

from __future__ import annotations

from robyn import Request, Response, Robyn

from src.containers import Container
from src.web.http import endpoint, json_response, no_content, provide, query_param, read_json


def register(app: Robyn, container: Container) -> None:
    @endpoint
    async def create_assistant(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        return json_response(await assistants.create(read_json(request)))

    @endpoint
    async def search_assistants(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        found, headers = await assistants.search(read_json(request, empty={}))
        return json_response(found, headers=headers)

    @endpoint
    async def count_assistants(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        return json_response(await assistants.count(read_json(request, empty={})))

    @endpoint
    async def get_assistant(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        return json_response(await assistants.get(request.path_params["assistant_id"]))

    @endpoint
    async def patch_assistant(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        return json_response(await assistants.patch(request.path_params["assistant_id"], read_json(request)))

    @endpoint
    async def delete_assistant(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        await assistants.delete(request.path_params["assistant_id"], query_param(request, "delete_threads"))
        return no_content()

    @endpoint
    async def get_assistant_graph(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        xray = query_param(request, "xray")
        return json_response(await assistants.graph(request.path_params["assistant_id"], xray))

    @endpoint
    async def get_assistant_schemas(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        return json_response(await assistants.schemas(request.path_params["assistant_id"]))

    @endpoint
    async def get_assistant_subgraphs(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        return json_response(
            await assistants.subgraphs(
                request.path_params["assistant_id"],
                request.path_params.get("namespace"),
                query_param(request, "recurse"),
            )
        )

    @endpoint
    async def get_assistant_versions(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        return json_response(
            await assistants.versions(request.path_params["assistant_id"], read_json(request, empty={}))
        )

    @endpoint
    async def set_latest_assistant_version(request: Request) -> Response:
        assistants = await provide(container.assistant_service)
        return json_response(
            await assistants.set_latest(
                request.path_params["assistant_id"],
                read_json(request, empty={}),
                query_param(request, "version"),
            )
        )

    app.add_route("POST", "/assistants", create_assistant)
    app.add_route("POST", "/assistants/search", search_assistants)
    app.add_route("POST", "/assistants/count", count_assistants)
    app.add_route("GET", "/assistants/:assistant_id", get_assistant)
    app.add_route("PATCH", "/assistants/:assistant_id", patch_assistant)
    app.add_route("DELETE", "/assistants/:assistant_id", delete_assistant)
    app.add_route("GET", "/assistants/:assistant_id/graph", get_assistant_graph)
    app.add_route("GET", "/assistants/:assistant_id/schemas", get_assistant_schemas)
    app.add_route("GET", "/assistants/:assistant_id/subgraphs", get_assistant_subgraphs)
    app.add_route("GET", "/assistants/:assistant_id/subgraphs/:namespace", get_assistant_subgraphs)
    app.add_route("POST", "/assistants/:assistant_id/versions", get_assistant_versions)
    app.add_route("POST", "/assistants/:assistant_id/latest", set_latest_assistant_version)
