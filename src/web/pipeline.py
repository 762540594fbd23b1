"""What happens to every request around its handler.

`RequestPipeline.dispatch` turns Robyn's request into an `HttpRequest`, calls the
handler, maps domain errors to status codes with a `{"detail": ...}` body (never a
traceback), adds the CORS headers and writes one access-log line. `fallback` answers
what no route matches: 404 or 405 as JSON, and CORS preflights.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from robyn import Request, Response
from robyn.responses import StreamingResponse

from src.services.errors import Conflict, InvalidRequest, NotFound, ServiceError
from src.web.cors import CorsPolicy, CorsRefused
from src.web.http import BadRequest, HttpRequest, PathParams, error_response
from src.web.routing import Handler, HandlerResult, RouteMatcher

logger = logging.getLogger("agent_server")
access_logger = logging.getLogger("agent_server.access")

STATUS_BY_ERROR: tuple[tuple[type[ServiceError], int], ...] = (
    (BadRequest, 400),
    (InvalidRequest, 422),
    (NotFound, 404),
    (Conflict, 409),
)
RobynHandler = Callable[[Request], Awaitable[HandlerResult]]


def to_http_request(request: Request) -> HttpRequest:
    body = request.body
    return HttpRequest(
        method=request.method,
        path=request.url.path,
        path_params=PathParams(request.path_params or {}),
        query=request.query_params.to_dict(),
        headers={name.lower(): value for name, value in request.headers.to_dict().items()},
        body=body.encode() if isinstance(body, str) else bytes(body or b""),
    )


class RequestPipeline:
    def __init__(self, cors: CorsPolicy, access_log: bool) -> None:
        self._cors = cors
        self._access_log = access_log

    def wrap(self, handler: Handler) -> RobynHandler:
        """A Robyn handler that runs `handler` through the pipeline."""

        async def handle(request: Request) -> HandlerResult:
            return await self.dispatch(handler, to_http_request(request))

        handle.__name__ = getattr(handler, "__name__", "handler")
        return handle

    async def dispatch(self, handler: Handler, request: HttpRequest) -> HandlerResult:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except ServiceError as exc:
            status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 400)
            response = error_response(status, str(exc))
        except Exception:
            logger.exception("unhandled error in %s %s", request.method, request.path)
            response = error_response(500, "internal server error; the server log has the details")
        cors = self._cors.response_headers(request.headers.get("origin"))
        if cors and not response.headers.contains("access-control-allow-origin"):  # a preflight has its own
            for name, value in cors.items():
                response.headers.set(name, value)
        if self._access_log:
            access_logger.info(
                "%s %s %d %.1fms%s",
                request.method,
                request.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
                " (stream)" if isinstance(response, StreamingResponse) else "",
            )
        return response


class Fallback:
    """The handler for every method and path no route serves."""

    def __init__(self, matcher: RouteMatcher, cors: CorsPolicy) -> None:
        self._matcher = matcher
        self._cors = cors

    async def __call__(self, request: HttpRequest) -> Response:
        allowed = self._matcher.allowed_methods(request.path)
        origin = request.headers.get("origin")
        asked = request.headers.get("access-control-request-method")
        if request.method == "OPTIONS" and allowed and origin and asked:
            try:
                headers = self._cors.preflight(
                    origin,
                    asked,
                    request.headers.get("access-control-request-headers"),
                    request.headers.get("access-control-request-private-network") == "true",
                )
            except CorsRefused as exc:
                return error_response(400, str(exc))
            return Response(status_code=204, headers=headers, description="")
        if request.method == "OPTIONS" and allowed:
            return Response(status_code=204, headers={"Allow": ", ".join([*allowed, "OPTIONS"])}, description="")
        if allowed:
            return error_response(
                405,
                f"Method {request.method} is not allowed on {request.path}; allowed: {', '.join(allowed)}",
                {"Allow": ", ".join(allowed)},
            )
        return error_response(404, f"No route for {request.method} {request.path}; see /openapi.json")
