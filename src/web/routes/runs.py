"""/threads/{thread_id}/runs..., /threads/{thread_id}/stream and stateless /runs..."""

from __future__ import annotations

from typing import Any

from robyn import Response
from robyn.responses import StreamingResponse

from src.services.errors import InvalidRequest
from src.services.runs.active import ActiveRun
from src.services.runs.request import RunRequest
from src.services.runs.service import RunService
from src.web.apidoc import Doc
from src.web.auth import RunGuard
from src.web.http import HttpRequest, json_response, no_content
from src.web.requests.runs import (
    parse_cancel_action,
    parse_cancel_selection,
    parse_list,
    parse_run_request,
    parse_stream_modes,
)
from src.web.routing import route
from src.web.schemas import (
    CANCEL_ACTION,
    CANCEL_WAIT,
    JOIN_STREAM,
    RUN_CANCEL_MANY,
    RUN_CREATE,
    RUN_LIST,
    THREAD_STREAM,
)
from src.web.sse import sse_body, sse_response

# What creating a run may answer: the thread (or assistant) missing, a busy thread, bad fields.
CREATE_RESPONSES = (200, 404, 409, 422)


def _last_event_id(request: HttpRequest) -> int | None:
    value = request.header("last-event-id")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"Last-Event-ID must be an event id this server sent, got {value!r}") from None


def _run_location(run: dict[str, Any]) -> str:
    return f"/threads/{run['thread_id']}/runs/{run['run_id']}"


def _comma_separated(values: list[str]) -> list[str]:
    return [mode.strip() for value in values for mode in value.split(",") if mode.strip()]


class RunRoutes:
    """Auth (src/web/auth.py): each route first resolves the run's thread with the caller's filter
    (`self._guard`; hidden: 404), then calls the run service, which takes no filter itself."""

    def __init__(self, runs: RunService, guard: RunGuard) -> None:
        self._runs = runs
        self._guard = guard

    @staticmethod
    def _run_request(request: HttpRequest) -> RunRequest:
        return parse_run_request(request.json(), stateless="thread_id" not in request.path_params)

    def _stream(
        self, active: ActiveRun, cancel_on_disconnect: bool, modes: list[str] | None = None, after: int | None = None
    ) -> StreamingResponse:
        location = _run_location(active.record)

        def gone() -> None:
            if cancel_on_disconnect:
                self._runs.consumer_gone(active)

        body = sse_body(self._runs.events(active, modes, after), gone)
        return sse_response(body, {"Location": f"{location}/stream", "Content-Location": location})

    @route("POST", "/threads/:thread_id/runs", "/runs", doc=Doc(CREATE_RESPONSES, RUN_CREATE))
    async def create(self, request: HttpRequest) -> Response:
        thread_id = request.path_params.get("thread_id")
        run = await self._guard.create(request, thread_id, self._run_request(request))
        active = await self._runs.create(thread_id, run)
        return json_response(active.record, headers={"Content-Location": _run_location(active.record)})

    @route(
        "POST",
        "/threads/:thread_id/runs/stream",
        "/runs/stream",
        doc=Doc(CREATE_RESPONSES, RUN_CREATE, media_type="text/event-stream"),
    )
    async def create_stream(self, request: HttpRequest) -> StreamingResponse:
        thread_id = request.path_params.get("thread_id")
        run = await self._guard.create(request, thread_id, self._run_request(request))
        active = await self._runs.create(thread_id, run)
        return self._stream(active, active.request.on_disconnect == "cancel")

    @route("POST", "/threads/:thread_id/runs/wait", "/runs/wait", doc=Doc(CREATE_RESPONSES, RUN_CREATE))
    async def create_wait(self, request: HttpRequest) -> Response:
        thread_id = request.path_params.get("thread_id")
        run = await self._guard.create(request, thread_id, self._run_request(request))
        result = await self._runs.wait(thread_id, run)
        return json_response(result)

    @route("GET", "/threads/:thread_id/runs", doc=Doc((200, 404, 422), params=RUN_LIST))
    async def list_runs(self, request: HttpRequest) -> Response:
        limit, offset, status = parse_list(request.param("limit"), request.param("offset"), request.param("status"))
        await self._guard.thread(request, "search", request.path_params["thread_id"], {"metadata": {}})
        return json_response(await self._runs.list(request.path_params["thread_id"], limit, offset, status))

    @route("GET", "/threads/:thread_id/runs/:run_id", doc=Doc((200, 404, 422)))
    async def get(self, request: HttpRequest) -> Response:
        await self._guard.run(request, "read", request.path_params["thread_id"], request.path_params["run_id"])
        return json_response(await self._runs.get(request.path_params["thread_id"], request.path_params["run_id"]))

    @route("DELETE", "/threads/:thread_id/runs/:run_id", doc=Doc((204, 404, 409, 422)))
    async def delete(self, request: HttpRequest) -> Response:
        await self._guard.run(request, "delete", request.path_params["thread_id"], request.path_params["run_id"])
        await self._runs.delete(request.path_params["thread_id"], request.path_params["run_id"])
        return no_content()

    @route("GET", "/threads/:thread_id/runs/:run_id/join", doc=Doc((200, 404, 422)))
    async def join(self, request: HttpRequest) -> Response:
        await self._guard.run(request, "read", request.path_params["thread_id"], request.path_params["run_id"])
        return json_response(await self._runs.join(request.path_params["thread_id"], request.path_params["run_id"]))

    @route(
        "GET",
        "/threads/:thread_id/runs/:run_id/stream",
        doc=Doc((200, 404, 422), params=JOIN_STREAM, media_type="text/event-stream"),
    )
    async def join_stream(self, request: HttpRequest) -> StreamingResponse:
        await self._guard.run(request, "read", request.path_params["thread_id"], request.path_params["run_id"])
        active = await self._runs.find_for_stream(request.path_params["thread_id"], request.path_params["run_id"])
        modes = [mode for mode in request.params("stream_mode") if mode] or None
        if modes:
            parse_stream_modes(modes, [])
        return self._stream(active, request.flag("cancel_on_disconnect"), modes, _last_event_id(request))

    @route(
        "GET",
        "/threads/:thread_id/stream",
        doc=Doc((200, 404, 422), params=THREAD_STREAM, media_type="text/event-stream"),
    )
    async def thread_stream(self, request: HttpRequest) -> StreamingResponse:
        # The SDKs send `stream_mode` (repeated); the LangGraph API reads `stream_modes` (comma-separated).
        modes = _comma_separated([*request.params("stream_mode"), *request.params("stream_modes")]) or None
        await self._guard.thread(request, "read", request.path_params["thread_id"])
        follower = await self._runs.thread_stream(
            request.path_params["thread_id"], modes, request.header("last-event-id") or None
        )
        return sse_response(sse_body(follower.events(), follower.close))

    @route(
        "POST",
        "/threads/:thread_id/runs/:run_id/cancel",
        doc=Doc((202, 204, 404, 409, 422), params=(CANCEL_WAIT, CANCEL_ACTION)),
    )
    async def cancel(self, request: HttpRequest) -> Response:
        wait, rollback = request.flag("wait"), parse_cancel_action(request.param("action"))
        await self._guard.cancel(request, request.path_params["thread_id"], request.path_params["run_id"], rollback)
        await self._runs.cancel(request.path_params["thread_id"], request.path_params["run_id"], wait, rollback)
        return no_content(204 if wait else 202)

    @route("POST", "/runs/cancel", doc=Doc((204, 422), RUN_CANCEL_MANY, params=(CANCEL_ACTION,)))
    async def cancel_many(self, request: HttpRequest) -> Response:
        rollback = parse_cancel_action(request.param("action"))
        selection = parse_cancel_selection(request.json(empty={}))
        visible_threads = await self._guard.cancel_many(request, selection, rollback)
        await self._runs.cancel_many(selection, rollback, visible_threads)
        return no_content()
