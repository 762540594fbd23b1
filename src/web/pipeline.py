"""What happens to every request around its handler.

`RequestPipeline.dispatch` turns Robyn's request into an `HttpRequest`, authenticates it
(src/web/auth.py: the caller, or the auth module's refusal), calls the handler, maps domain
errors to status codes with a `{"detail": ...}` body (never a traceback) - a database that
cannot be used to 503 with `Retry-After`, anything else unexpected to 500 - adds the CORS
headers, counts the request in the metrics under its route template and writes one
access-log line. `fallback` answers what no route matches: 404 or 405 as JSON, and CORS
preflights.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from robyn import Request, Response
from robyn.responses import StreamingResponse

from src.services.auth.errors import AuthRefused
from src.services.database import DatabaseUnreachable, one_line, unavailable_cause
from src.services.errors import Conflict, InvalidRequest, NotFound, ServiceError
from src.services.metrics import Metrics
from src.web.auth import AuthGate
from src.web.cors import CorsPolicy, CorsRefused
from src.web.http import HttpRequest, PathParams, error_response
from src.web.requests.rules import BadRequest
from src.web.routing import PATH_PARAM, Handler, HandlerResult, RouteMatcher

logger = logging.getLogger("agent_server")
access_logger = logging.getLogger("agent_server.access")

STATUS_BY_ERROR: tuple[tuple[type[ServiceError], int], ...] = (
    (BadRequest, 400),
    (InvalidRequest, 422),
    (NotFound, 404),
    (Conflict, 409),
)
# Seconds a client is asked to wait before it retries while the database cannot be used: the
# pool tries the database twice a second and serves again as soon as it answers.
RETRY_AFTER_SECONDS = 1
RobynHandler = Callable[[Request], Awaitable[HandlerResult]]
# The route label of requests no route serves (404, 405, preflights).
UNMATCHED = "unmatched"
LOGGED_IDS = ("thread_id", "run_id", "cron_id")


def route_label(template: str) -> str:
    """A route template as metrics label it: /threads/{thread_id}/runs (Robyn writes :thread_id)."""
    return PATH_PARAM.sub(r"{\1}", template)


def logged_ids(params: Mapping[str, str]) -> dict[str, str | None]:
    """The ids a log line carries; one that does not decode (answered 400) is left out."""
    ids: dict[str, str | None] = {}
    for name in LOGGED_IDS:
        try:
            ids[name] = params.get(name)
        except BadRequest:
            ids[name] = None
    return ids


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


@dataclass(frozen=True)
class RequestLimits:
    """What a request must be before any handler sees it.

    `allowed_hosts`: Host header names answered (`*` any, `.example.com` its subdomains);
    `max_body_bytes`: larger bodies get 413 before they are parsed. A body must be JSON
    (`application/json` or `+json`, else 415): a web page can send a "simple" cross-origin
    POST with any other type and no CORS preflight, and must not be able to create runs.
    """

    allowed_hosts: tuple[str, ...] = ("*",)
    max_body_bytes: int = 10 * 1024 * 1024

    def host_allowed(self, host: str | None) -> bool:
        if "*" in self.allowed_hosts:
            return True
        if not host:
            return False
        name = host.strip().lower()
        if name.startswith("["):  # [::1]:8123
            name = name[1 : name.find("]")] if "]" in name else name
        elif name.count(":") == 1:  # example.com:8123 (an IPv6 literal has more colons)
            name = name.partition(":")[0]
        return any(
            name == allowed or (allowed.startswith(".") and (name.endswith(allowed) or name == allowed[1:]))
            for allowed in self.allowed_hosts
        )

    def refusal(self, request: HttpRequest) -> Response | None:
        """The error response for a request that breaks a limit; None for one that does not."""
        host = request.headers.get("host")
        if not self.host_allowed(host):
            return error_response(
                400, f"Host {host!r} is not served here; add it to server.allowed_hosts (ALLOWED_HOSTS)"
            )
        length = request.headers.get("content-length", "")
        size = int(length) if length.isdigit() else len(request.body)
        if max(size, len(request.body)) > self.max_body_bytes:
            return error_response(
                413, f"request body is larger than {self.max_body_bytes} bytes (server.max_body_bytes)"
            )
        if request.body:
            media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            if media_type != "application/json" and not media_type.endswith("+json"):
                shown = repr(media_type) if media_type else "none"
                return error_response(415, f"Content-Type must be application/json for a request body, got {shown}")
        return None


class RequestPipeline:
    def __init__(
        self,
        cors: CorsPolicy,
        access_log: bool,
        limits: RequestLimits,
        metrics: Metrics | None = None,
        auth: AuthGate | None = None,
    ) -> None:
        self._cors = cors
        self._access_log = access_log
        self._limits = limits
        self._metrics = metrics
        self._auth = auth

    def wrap(self, handler: Handler, route: str = UNMATCHED) -> RobynHandler:
        """A Robyn handler that runs `handler`, registered on the path template `route`, through the pipeline."""
        label = route_label(route)

        async def handle(request: Request) -> HandlerResult:
            return await self.dispatch(handler, to_http_request(request), label)

        handle.__name__ = getattr(handler, "__name__", "handler")
        return handle

    async def dispatch(self, handler: Handler, request: HttpRequest, route: str = UNMATCHED) -> HandlerResult:
        started = time.perf_counter()
        try:
            refused = self._limits.refusal(request)
            if refused is None and self._auth is not None:
                request = await self._auth.admit(request)
            response = refused or await handler(request)
        except AuthRefused as exc:
            if exc.status >= 500:  # the auth module's own failure: the operator must hear of it
                logger.error("%s %s: %s", request.method, request.path, exc)
            response = error_response(exc.status, str(exc), exc.headers)
        except ServiceError as exc:
            status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 400)
            response = error_response(status, str(exc))
        except Exception as exc:
            cause = unavailable_cause(exc)
            if cause is None:
                logger.exception("unhandled error in %s %s", request.method, request.path)
                response = error_response(500, "internal server error; the server log has the details")
            else:
                # The database's state, not a bug: no traceback, and the client may retry.
                detail = f"the database is unavailable: {one_line(cause)}"
                if not isinstance(cause, DatabaseUnreachable):  # the pool logs an outage once, not per request
                    logger.warning("%s %s: %s", request.method, request.path, detail)
                response = error_response(503, detail, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        cors = self._cors.response_headers(request.headers.get("origin"))
        if cors and not response.headers.contains("access-control-allow-origin"):  # a preflight has its own
            for name, value in cors.items():
                response.headers.set(name, value)
        elapsed = time.perf_counter() - started
        streaming = isinstance(response, StreamingResponse)
        if self._metrics is not None:
            self._metrics.http_request(route, request.method, response.status_code, elapsed)
            if isinstance(response, StreamingResponse):
                # Robyn wraps an async generator body; the generator itself tells when the stream ends.
                self._metrics.stream_opened(getattr(response.content, "_async_gen", response.content))
        if self._access_log:
            access_logger.info(
                "%s %s %d %.1fms%s",
                request.method,
                request.path,
                response.status_code,
                elapsed * 1000,
                " (stream)" if streaming else "",
                extra=logged_ids(request.path_params),
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
