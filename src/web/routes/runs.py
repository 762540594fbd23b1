"""/threads/{thread_id}/runs and /runs."""

from __future__ import annotations

from robyn import Request, Response, Robyn

from src.containers import Container
from src.web.http import endpoint, json_response, provide, read_json


def register(app: Robyn, container: Container) -> None:
    @endpoint
    async def wait_run(request: Request) -> Response:
        runs = await provide(container.run_service)
        return json_response(await runs.wait(request.path_params["thread_id"], read_json(request)))

    app.add_route("POST", "/threads/:thread_id/runs/wait", wait_run)
