"""/threads: create, read, state."""

from __future__ import annotations

from robyn import Request, Response, Robyn

from src.containers import Container
from src.web.http import endpoint, json_response, provide, read_json


def register(app: Robyn, container: Container) -> None:
    @endpoint
    async def create_thread(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.create(read_json(request, empty={})))

    @endpoint
    async def get_thread(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.get(request.path_params["thread_id"]))

    @endpoint
    async def get_thread_state(request: Request) -> Response:
        threads = await provide(container.thread_service)
        return json_response(await threads.state(request.path_params["thread_id"]))

    app.add_route("POST", "/threads", create_thread)
    app.add_route("GET", "/threads/:thread_id", get_thread)
    app.add_route("GET", "/threads/:thread_id/state", get_thread_state)
