"""The OpenAPI document, built from the routes the app really registers, and the /docs page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from robyn import Response

from src import __version__
from src.web.apidoc import Doc
from src.web.auth import PUBLIC_PATHS
from src.web.http import HttpRequest, json_response
from src.web.routing import PATH_PARAM, RouteSpec, route, routes_of
from src.web.schemas import PATH_PARAMS, components

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "What was wrong with the request"}},
    "required": ["detail"],
}
STATUS_TEXT = {
    200: "Success (server-sent events for streams)",
    202: "Accepted: the run is being cancelled",
    204: "Done, no content",
    400: "Unreadable request: a body that is not JSON, a query string that is not UTF-8",
    401: "Not authenticated: the auth module refused the request's credentials",
    403: "Forbidden: an auth handler refused this action",
    404: "Not found",
    409: "Conflict with the current state",
    422: "Invalid fields or unsupported options",
    503: "Postgres does not answer",
}
INFO_DESCRIPTION = (
    "A self-hosted server for LangGraph graphs, speaking the LangGraph API. Every error is JSON "
    '`{"detail": "..."}`; a known path asked with another method answers 405 with an `Allow` header.'
)
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


def _parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMS[name]}
        for name in PATH_PARAM.findall(spec.path)
    ]
    for param in spec.doc.params:
        described: dict[str, Any] = {"name": param.name, "in": param.location, "required": param.required}
        if param.description:
            described["description"] = param.description
        described["schema"] = param.schema
        if param.schema.get("type") == "array":  # repeated: ?stream_mode=a&stream_mode=b
            described.update(style="form", explode=True)
        found.append(described)
    return found


def _responses(spec: RouteSpec, auth: bool) -> dict[str, Any]:
    doc = spec.doc
    codes = set(doc.responses)
    if doc.body is not None or doc.params:
        codes.add(400)
    if auth and spec.path not in PUBLIC_PATHS:  # with auth on, every other route may refuse
        codes |= {401, 403}
    responses: dict[str, Any] = {}
    for code in sorted(codes):
        response: dict[str, Any] = {"description": STATUS_TEXT[code]}
        if code >= 400:
            response["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        elif code == 200:
            response["content"] = {doc.media_type: {}}
        responses[str(code)] = response
    return responses


def _operation(method: str, spec: RouteSpec, area: str, auth: bool) -> dict[str, Any]:
    stateless = "" if ":thread_id" in spec.path or not spec.path.startswith("/runs") else "stateless_"
    operation: dict[str, Any] = {
        "operationId": f"{area}_{stateless}{spec.name}_{method}",
        "summary": spec.name.replace("_", " ").capitalize(),
        "tags": [area.capitalize()],
        "parameters": _parameters(spec),
        "responses": _responses(spec, auth),
    }
    if spec.doc.description:
        operation["description"] = spec.doc.description
    if spec.doc.body is not None:
        operation["requestBody"] = {
            "required": spec.doc.body_required,
            "content": {"application/json": {"schema": spec.doc.body}},
        }
    return operation


def build_openapi(
    routes: Iterable[tuple[str, RouteSpec]], graph_ids: list[str], store_ttl: bool = False, auth: bool = False
) -> dict[str, Any]:
    """OpenAPI 3.1 for every registered route (area, spec): paths, parameters, bodies, status codes and
    error shape. `graph_ids` (the served graphs) are the values of graph and assistant ids; `store_ttl`
    says whether store items may have a TTL; `auth` whether an auth module guards the routes."""
    paths: dict[str, dict[str, Any]] = {}
    for area, spec in routes:
        method = spec.method.lower()
        path = PATH_PARAM.sub(r"{\1}", spec.path)
        paths.setdefault(path, {})[method] = _operation(method, spec, area, auth)
    return {
        "openapi": "3.1.0",
        "info": {"title": "agent-server", "version": __version__, "description": INFO_DESCRIPTION},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": {"Error": ERROR_SCHEMA, **components(graph_ids, store_ttl)}},
    }


class DocsRoutes:
    """/openapi.json and /docs, describing the routes the app registers (given at construction)."""

    def __init__(self, routes: Iterable[tuple[str, RouteSpec]]) -> None:
        self._routes = list(routes)
        self._graph_ids: list[str] = []
        self._store_ttl = False
        self._auth = False
        self._document: dict[str, Any] | None = None

    def describe_server(self, graph_ids: Iterable[str], store_ttl: bool, auth: bool = False) -> None:
        """What the document says about this server, known once it has started (before any request):
        the graphs it serves, whether its store expires items, whether auth guards the routes."""
        self._graph_ids = list(graph_ids)
        self._store_ttl = store_ttl
        self._auth = auth
        self._document = None

    @route("GET", "/openapi.json", doc=Doc(description="This document"))
    async def openapi(self, request: HttpRequest) -> Response:
        if self._document is None:  # built on first use
            routes = [*self._routes, *(("system", spec) for spec in routes_of(DocsRoutes))]
            self._document = build_openapi(routes, self._graph_ids, self._store_ttl, self._auth)
        return json_response(self._document)

    @route("GET", "/docs", doc=Doc(media_type="text/html", description="This document in Swagger UI"))
    async def docs(self, request: HttpRequest) -> Response:
        return Response(status_code=200, headers={"Content-Type": "text/html; charset=utf-8"}, description=DOCS_PAGE)
