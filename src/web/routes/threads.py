"""/threads: create, search, count, read, patch, delete, copy, state and history."""

from __future__ import annotations

from robyn import Request, Response, Robyn

from src.containers import Container
from src.services.errors import InvalidRequest
from src.services.validation import query_integer
from src.web.http import endpoint, flag_param, json_response, no_content, provide, query_param, read_json


def register(app: Robyn, container: Container) -> None:
    @endpoint
    async def create_thread(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.create(read_json(request, empty={})))

    @endpoint
    async def search_threads(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.search(read_json(request, empty={})))

    @endpoint
    async def count_threads(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.count(read_json(request, empty={})))

    @endpoint
    async def get_thread(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.get(request.path_params["thread_id"]))

    @endpoint
    async def patch_thread(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.patch(request.path_params["thread_id"], read_json(request)))

    @endpoint
    async def delete_thread(request: Request) -> Response:
        threads = await provide(container.thread_service)
        await threads.delete(request.path_params["thread_id"])
        return no_content()

    @endpoint
    async def copy_thread(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.copy(request.path_params["thread_id"]))

    @endpoint
    async def get_state(request: Request) -> Response:
        threads = await provide(container.thread_service)
        state = await threads.state(request.path_params["thread_id"], subgraphs=flag_param(request, "subgraphs"))
        return json_response(state)

    @endpoint
    async def get_state_at(request: Request) -> Response:
        threads = await provide(container.thread_service)
        thread_id, checkpoint_id = request.path_params["thread_id"], request.path_params["checkpoint_id"]
        return json_response(await threads.state(thread_id, checkpoint_id, flag_param(request, "subgraphs")))

    @endpoint
    async def post_state_at(request: Request) -> Response:
        threads = await provide(container.thread_service)
        body = read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("checkpoint"), dict):
            raise InvalidRequest("body must be an object with a checkpoint object")
        subgraphs = bool(body.get("subgraphs"))
        return json_response(await threads.state(request.path_params["thread_id"], body["checkpoint"], subgraphs))

    @endpoint
    async def update_state(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.update_state(request.path_params["thread_id"], read_json(request)))

    @endpoint
    async def post_history(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.history(request.path_params["thread_id"], read_json(request, empty={})))

    @endpoint
    async def get_history(request: Request) -> Response:
        threads = await provide(container.thread_service)
        body: dict[str, object] = {"limit": query_integer(query_param(request, "limit"), "limit", 10)}
        if before := query_param(request, "before"):
            body["before"] = before
        return json_response(await threads.history(request.path_params["thread_id"], body))

    app.add_route("POST", "/threads", create_thread)
    app.add_route("POST", "/threads/search", search_threads)
    app.add_route("POST", "/threads/count", count_threads)
    app.add_route("GET", "/threads/:thread_id", get_thread)
    app.add_route("PATCH", "/threads/:thread_id", patch_thread)
    app.add_route("DELETE", "/threads/:thread_id", delete_thread)
    app.add_route("POST", "/threads/:thread_id/copy", copy_thread)
    app.add_route("GET", "/threads/:thread_id/state", get_state)
    app.add_route("POST", "/threads/:thread_id/state", update_state)
    app.add_route("POST", "/threads/:thread_id/state/checkpoint", post_state_at)
    app.add_route("GET", "/threads/:thread_id/state/:checkpoint_id", get_state_at)
    app.add_route("POST", "/threads/:thread_id/history", post_history)
    app.add_route("GET", "/threads/:thread_id/history", get_history)
