"""The OpenAPI document, built in-process: every route documented, bodies naming the fields the services read."""

from __future__ import annotations

import pytest
import schemathesis

from src.web import schemas
from src.web.app import ROUTE_CLASSES
from src.web.auth import PUBLIC_PATHS
from src.web.openapi import DocsRoutes, build_openapi
from src.web.requests import assistants, crons, runs
from src.web.requests import store as store_api
from src.web.requests.threads import STATE_AT_FIELDS
from src.web.routing import PATH_PARAM, routes_of

ROUTES = [(area, spec) for area, cls in ROUTE_CLASSES for spec in routes_of(cls)] + [
    ("system", spec) for spec in routes_of(DocsRoutes)
]


@pytest.mark.parametrize(
    ("schema", "fields"),
    [
        (schemas.RUN_CREATE, runs.RUN_FIELDS),
        (schemas.ASSISTANT_CREATE, assistants.CREATE_FIELDS),
        (schemas.ASSISTANT_PATCH, assistants.PATCH_FIELDS),
        (schemas.ASSISTANT_SEARCH, assistants.SEARCH_FIELDS),
        (schemas.ASSISTANT_COUNT, assistants.COUNT_FIELDS),
        (schemas.ASSISTANT_VERSIONS, assistants.VERSIONS_FIELDS),
        (schemas.ASSISTANT_SET_LATEST, assistants.LATEST_FIELDS),
        (schemas.STORE_PUT, store_api.PUT_FIELDS),
        (schemas.STORE_DELETE, store_api.DELETE_FIELDS),
        (schemas.STORE_SEARCH, store_api.SEARCH_FIELDS),
        (schemas.STORE_NAMESPACES, store_api.LIST_FIELDS),
        (schemas.THREAD_STATE_AT, STATE_AT_FIELDS),
        (schemas.STATELESS_CRON_CREATE, crons.CREATE_FIELDS),
        (schemas.CRON_CREATE, crons.CREATE_FIELDS - {"on_run_completed"}),
        (schemas.CRON_PATCH, crons.PATCH_FIELDS),
        (schemas.CRON_SEARCH, crons.SEARCH_FIELDS),
        (schemas.CRON_COUNT, crons.COUNT_FIELDS),
    ],
)
def test_bodies_document_exactly_the_fields_the_services_read(schema, fields):
    assert set(schema["properties"]) == set(fields)
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("store_ttl", [False, True])
def test_document_is_valid_openapi_and_covers_every_route(store_ttl):
    document = build_openapi(ROUTES, ["agent", "slow"], store_ttl)
    schemathesis.openapi.from_dict(document)  # refuses a document that is not valid OpenAPI 3.1
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert operations == {(spec.method, PATH_PARAM.sub(r"{\1}", spec.path)) for _, spec in ROUTES}
    assert document["components"]["schemas"]["GraphId"]["enum"] == ["agent", "slow"]
    ttl = document["components"]["schemas"]["StoreTtl"]
    assert (ttl["type"] == "number") is store_ttl


def test_every_route_documents_its_body_parameters_and_statuses():
    document = build_openapi(ROUTES, ["agent"])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            reads_input = "requestBody" in operation or any(p["in"] != "path" for p in operation["parameters"])
            assert ("400" in operation["responses"]) is reads_input, (method, path)
            assert {p["name"] for p in operation["parameters"] if p["in"] == "path"} == set(
                PATH_PARAM.findall(path.replace("{", ":").replace("}", ""))
            ), (method, path)
            if method in ("post", "put", "patch") and "requestBody" not in operation:
                # Only these read no body at all: the path and the query say everything.
                assert path.endswith(("/copy", "/cancel")), (method, path)


def test_with_auth_every_guarded_route_documents_401_and_403():
    document = build_openapi(ROUTES, ["agent"], auth=True)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            guarded = path not in PUBLIC_PATHS
            assert {"401", "403"} <= set(operation["responses"]) if guarded else "401" not in operation["responses"], (
                method,
                path,
            )
    without = build_openapi(ROUTES, ["agent"])
    assert not any("401" in op["responses"] for item in without["paths"].values() for op in item.values())
