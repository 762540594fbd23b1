"""HTTP plumbing shared by the route modules: JSON in and out, error mapping."""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from dependency_injector import providers
from robyn import Request, Response
from robyn.responses import StreamingResponse

from src.services.errors import Conflict, InvalidRequest, NotFound, ServiceError
from src.services.serialization import dumps
from src.services.validation import query_flag

logger = logging.getLogger("agent_server")
T = TypeVar("T")

Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]
STATUS_BY_ERROR: tuple[tuple[type[ServiceError], int], ...] = (
    (InvalidRequest, 422),
    (NotFound, 404),
    (Conflict, 409),
)


class BadRequest(ServiceError):
    """The request could not be read at all (HTTP 400)."""


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status, headers={"Content-Type": "application/json", **(headers or {})}, description=dumps(body)
    )


def error_response(status: int, detail: str) -> Response:
    return json_response({"detail": detail}, status)


def read_json(request: Request, *, empty: Any = None) -> Any:
    """The request body as JSON; an empty body reads as `empty` when that is given."""
    raw = request.body
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw or ""
    if not text.strip():
        if empty is not None:
            return empty
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None


def endpoint(handler: Handler) -> Handler:
    """Map domain errors to their status codes; never let a traceback reach the client."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response | StreamingResponse:
        try:
            return await handler(request)
        except BadRequest as exc:
            return error_response(400, str(exc))
        except ServiceError as exc:
            status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 400)
            return error_response(status, str(exc))
        except Exception:
            logger.exception("unhandled error in %s %s", request.method, request.url.path)
            return error_response(500, "internal server error; the server log has the details")

    return wrapped


async def provide(provider: providers.Provider[T]) -> T:
    """The provider's object; a provider that depends on an async resource returns an awaitable."""
    result: Any = provider()
    return await result if inspect.isawaitable(result) else result


async def resolved(result: Awaitable[None] | None) -> None:
    """Await what the container returns: an awaitable when any resource is async."""
    if result is not None:
        await result


def no_content() -> Response:
    return Response(status_code=204, headers={}, description="")


def query_param(request: Request, name: str) -> str | None:
    """A query parameter, percent- and '+'-decoded: Robyn 0.88 hands over the raw, still-encoded value."""
    raw = request.query_params.get(name, None)
    if raw is None:
        return None
    try:
        return unquote_plus(raw, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(f"query parameter {name!r} is not percent-encoded UTF-8") from None


def query_params(request: Request, name: str) -> list[str]:
    """Every value of a repeated query parameter, decoded."""
    try:
        return [unquote_plus(raw, errors="strict") for raw in request.query_params.get_all(name) or []]
    except UnicodeDecodeError:
        raise BadRequest(f"query parameter {name!r} is not percent-encoded UTF-8") from None


def flag_param(request: Request, name: str) -> bool:
    """A boolean query parameter; absent means false."""
    return bool(query_flag(query_param(request, name), name))
