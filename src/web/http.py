"""HTTP values the route classes work with: a typed request, JSON responses, request errors.

Route handlers take an `HttpRequest` (built once per request by the pipeline from
Robyn's request) and return a Robyn `Response` or `StreamingResponse`. Keeping the
request type our own lets the web layer be tested in-process without a server.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_plus

from robyn import Response

from src.services.auth.user import AuthUser
from src.services.serialization import dumps
from src.services.validation import query_flag
from src.web.requests.rules import BadRequest, check_text, parse_json


class PathParams(Mapping[str, str]):
    """Path parameters as Robyn hands them over (still percent-encoded), decoded when read.

    Decoding on read makes a value that is not percent-encoded UTF-8 a `BadRequest` (400)
    raised inside the handler, where the pipeline answers it, instead of a crash while
    the request is being built.
    """

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = dict(raw)

    def __getitem__(self, name: str) -> str:
        try:
            return unquote(self._raw[name], errors="strict")
        except UnicodeDecodeError:
            raise BadRequest(f"path parameter {name!r} is not percent-encoded UTF-8") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@dataclass(frozen=True)
class HttpRequest:
    """One request: method, path, path parameters, raw query, lower-cased headers and body; `caller` is
    who the auth module says sent it (set by the pipeline; None when auth is off or the path is public)."""

    method: str
    path: str
    path_params: Mapping[str, str] = field(default_factory=dict)  # a `PathParams` when built from Robyn's
    # Robyn 0.88 hands query values over still percent-encoded; `param` decodes them.
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    caller: AuthUser | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        """The last value of a query parameter, percent- and '+'-decoded; None when absent."""
        values = self.query.get(name)
        return _decode(name, values[-1]) if values else None

    def params(self, name: str) -> list[str]:
        """Every value of a repeated query parameter, decoded."""
        return [_decode(name, raw) for raw in self.query.get(name) or []]

    def flag(self, name: str) -> bool:
        """A boolean query parameter; absent means false."""
        return bool(query_flag(self.param(name), name))

    def json(self, *, empty: Any = None) -> Any:
        """The body as JSON under the rule of src/web/requests/rules.py; an empty body reads as
        `empty` when that is given."""
        if not self.body.strip():
            if empty is not None:
                return empty
            raise BadRequest("request body is empty; expected a JSON object")
        return parse_json(self.body)


def _decode(name: str, raw: str) -> str:
    try:
        value = unquote_plus(raw, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(f"query parameter {name!r} is not percent-encoded UTF-8") from None
    check_text(value, f"query parameter {name!r}")
    return value


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        status_code=status, headers={"Content-Type": "application/json", **(headers or {})}, description=dumps(body)
    )


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    return json_response({"detail": detail}, status, headers)


def no_content(status: int = 204) -> Response:
    return Response(status_code=status, headers={}, description="")
