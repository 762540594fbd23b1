"""What the /store routes accept.

Every body and query value already follows the JSON rule of rules.py (no NUL, no unpaired
surrogates, finite 64-bit-safe numbers, bounded nesting). Beyond the LangGraph API's own
schema, a namespace plus key longer than about 2.7 kB would overflow the Postgres store's
primary-key index, so keys and namespaces are limited too; the in-memory store would accept
them, and refusing them for both keeps the two backends answering alike.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from src.services.errors import InvalidRequest
from src.services.store.service import ItemPut, ItemSearch, NamespaceQuery
from src.services.validation import MAX_LIMIT, integer, json_type, query_flag

MAX_TEXT_BYTES = 1024  # a key, or a dot-joined namespace, in UTF-8
# The Postgres store writes the TTL as an interval in seconds; below this it would print
# it in scientific notation, which Postgres does not read.
MIN_TTL_MINUTES = 0.001
MAX_TTL_MINUTES = 1_000_000_000  # about 1,900 years: Postgres intervals overflow not far above
FILTER_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
COMPARISON_OPERATORS = frozenset({"$gt", "$gte", "$lt", "$lte"})

PUT_FIELDS = frozenset({"namespace", "key", "value", "index", "ttl"})
DELETE_FIELDS = frozenset({"namespace", "key"})
SEARCH_FIELDS = frozenset({"namespace_prefix", "filter", "limit", "offset", "query", "refresh_ttl"})
LIST_FIELDS = frozenset({"prefix", "suffix", "max_depth", "limit", "offset"})


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_object(payload: Any, known: frozenset[str]) -> dict[str, Any]:
    """The body as a dict; an unknown field with a value is refused, never ignored."""
    if not isinstance(payload, dict):
        raise InvalidRequest(f"request body must be a JSON object, got {json_type(payload)}")
    for field, value in payload.items():
        if field not in known and value is not None:
            raise InvalidRequest(f"unknown field {field!r}; expected one of {', '.join(sorted(known))}")
    return payload


def parse_namespace(value: Any, field: str) -> tuple[str, ...]:
    """A list of labels: non-empty strings without '.', which the API and the Postgres store use as separator."""
    if not isinstance(value, list):
        raise InvalidRequest(f"{field} must be an array of strings, got {json_type(value)}")
    for index, label in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(label, str):
            raise InvalidRequest(f"{where} must be a string, got {json_type(label)}")
        if not label:
            raise InvalidRequest(f"{where} must not be empty: namespace labels are non-empty strings")
        if "." in label:
            raise InvalidRequest(f"{where} must not contain '.' (namespaces travel dot-joined), got {label!r}")
    if len(".".join(value).encode("utf-8")) > MAX_TEXT_BYTES:
        raise InvalidRequest(f"{field} is too long: at most {MAX_TEXT_BYTES} bytes once dot-joined in UTF-8")
    return tuple(value)


def or_empty(value: Any) -> Any:
    """JSON null reads as the empty namespace; any other falsy value still goes through validation."""
    return [] if value is None else value


def parse_optional_namespace(payload: dict[str, Any], field: str) -> tuple[str, ...] | None:
    value = payload.get(field)
    if value is None:
        return None
    return parse_namespace(value, field) or None  # an empty list constrains nothing


def parse_key(value: Any) -> str:
    if value is None:
        raise InvalidRequest("key is required")
    if not isinstance(value, str):
        raise InvalidRequest(f"key must be a string, got {json_type(value)}")
    if not value:
        raise InvalidRequest("key must not be empty")
    if len(value.encode("utf-8")) > MAX_TEXT_BYTES:
        raise InvalidRequest(f"key is too long: at most {MAX_TEXT_BYTES} bytes in UTF-8")
    return value


def parse_index(value: Any) -> Literal[False] | list[str] | None:
    if value is None or value is False:
        return value
    if not isinstance(value, list):
        raise InvalidRequest(f"index must be false, null or an array of field paths, got {json_type(value)}")
    for position, path in enumerate(value):
        if not isinstance(path, str):
            raise InvalidRequest(f"index[{position}] must be a string field path, got {json_type(path)}")
    return value


def parse_filter(value: Any) -> dict[str, Any] | None:
    """Equality on top-level fields, or operator objects such as {"$gt": 3}.

    Both stores accept exactly this; anything else (unknown operators, a plain object
    as the expected value) fails in the Postgres store or differs between stores, so
    it is refused here. Match a whole object with {"$eq": {...}}.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"filter must be an object, got {json_type(value)}")
    for field, condition in value.items():
        where = f"filter[{field!r}]"
        if not isinstance(condition, dict):
            continue
        if not condition:
            raise InvalidRequest(f"{where} must not be an empty object")
        for operator, operand in condition.items():
            if operator not in FILTER_OPERATORS:
                raise InvalidRequest(
                    f"{where} has unknown operator {operator!r}; expected one of {', '.join(FILTER_OPERATORS)} "
                    '(to match an object value, write {"$eq": {...}})'
                )
            if operator in COMPARISON_OPERATORS and not is_number(operand):
                raise InvalidRequest(f"{where}[{operator!r}] must be a number, got {json_type(operand)}")
    return value or None


def parse_ttl(value: Any) -> float | None:
    if value is None:
        return None
    if not is_number(value):
        raise InvalidRequest(f"ttl must be a number of minutes or null, got {json_type(value)}")
    if not math.isfinite(value) or not MIN_TTL_MINUTES <= value <= MAX_TTL_MINUTES:
        raise InvalidRequest(
            f"ttl must be more than 0 (at least {MIN_TTL_MINUTES} minutes) and at most {MAX_TTL_MINUTES} minutes, "
            f"got {value}"
        )
    return float(value)


def parse_refresh_ttl(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"refresh_ttl must be a boolean or null, got {json_type(value)}")
    return value


def parse_put(payload: Any) -> ItemPut:
    """PUT /store/items."""
    body = require_object(payload, PUT_FIELDS)
    if body.get("namespace") is None:
        raise InvalidRequest("namespace is required")
    namespace = parse_namespace(body["namespace"], "namespace")
    if not namespace:
        raise InvalidRequest("namespace must not be empty")
    if namespace[0] == "langgraph":
        raise InvalidRequest('namespace must not start with "langgraph": that root label is reserved')
    key = parse_key(body.get("key"))
    value = body.get("value")
    if value is None:
        raise InvalidRequest("value is required")
    if not isinstance(value, dict):
        raise InvalidRequest(f"value must be an object, got {json_type(value)}")
    return ItemPut(namespace, key, value, parse_index(body.get("index")), parse_ttl(body.get("ttl")))


def parse_get(
    namespace: str | None, key: str | None, refresh_ttl: str | None
) -> tuple[tuple[str, ...], str, bool | None]:
    """GET /store/items: `namespace` arrives dot-joined ("users.alice"), as the SDK sends it."""
    if not namespace:
        raise InvalidRequest("namespace is required: its labels joined with '.', e.g. namespace=users.alice")
    labels = parse_namespace(namespace.split("."), "namespace")
    return labels, parse_key(key), query_flag(refresh_ttl, "refresh_ttl")


def parse_delete(payload: Any) -> tuple[tuple[str, ...], str]:
    """DELETE /store/items: the namespace is optional, as in the spec."""
    body = require_object(payload, DELETE_FIELDS)
    return parse_namespace(or_empty(body.get("namespace")), "namespace"), parse_key(body.get("key"))


def parse_search(payload: Any) -> ItemSearch:
    """POST /store/items/search."""
    body = require_object(payload, SEARCH_FIELDS)
    prefix = parse_namespace(or_empty(body.get("namespace_prefix")), "namespace_prefix")
    filter_ = parse_filter(body.get("filter"))
    limit = integer(body, "limit", 10, 0, MAX_LIMIT)
    offset = integer(body, "offset", 0)
    query = body.get("query")
    if query is not None:
        if not isinstance(query, str):
            raise InvalidRequest(f"query must be a string or null, got {json_type(query)}")
    return ItemSearch(prefix, query or None, filter_, limit, offset, parse_refresh_ttl(body.get("refresh_ttl")))


def parse_list_namespaces(payload: Any) -> NamespaceQuery:
    """POST /store/namespaces."""
    body = require_object(payload, LIST_FIELDS)
    return NamespaceQuery(
        prefix=parse_optional_namespace(body, "prefix"),
        suffix=parse_optional_namespace(body, "suffix"),
        max_depth=None if body.get("max_depth") is None else integer(body, "max_depth", 0, 1),
        limit=integer(body, "limit", 100, 0, MAX_LIMIT),
        offset=integer(body, "offset", 0),
    )
