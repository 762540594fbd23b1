"""The OpenAPI document, built from the routes the app really registers, and the /docs page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from robyn import Response

from src import __version__
from src.web.http import HttpRequest, json_response
from src.web.routing import PATH_PARAM, RouteSpec, route, routes_of

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "What was wrong with the request"}},
    "required": ["detail"],
}
ERROR_CODES = {"400": "Unreadable request body", "404": "Not found", "409": "Conflict", "422": "Invalid fields"}
DOCS_PAGE = """<!DOCTYPE html>
<html>
  <head>
    <title>agent-server API</title>
    <link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css" />
    <script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script>
      window.onload = () => SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});
    </script>
  </body>
</html>
"""


def _operation(method: str, spec: RouteSpec, area: str) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "Success"}}
    if spec.name.endswith("stream") or spec.path.endswith("/stream"):
        responses["200"] = {"description": "Server-sent events", "content": {"text/event-stream": {}}}
    elif method == "delete":
        responses = {"204": {"description": "Deleted"}}
    for code, text in ERROR_CODES.items():
        responses[code] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    stateless = "" if ":thread_id" in spec.path or not spec.path.startswith("/runs") else "stateless_"
    operation: dict[str, Any] = {
        "operationId": f"{area}_{stateless}{spec.name}_{method}",
        "summary": spec.name.replace("_", " ").capitalize(),
        "tags": [area.capitalize()],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in PATH_PARAM.findall(spec.path)
        ],
        "responses": responses,
    }
    if method in ("post", "put", "patch"):
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return operation


def build_openapi(routes: Iterable[tuple[str, RouteSpec]]) -> dict[str, Any]:
    """OpenAPI 3.1 for every registered route (area, spec): paths, methods, parameters and error shape."""
    paths: dict[str, dict[str, Any]] = {}
    for area, spec in routes:
        method = spec.method.lower()
        path = PATH_PARAM.sub(r"{\1}", spec.path)
        paths.setdefault(path, {})[method] = _operation(method, spec, area)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "agent-server",
            "version": __version__,
            "description": "A self-hosted server for LangGraph graphs, speaking the LangGraph API.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": {"Error": ERROR_SCHEMA}},
    }


class DocsRoutes:
    """/openapi.json and /docs, describing the routes the app registers (given at construction)."""

    def __init__(self, routes: Iterable[tuple[str, RouteSpec]]) -> None:
        self._routes = list(routes)
        self._document: dict[str, Any] | None = None

    @route("GET", "/openapi.json")
    async def openapi(self, request: HttpRequest) -> Response:
        if self._document is None:  # built on first use
            self._document = build_openapi([*self._routes, *(("system", spec) for spec in routes_of(DocsRoutes))])
        return json_response(self._document)

    @route("GET", "/docs")
    async def docs(self, request: HttpRequest) -> Response:
        return Response(status_code=200, headers={"Content-Type": "text/html; charset=utf-8"}, description=DOCS_PAGE)
