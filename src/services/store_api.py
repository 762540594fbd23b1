"""The LangGraph API store endpoints: request validation in front of a LangGraph `BaseStore`.

Items live in namespaces (lists of labels) under a key; a value is a JSON object. The
HTTP layer hands over the decoded JSON body (or the decoded query parameters of
`GET /store/items`); this module checks every field and calls the async store API, so
that a bad request is a 422 with a clear detail and never reaches the store as an
exception (a 500).

Limits beyond the LangGraph API's own schema exist because the Postgres store would
otherwise fail on the input: NUL characters and unpaired surrogates are rejected by
`jsonb`/`text`, NaN and Infinity are not JSON, a namespace plus key longer than about
2.7 kB overflows the primary-key index, and the filter path serialises integers with
orjson (64-bit only). The in-memory store would accept some of these; rejecting them
for both keeps the two backends answering alike.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from langgraph.store.base import BaseStore, InvalidNamespaceError, Item

from src.services.errors import InvalidRequest
from src.services.validation import integer, json_type, query_flag

MAX_TEXT_BYTES = 1024  # a key, or a dot-joined namespace, in UTF-8
MAX_VALUE_DEPTH = 200  # nesting of objects and arrays inside a value or a filter
MAX_TTL_MINUTES = 1_000_000_000  # about 1,900 years: Postgres intervals overflow not far above
FILTER_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
COMPARISON_OPERATORS = frozenset({"$gt", "$gte", "$lt", "$lte"})
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

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


def check_text(text: str, where: str) -> None:
    """Refuse what Postgres text and jsonb cannot hold: NUL characters and unpaired surrogates."""
    if "\x00" in text:
        raise InvalidRequest(f"{where} must not contain NUL characters (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{where} must not contain unpaired surrogates (invalid UTF-16 escapes)") from None


def check_json(value: Any, where: str, *, int64: bool = False, depth: int = 0) -> None:
    """Walk a decoded JSON value: finite numbers, storable strings, bounded nesting."""
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if int64 and not INT64_MIN <= value <= INT64_MAX:
            raise InvalidRequest(f"{where} must be an integer within 64 bits, got {value}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"{where} must be a finite number, got {value}")
    elif isinstance(value, (dict, list)):
        if depth >= MAX_VALUE_DEPTH:
            raise InvalidRequest(f"{where} is nested more than {MAX_VALUE_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                check_text(key, f"a key in {where}")
                check_json(item, f"{where}[{key!r}]", int64=int64, depth=depth + 1)
        else:
            for index, item in enumerate(value):
                check_json(item, f"{where}[{index}]", int64=int64, depth=depth + 1)
    else:  # not produced by a JSON decoder
        raise InvalidRequest(f"{where} must be JSON, got {type(value).__name__}")


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
        check_text(label, where)
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
    check_text(value, "key")
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
        check_text(path, f"index[{position}]")
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
        check_text(field, "a filter field name")
        where = f"filter[{field!r}]"
        if not isinstance(condition, dict):
            check_json(condition, where, int64=True)
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
            check_json(operand, f"{where}[{operator!r}]", int64=True)
    return value or None


def public_item(item: Item) -> dict[str, Any]:
    """An item as the LangGraph API returns it; search results also carry `score` (null without an index)."""
    return item.dict()


class StoreService:
    """The store endpoints of the LangGraph API over one LangGraph `BaseStore`.

    Semantic search: `query` (search) and `index` (put) are passed to the store as they
    are. A LangGraph store configured without an embedding index (this server's
    `InMemoryStore` and `AsyncPostgresStore`) ignores both, as `langgraph dev` does
    without an index in its config: a search with a `query` is then the same listing
    as without it, and every result has `"score": null`.

    TTL: `ttl` (put) and `refresh_ttl: true` (get, search) are honoured only when the
    store can expire items, that is when it declares `supports_ttl` and was built with
    a TTL config (`ttl=TTLConfig(...)`, as `langgraph dev` does from `store.ttl`). The
    server's Postgres store is built that way, with its sweeper running; the in-memory
    store cannot expire items, so there those requests get a 422 instead of silently
    keeping items forever. `refresh_ttl: false` is always accepted: a store without
    expiry refreshes nothing.
    """

    def __init__(self, store: BaseStore) -> None:
        self._store = store

    @property
    def supports_ttl(self) -> bool:
        return bool(getattr(self._store, "supports_ttl", False)) and self._store.ttl_config is not None

    def _require_ttl(self, field: str) -> None:
        if not self.supports_ttl:
            raise InvalidRequest(
                f"{field} is not supported: this server's store ({type(self._store).__name__}) "
                "is not configured to expire items; leave it out or null"
            )

    def _parse_ttl(self, value: Any) -> float | None:
        if value is None:
            return None
        if not is_number(value):
            raise InvalidRequest(f"ttl must be a number of minutes or null, got {json_type(value)}")
        if not math.isfinite(value) or not 0 < value <= MAX_TTL_MINUTES:
            raise InvalidRequest(f"ttl must be more than 0 and at most {MAX_TTL_MINUTES} minutes, got {value}")
        self._require_ttl("ttl")
        return float(value)

    def _parse_refresh_ttl(self, value: Any) -> bool | None:
        if value is None:
            return None
        if not isinstance(value, bool):
            raise InvalidRequest(f"refresh_ttl must be a boolean or null, got {json_type(value)}")
        if value:
            self._require_ttl("refresh_ttl")
        return value

    async def put(self, payload: Any) -> None:
        """PUT /store/items: create or replace the item at (namespace, key)."""
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
        check_json(value, "value")
        index = parse_index(body.get("index"))
        ttl = self._parse_ttl(body.get("ttl"))
        try:
            if ttl is None:
                # Left out, not None: a store with a TTL config then applies its default_ttl.
                await self._store.aput(namespace, key, value, index=index)
            else:
                await self._store.aput(namespace, key, value, index=index, ttl=ttl)
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None

    async def get(
        self, namespace: str | None, key: str | None, refresh_ttl: str | None = None
    ) -> dict[str, Any] | None:
        """GET /store/items: `namespace` arrives dot-joined ("users.alice"), as the SDK sends it; None
        when there is no such item (the LangGraph API answers 200 null)."""
        if not namespace:
            raise InvalidRequest("namespace is required: its labels joined with '.', e.g. namespace=users.alice")
        labels = parse_namespace(namespace.split("."), "namespace")
        item_key = parse_key(key)
        refresh = self._parse_refresh_ttl(query_flag(refresh_ttl, "refresh_ttl"))
        try:
            item = await self._store.aget(labels, item_key, refresh_ttl=refresh)
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None
        return None if item is None else public_item(item)

    async def delete(self, payload: Any) -> None:
        """DELETE /store/items: deleting an item that does not exist succeeds too."""
        body = require_object(payload, DELETE_FIELDS)
        namespace = parse_namespace(or_empty(body.get("namespace")), "namespace")  # optional, as in the spec
        key = parse_key(body.get("key"))
        try:
            await self._store.adelete(namespace, key)
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None

    async def search(self, payload: Any) -> dict[str, Any]:
        """POST /store/items/search: items under a namespace prefix, filtered and paged.

        `query` is handed to the store, which ignores it without an embedding index
        (see the class docstring).
        """
        body = require_object(payload, SEARCH_FIELDS)
        prefix = parse_namespace(or_empty(body.get("namespace_prefix")), "namespace_prefix")
        filter_ = parse_filter(body.get("filter"))
        limit = integer(body, "limit", 10)
        offset = integer(body, "offset", 0)
        query = body.get("query")
        if query is not None:
            if not isinstance(query, str):
                raise InvalidRequest(f"query must be a string or null, got {json_type(query)}")
            check_text(query, "query")
        refresh = self._parse_refresh_ttl(body.get("refresh_ttl"))
        try:
            items = await self._store.asearch(
                prefix, query=query or None, filter=filter_, limit=limit, offset=offset, refresh_ttl=refresh
            )
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None
        except (TypeError, ValueError) as exc:
            if filter_ is None:
                raise
            # The in-memory store compares with float(): a stored value that is no number fails.
            raise InvalidRequest(f"filter cannot be applied to the stored items: {exc}") from None
        return {"items": [public_item(item) for item in items]}

    async def list_namespaces(self, payload: Any) -> dict[str, Any]:
        """POST /store/namespaces: namespaces with items, matched on prefix/suffix ('*' matches one label)."""
        body = require_object(payload, LIST_FIELDS)
        prefix = parse_optional_namespace(body, "prefix")
        suffix = parse_optional_namespace(body, "suffix")
        max_depth = None if body.get("max_depth") is None else integer(body, "max_depth", 0, 1)
        limit = integer(body, "limit", 100)
        offset = integer(body, "offset", 0)
        try:
            namespaces = await self._store.alist_namespaces(
                prefix=prefix, suffix=suffix, max_depth=max_depth, limit=limit, offset=offset
            )
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None
        return {"namespaces": [list(namespace) for namespace in namespaces]}
