"""The web layer in process: the container's route objects, requests through the real pipeline.

No server and no socket: a test builds a `Container` (overriding providers with fakes as it
likes), starts it like the server does, and sends `HttpRequest`s through the same
`RequestPipeline` and route handlers Robyn would call, getting Robyn `Response`s back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
from robyn import Response
from robyn.responses import StreamingResponse

from src.containers import Container, provide, shutdown
from src.web.app import ROUTE_CLASSES
from src.web.http import HttpRequest
from src.web.pipeline import UNMATCHED, Fallback, RequestPipeline, route_label
from src.web.routing import RouteMatcher, routes_of


class ApiError(Exception):
    """A response with an error status; `detail` is its body's detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class InProcessApi:
    def __init__(self, container: Container) -> None:
        self.container = container
        self._handlers: dict[tuple[str, str], Any] = {}
        self._matcher = RouteMatcher(spec for _, cls in ROUTE_CLASSES for spec in routes_of(cls))
        self._pipeline: RequestPipeline | None = None
        self._fallback: Fallback | None = None

    async def start(self) -> InProcessApi:
        _, route_objects = await provide(self.container.application)
        by_class = {type(route_object): route_object for route_object in route_objects}
        for _, cls in ROUTE_CLASSES:
            for spec in routes_of(cls):
                self._handlers[(spec.method, spec.path)] = getattr(by_class[cls], spec.name)
        self._pipeline = self.container.request_pipeline()
        self._fallback = Fallback(self._matcher, self.container.cors_policy())
        return self

    async def stop(self) -> None:
        await shutdown(self.container)

    async def respond(
        self,
        method: str,
        path: str,
        json: Any = None,
        query: Mapping[str, str | list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response | StreamingResponse:
        assert self._pipeline is not None and self._fallback is not None, "call start() first"
        found = self._matcher.find(method, path)
        handler = self._handlers[(found[0].method, found[0].path)] if found else self._fallback
        raw_query = {
            key: [quote(value) for value in (values if isinstance(values, list) else [values])]
            for key, values in (query or {}).items()
        }
        content = body if body is not None else (b"" if json is None else orjson.dumps(json))
        # What an HTTP client sends along: the Host header and, with a body, its type.
        sent = {"host": "localhost", **({"content-type": "application/json"} if content else {})}
        request = HttpRequest(
            method=method,
            path=path,
            path_params=found[1] if found else {},
            query=raw_query,
            headers={**sent, **{name.lower(): value for name, value in (headers or {}).items()}},
            body=content,
        )
        return await self._pipeline.dispatch(handler, request, route_label(found[0].path) if found else UNMATCHED)

    async def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        """The decoded JSON of a successful response; ApiError for a 4xx/5xx."""
        response = await self.respond(method, path, json, **kwargs)
        assert isinstance(response, Response), "use respond() for streams"
        body = response.description
        decoded = orjson.loads(body) if body else None
        if response.status_code >= 400:
            raise ApiError(response.status_code, decoded["detail"])
        return decoded


class Threads:
    """The thread calls the tests use, as the SDK would send them."""

    def __init__(self, api: InProcessApi) -> None:
        self._api = api

    async def create(self, payload: dict[str, Any]) -> Any:
        return await self._api.call("POST", "/threads", payload)

    async def get(self, thread_id: str) -> Any:
        return await self._api.call("GET", f"/threads/{thread_id}")


class Runs:
    def __init__(self, api: InProcessApi) -> None:
        self._api = api

    async def wait(self, thread_id: str | None, payload: Any) -> Any:
        path = "/runs/wait" if thread_id is None else f"/threads/{thread_id}/runs/wait"
        return await self._api.call("POST", path, payload)


class Assistants:
    def __init__(self, api: InProcessApi) -> None:
        self._api = api

    async def patch(self, assistant_id: str, payload: dict[str, Any]) -> Any:
        return await self._api.call("PATCH", f"/assistants/{assistant_id}", payload)
