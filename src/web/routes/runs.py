"""/threads/{thread_id}/runs..., /threads/{thread_id}/stream and stateless /runs..."""

from __future__ import annotations

from typing import Any

from robyn import Request, Response, Robyn
from robyn.responses import StreamingResponse

from src.containers import Container
from src.services.errors import InvalidRequest
from src.services.runs import ActiveRun, RunService, parse_stream_modes
from src.web.http import endpoint, flag_param, json_response, no_content, provide, query_param, query_params, read_json
from src.web.sse import sse_body, sse_response


def _last_event_id(request: Request) -> int | None:
    value = request.headers.get("last-event-id")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"Last-Event-ID must be an event id this server sent, got {value!r}") from None


def _run_location(run: dict[str, Any]) -> str:
    return f"/threads/{run['thread_id']}/runs/{run['run_id']}"


def _stream(
    runs: RunService,
    active: ActiveRun,
    cancel_on_disconnect: bool,
    modes: list[str] | None = None,
    after: int | None = None,
) -> StreamingResponse:
    location = _run_location(active.record)

    def gone() -> None:
        if cancel_on_disconnect:
            runs.consumer_gone(active)

    body = sse_body(runs.events(active, modes, after), gone)
    return sse_response(body, {"Location": f"{location}/stream", "Content-Location": location})


def register(app: Robyn, container: Container) -> None:
    @endpoint
    async def create_background(request: Request) -> Response:
        runs = await provide(container.run_service)
        active = await runs.create(request.path_params.get("thread_id"), read_json(request))
        return json_response(active.record, headers={"Content-Location": _run_location(active.record)})

    @endpoint
    async def create_stream(request: Request) -> StreamingResponse:
        runs = await provide(container.run_service)
        active = await runs.create(request.path_params.get("thread_id"), read_json(request))
        return _stream(runs, active, active.request.on_disconnect == "cancel")

    @endpoint
    async def create_wait(request: Request) -> Response:
        runs = await provide(container.run_service)
        return json_response(await runs.wait(request.path_params.get("thread_id"), read_json(request)))

    @endpoint
    async def list_runs(request: Request) -> Response:
        runs = await provide(container.run_service)
        found = await runs.list(
            request.path_params["thread_id"],
            query_param(request, "limit"),
            query_param(request, "offset"),
            query_param(request, "status"),
        )
        return json_response(found)

    @endpoint
    async def get_run(request: Request) -> Response:
        runs = await provide(container.run_service)
        return json_response(await runs.get(request.path_params["thread_id"], request.path_params["run_id"]))

    @endpoint
    async def delete_run(request: Request) -> Response:
        runs = await provide(container.run_service)
        await runs.delete(request.path_params["thread_id"], request.path_params["run_id"])
        return no_content()

    @endpoint
    async def join_run(request: Request) -> Response:
        runs = await provide(container.run_service)
        return json_response(await runs.join(request.path_params["thread_id"], request.path_params["run_id"]))

    @endpoint
    async def join_stream(request: Request) -> StreamingResponse:
        runs = await provide(container.run_service)
        active = await runs.find_for_stream(request.path_params["thread_id"], request.path_params["run_id"])
        modes = [mode for mode in query_params(request, "stream_mode") if mode] or None
        if modes:
            parse_stream_modes(modes, [])
        return _stream(runs, active, flag_param(request, "cancel_on_disconnect"), modes, _last_event_id(request))

    @endpoint
    async def thread_stream(request: Request) -> StreamingResponse:
        runs = await provide(container.run_service)
        for mode in query_params(request, "stream_mode"):
            if mode != "run_modes":
                raise InvalidRequest(f"stream_mode {mode!r} is not supported for thread streams; use 'run_modes'")
        active = await runs.thread_stream(request.path_params["thread_id"])
        return _stream(runs, active, False, after=_last_event_id(request))

    @endpoint
    async def cancel_run(request: Request) -> Response:
        runs = await provide(container.run_service)
        await runs.cancel(
            request.path_params["thread_id"],
            request.path_params["run_id"],
            flag_param(request, "wait"),
            query_param(request, "action"),
        )
        return Response(status_code=202 if not flag_param(request, "wait") else 204, headers={}, description="")

    @endpoint
    async def cancel_runs(request: Request) -> Response:
        runs = await provide(container.run_service)
        await runs.cancel_many(read_json(request, empty={}), query_param(request, "action"))
        return no_content()

    app.add_route("POST", "/runs/cancel", cancel_runs)
    for prefix in ("/threads/:thread_id", ""):
        app.add_route("POST", f"{prefix}/runs", create_background)
        app.add_route("POST", f"{prefix}/runs/stream", create_stream)
        app.add_route("POST", f"{prefix}/runs/wait", create_wait)
    app.add_route("GET", "/threads/:thread_id/runs", list_runs)
    app.add_route("GET", "/threads/:thread_id/runs/:run_id", get_run)
    app.add_route("DELETE", "/threads/:thread_id/runs/:run_id", delete_run)
    app.add_route("GET", "/threads/:thread_id/runs/:run_id/join", join_run)
    app.add_route("GET", "/threads/:thread_id/runs/:run_id/stream", join_stream)
    app.add_route("POST", "/threads/:thread_id/runs/:run_id/cancel", cancel_run)
    app.add_route("GET", "/threads/:thread_id/stream", thread_stream)
