"""The OpenAPI document, built from the routes the app really registers, and the /docs page."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from robyn import Request, Response, Robyn
from robyn.router import Route

from src import __version__
from src.web.http import endpoint, json_response

PATH_PARAM = re.compile(r":(\w+)")
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


def _operation(method: str, path: str, handler_name: str) -> dict[str, Any]:
    tag = path.strip("/").split("/")[0] or "system"
    responses: dict[str, Any] = {"200": {"description": "Success"}}
    if handler_name.endswith("stream") or path.endswith("/stream"):
        responses["200"] = {"description": "Server-sent events", "content": {"text/event-stream": {}}}
    elif method in ("delete",):
        responses = {"204": {"description": "Deleted"}}
    for code, text in ERROR_CODES.items():
        responses[code] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation: dict[str, Any] = {
        "operationId": f"{handler_name}_{method}",
        "summary": handler_name.replace("_", " ").capitalize(),
        "tags": [tag.capitalize()],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in PATH_PARAM.findall(path)
        ],
        "responses": responses,
    }
    if method in ("post", "put", "patch"):
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return operation


def build_openapi(routes: Iterable[Route]) -> dict[str, Any]:
    """OpenAPI 3.1 for every registered route: paths, methods, parameters and error shape."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        method = str(route.route_type).rsplit(".", 1)[-1].lower()
        path = PATH_PARAM.sub(r"{\1}", route.route)
        handler_name = getattr(route.function.handler, "__name__", "handler")
        paths.setdefault(path, {})[method] = _operation(method, route.route, handler_name)
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


def register(app: Robyn) -> None:
    """Serve /openapi.json and /docs; call after every other route is registered."""
    document: dict[str, Any] = {}

    @endpoint
    async def openapi(request: Request) -> Response:
        if not document:  # built once, on first use, when every route is known
            document.update(build_openapi(app.router.get_routes()))
        return json_response(document)

    @endpoint
    async def docs(request: Request) -> Response:
        return Response(status_code=200, headers={"Content-Type": "text/html; charset=utf-8"}, description=DOCS_PAGE)

    app.add_route("GET", "/openapi.json", openapi)
    app.add_route("GET", "/docs", docs)
