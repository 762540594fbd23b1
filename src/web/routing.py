"""Routes as data: route classes mark their handlers with `@route`, the app registers them.

A route class (one per API area) receives its services in `__init__` from the container
and has one method per endpoint, taking an `HttpRequest`. `RouteMatcher` knows every
registered path template, so unknown paths get 404 and known paths with another method
get 405 with an `Allow` header, both as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from robyn import Response
from robyn.responses import StreamingResponse

from src.web.apidoc import Doc
from src.web.http import HttpRequest

ROUTE_ATTRIBUTE = "__agent_server_routes__"
PATH_PARAM = re.compile(r":(\w+)")

HandlerResult = Response | StreamingResponse
Handler = Callable[[HttpRequest], Awaitable[HandlerResult]]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str  # Robyn's template: /threads/:thread_id
    name: str  # the handler method's name
    doc: Doc = Doc()  # what the OpenAPI document says about it


def route(method: str, *paths: str, doc: Doc | None = None) -> Callable[[F], F]:
    """Mark a route-class method as the handler of `method` on each of `paths`, documented by `doc`."""

    def mark(function: F) -> F:
        marks: list[tuple[str, str, Doc]] = getattr(function, ROUTE_ATTRIBUTE, [])
        marks.extend((method.upper(), path, doc or Doc()) for path in paths)
        setattr(function, ROUTE_ATTRIBUTE, marks)
        return function

    return mark


def routes_of(cls: type) -> list[RouteSpec]:
    """Every (method, path) a route class serves, in definition order."""
    found = []
    for name, member in vars(cls).items():
        for method, path, doc in getattr(member, ROUTE_ATTRIBUTE, []):
            found.append(RouteSpec(method, path, name, doc))
    return found


class RouteMatcher:
    """Which methods a concrete path is served with, and the path parameters of a match."""

    def __init__(self, specs: Iterable[RouteSpec]) -> None:
        self._patterns: list[tuple[re.Pattern[str], RouteSpec]] = []
        for spec in specs:
            pattern = "^" + PATH_PARAM.sub(r"(?P<\1>[^/]+)", re.escape(spec.path).replace(r"\:", ":")) + "/?$"
            self._patterns.append((re.compile(pattern), spec))

    def matches(self, path: str) -> Iterator[tuple[RouteSpec, dict[str, str]]]:
        for pattern, spec in self._patterns:
            found = pattern.match(path)
            if found is not None:
                yield spec, found.groupdict()

    def allowed_methods(self, path: str) -> list[str]:
        return sorted({spec.method for spec, _ in self.matches(path)})

    def find(self, method: str, path: str) -> tuple[RouteSpec, dict[str, str]] | None:
        """The most specific route for method and path: literal segments beat parameters."""
        candidates = [(spec, params) for spec, params in self.matches(path) if spec.method == method]
        if not candidates:
            return None
        return min(candidates, key=lambda found: len(found[1]))
