"""What the /threads routes accept."""

from __future__ import annotations

from typing import Any

from src.services.errors import InvalidRequest
from src.services.threads.models import (
    IF_EXISTS,
    SORT_ORDERS,
    THREAD_FIELDS,
    THREAD_SORTS,
    THREAD_STATUSES,
    HistoryQuery,
    StateUpdate,
    ThreadCreate,
    ThreadFilter,
    ThreadSearch,
)
from src.services.threads.service import parse_thread_id
from src.services.validation import (
    MAX_LIMIT,
    checkpoint_object,
    choice,
    integer,
    json_type,
    optional_object,
    reject_unknown,
    require_object,
)

CREATE_FIELDS = frozenset({"thread_id", "metadata", "if_exists"})
SEARCH_FIELDS = frozenset({"metadata", "values", "status", "ids", "limit", "offset", "sort_by", "sort_order", "select"})
COUNT_FIELDS = frozenset({"metadata", "values", "status"})
HISTORY_FIELDS = frozenset({"limit", "before", "metadata", "checkpoint"})
UPDATE_STATE_FIELDS = frozenset({"values", "as_node", "checkpoint", "checkpoint_id"})
# The body of POST /threads/{id}/state/checkpoint (the LangGraph API's ThreadStateCheckpointRequest).
STATE_AT_FIELDS = frozenset({"checkpoint", "subgraphs"})


def parse_create(payload: Any) -> ThreadCreate:
    body = require_object(payload)
    reject_unknown(body, CREATE_FIELDS, frozenset({"supersteps", "ttl"}))
    thread_id = parse_thread_id(body["thread_id"]) if body.get("thread_id") is not None else None
    metadata = optional_object(body, "metadata") or {}
    return ThreadCreate(thread_id, metadata, choice(body, "if_exists", IF_EXISTS, "raise"))


def _filter(body: dict[str, Any]) -> ThreadFilter:
    ids = body.get("ids")
    if ids is not None:
        if not isinstance(ids, list):
            raise InvalidRequest("ids must be a list of thread ids")
        ids = [parse_thread_id(i, "ids[]") for i in ids]
    status = body.get("status")
    if status is not None and status not in THREAD_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(THREAD_STATUSES)}, got {status!r}")
    return ThreadFilter(
        metadata=optional_object(body, "metadata"), values=optional_object(body, "values"), status=status, ids=ids
    )


def parse_search(payload: Any) -> ThreadSearch:
    body = require_object(payload)
    reject_unknown(body, SEARCH_FIELDS, frozenset({"extract"}))
    select = body.get("select")
    if select is not None and (
        not isinstance(select, list) or not all(isinstance(f, str) and f in THREAD_FIELDS for f in select)
    ):
        raise InvalidRequest(f"select must be a list of thread fields: {', '.join(THREAD_FIELDS)}")
    return ThreadSearch(
        where=_filter(body),
        limit=integer(body, "limit", 10, 0, MAX_LIMIT),
        offset=integer(body, "offset", 0),
        sort_by=choice(body, "sort_by", THREAD_SORTS, "created_at"),
        sort_order=choice(body, "sort_order", SORT_ORDERS, "desc"),
        select=select,
    )


def parse_count(payload: Any) -> ThreadFilter:
    body = require_object(payload)
    reject_unknown(body, COUNT_FIELDS)
    return _filter(body)


def parse_patch(payload: Any) -> dict[str, Any]:
    """The metadata to merge into the thread's."""
    body = require_object(payload)
    reject_unknown(body, frozenset({"metadata"}), frozenset({"ttl"}))
    return optional_object(body, "metadata") or {}


def _checkpoint(value: Any, field: str) -> str | dict[str, Any] | None:
    """A checkpoint id, or a checkpoint object as the server hands it out (or a config holding one)."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise InvalidRequest(f"{field} must be a checkpoint id or an object with checkpoint_id")
    if "configurable" in value:  # a RunnableConfig is accepted too
        return {"configurable": checkpoint_object(value["configurable"], f"{field}.configurable")}
    return checkpoint_object(value, field)


def parse_state_at(payload: Any) -> tuple[dict[str, Any], bool]:
    """POST /threads/{id}/state/checkpoint: the checkpoint, and whether to include subgraphs."""
    body = require_object(payload)
    reject_unknown(body, STATE_AT_FIELDS)
    checkpoint = checkpoint_object(body.get("checkpoint"))
    subgraphs = body.get("subgraphs")
    if subgraphs is not None and not isinstance(subgraphs, bool):
        raise InvalidRequest(f"subgraphs must be a boolean, got {json_type(subgraphs)}")
    return checkpoint, bool(subgraphs)


def parse_history(payload: Any) -> HistoryQuery:
    body = require_object(payload)
    reject_unknown(body, HISTORY_FIELDS)
    return HistoryQuery(
        limit=integer(body, "limit", 10, 0, MAX_LIMIT),
        before=_checkpoint(body.get("before"), "before"),
        metadata=optional_object(body, "metadata"),
        checkpoint=_checkpoint(body.get("checkpoint"), "checkpoint"),
    )


def parse_update_state(payload: Any) -> StateUpdate:
    body = require_object(payload)
    reject_unknown(body, UPDATE_STATE_FIELDS)
    as_node = body.get("as_node")
    if as_node is not None and not isinstance(as_node, str):
        raise InvalidRequest("as_node must be a node name")
    checkpoint = _checkpoint(body.get("checkpoint"), "checkpoint") or _checkpoint(
        body.get("checkpoint_id"), "checkpoint_id"
    )
    return StateUpdate(values=body.get("values"), as_node=as_node, checkpoint=checkpoint)
