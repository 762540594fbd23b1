"""What the /assistants routes accept."""

from __future__ import annotations

import uuid
from typing import Any

from src.services.assistants.models import (
    ASSISTANT_FIELDS,
    DEFAULT_NAME,
    IF_EXISTS,
    SORT_FIELDS,
    SORT_ORDERS,
    AssistantCreate,
    AssistantPatch,
    AssistantQuery,
    AssistantSearch,
    VersionsQuery,
)
from src.services.errors import InvalidRequest
from src.services.validation import (
    MAX_LIMIT,
    choice,
    integer,
    optional_object,
    optional_string,
    reject_unknown,
    require_object,
)
from src.web.requests.config import parse_config

CREATE_FIELDS = frozenset(
    {"assistant_id", "graph_id", "config", "context", "metadata", "if_exists", "name", "description"}
)
PATCH_FIELDS = frozenset({"graph_id", "config", "context", "metadata", "name", "description"})
SEARCH_FIELDS = frozenset({"metadata", "graph_id", "name", "limit", "offset", "sort_by", "sort_order", "select"})
COUNT_FIELDS = frozenset({"metadata", "graph_id", "name"})
VERSIONS_FIELDS = frozenset({"metadata", "limit", "offset"})
LATEST_FIELDS = frozenset({"version"})
BOOLEAN_TRUE = ("true", "True")
BOOLEAN_FALSE = ("false", "False")


def parse_create(payload: Any) -> AssistantCreate:
    body = require_object(payload)
    reject_unknown(body, CREATE_FIELDS)
    graph_id = optional_string(body, "graph_id", required=True)
    assert graph_id is not None
    raw_id = body.get("assistant_id")
    assistant_id = None
    if raw_id is not None:
        try:
            assistant_id = str(uuid.UUID(raw_id if isinstance(raw_id, str) else ""))
        except ValueError:
            raise InvalidRequest("Invalid assistant ID: must be a UUID") from None
    return AssistantCreate(
        graph_id=graph_id,
        assistant_id=assistant_id,
        config=parse_config(body),
        context=optional_object(body, "context"),
        metadata=optional_object(body, "metadata") or {},
        if_exists=choice(body, "if_exists", IF_EXISTS, "raise"),
        name=optional_string(body, "name") or DEFAULT_NAME,
        description=optional_string(body, "description"),
    )


def parse_patch(payload: Any) -> AssistantPatch:
    body = require_object(payload)
    reject_unknown(body, PATCH_FIELDS)
    return AssistantPatch(
        graph_id=optional_string(body, "graph_id"),
        config=parse_config(body),
        context=optional_object(body, "context"),
        metadata=optional_object(body, "metadata"),
        name=optional_string(body, "name"),
        description=optional_string(body, "description"),
    )


def _query(body: dict[str, Any]) -> AssistantQuery:
    return AssistantQuery(
        graph_id=optional_string(body, "graph_id"),
        name=optional_string(body, "name"),
        metadata=optional_object(body, "metadata") or {},
    )


def parse_search(payload: Any) -> AssistantSearch:
    body = require_object(payload)
    reject_unknown(body, SEARCH_FIELDS)
    limit = integer(body, "limit", 10, 1, MAX_LIMIT)
    offset = integer(body, "offset", 0, 0)
    sort_by = choice(body, "sort_by", SORT_FIELDS, "created_at")
    sort_order = choice(body, "sort_order", SORT_ORDERS, "desc")
    select = body.get("select")
    if select is not None:
        if not isinstance(select, list) or not all(isinstance(column, str) for column in select):
            raise InvalidRequest("select must be a list of field names")
        invalid = [column for column in select if column not in ASSISTANT_FIELDS]
        if invalid:
            raise InvalidRequest(f"Invalid select columns: {invalid}. Expected: {', '.join(ASSISTANT_FIELDS)}")
    return AssistantSearch(_query(body), limit, offset, sort_by, sort_order, select)


def parse_count(payload: Any) -> AssistantQuery:
    body = require_object(payload)
    reject_unknown(body, COUNT_FIELDS)
    return _query(body)


def parse_versions(payload: Any) -> VersionsQuery:
    body = require_object(payload)
    reject_unknown(body, VERSIONS_FIELDS)
    return VersionsQuery(
        metadata=optional_object(body, "metadata") or {},
        limit=integer(body, "limit", 10, 1, MAX_LIMIT),
        offset=integer(body, "offset", 0, 0),
    )


def parse_latest(payload: Any, version: str | None) -> int:
    """The version to make current: in the body (as the SDK sends it) or the query."""
    body = require_object(payload)
    reject_unknown(body, LATEST_FIELDS)
    if body.get("version") is None and version is not None:
        try:
            body = {"version": int(version)}
        except ValueError:
            raise InvalidRequest(f"version must be an integer, got {version!r}") from None
    if body.get("version") is None:
        raise InvalidRequest("version is required")
    return integer(body, "version", 0, 1)


def parse_xray(value: str | None) -> bool | int:
    """The `xray` query parameter as the LangGraph API reads it: a boolean or a positive depth."""
    if not value or value in BOOLEAN_FALSE:
        return False
    if value in BOOLEAN_TRUE:
        return True
    try:
        depth = int(value)
    except ValueError:
        raise InvalidRequest("Invalid xray value") from None
    if depth <= 0:
        raise InvalidRequest("Invalid xray value")
    return depth
