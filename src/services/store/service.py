"""The LangGraph API's store (long-term memory): items in namespaces, over a LangGraph `BaseStore`.

Items live in namespaces (lists of labels) under a key; a value is a JSON object. The web
layer checks every field (src/web/requests/store.py); this calls the async store API and
turns what the store refuses into a 422, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from langgraph.store.base import BaseStore, InvalidNamespaceError, Item

from src.services.auth.errors import AuthModuleError
from src.services.auth.filters import Visibility
from src.services.errors import Conflict, InvalidRequest


@dataclass(frozen=True)
class ItemPut:
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    ttl: float | None = None


@dataclass(frozen=True)
class ItemSearch:
    namespace_prefix: tuple[str, ...] = ()
    query: str | None = None
    filter: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    refresh_ttl: bool | None = None


@dataclass(frozen=True)
class NamespaceQuery:
    prefix: tuple[str, ...] | None = None
    suffix: tuple[str, ...] | None = None
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


def public_item(item: Item) -> dict[str, Any]:
    """An item as the LangGraph API returns it; search results also carry `score` (null without an index)."""
    return item.dict()


def with_visible(filter_: dict[str, Any] | None, visible: Visibility | None) -> dict[str, Any] | None:
    """A search's filter on item values, ANDed with the caller's auth filter. Stores filter by equality on
    top-level fields only, so that is all an auth filter on store search may ask for."""
    if visible is None:
        return filter_
    wanted = visible.equalities()
    if wanted is None:
        raise AuthModuleError(
            "the auth handler for store:search returned a filter the store cannot apply: only equalities on "
            "top-level value fields ({'field': value}), no $contains or $or"
        )
    merged = dict(filter_ or {})
    for key, value in wanted.items():
        if key in merged:
            raise InvalidRequest(f"filter names {key!r}, which the server's auth filters on already; leave it out")
        merged[key] = {"$eq": value}
    return merged


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

    Auth: the web layer hands over the namespace the auth handler chose. A filter the handler
    returned (`visible`, on item values) hides items from get and search, keeps delete from
    touching them and put from replacing them (409).
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

    def _check_refresh(self, refresh_ttl: bool | None) -> None:
        if refresh_ttl:
            self._require_ttl("refresh_ttl")

    async def _hidden(self, namespace: tuple[str, ...], key: str, visible: Visibility | None) -> bool:
        """An item is at (namespace, key) that the caller's auth filter hides."""
        if visible is None:
            return False
        try:
            item = await self._store.aget(namespace, key)
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None
        return item is not None and not visible.matches(item.value)

    async def put(self, item: ItemPut, visible: Visibility | None = None) -> None:
        """Create or replace the item at (namespace, key)."""
        if item.ttl is not None:
            self._require_ttl("ttl")
        if await self._hidden(item.namespace, item.key, visible):
            raise Conflict(f"An item with key {item.key!r} already exists in this namespace")
        try:
            if item.ttl is None:
                # Left out, not None: a store with a TTL config then applies its default_ttl.
                await self._store.aput(item.namespace, item.key, item.value, index=item.index)
            else:
                await self._store.aput(item.namespace, item.key, item.value, index=item.index, ttl=item.ttl)
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None

    async def get(
        self,
        namespace: tuple[str, ...],
        key: str,
        refresh_ttl: bool | None = None,
        visible: Visibility | None = None,
    ) -> dict[str, Any] | None:
        """The item, or None when there is none (the LangGraph API answers 200 null)."""
        self._check_refresh(refresh_ttl)
        try:
            item = await self._store.aget(namespace, key, refresh_ttl=refresh_ttl)
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None
        if item is None or (visible is not None and not visible.matches(item.value)):
            return None
        return public_item(item)

    async def delete(self, namespace: tuple[str, ...], key: str, visible: Visibility | None = None) -> None:
        """Deleting an item that does not exist succeeds too (and so does one the caller may not see)."""
        if await self._hidden(namespace, key, visible):
            return
        try:
            await self._store.adelete(namespace, key)
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None

    async def search(self, search: ItemSearch, visible: Visibility | None = None) -> dict[str, Any]:
        """Items under a namespace prefix, filtered and paged. `query` is handed to the store,
        which ignores it without an embedding index (see the class docstring)."""
        self._check_refresh(search.refresh_ttl)
        filter_ = with_visible(search.filter, visible)
        try:
            items = await self._store.asearch(
                search.namespace_prefix,
                query=search.query,
                filter=filter_,
                limit=search.limit,
                offset=search.offset,
                refresh_ttl=search.refresh_ttl,
            )
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None
        except (TypeError, ValueError) as exc:
            if filter_ is None:
                raise
            # The in-memory store compares with float(): a stored value that is no number fails.
            raise InvalidRequest(f"filter cannot be applied to the stored items: {exc}") from None
        return {"items": [public_item(item) for item in items]}

    async def list_namespaces(self, query: NamespaceQuery) -> dict[str, Any]:
        """Namespaces with items, matched on prefix/suffix ('*' matches one label)."""
        try:
            namespaces = await self._store.alist_namespaces(
                prefix=query.prefix,
                suffix=query.suffix,
                max_depth=query.max_depth,
                limit=query.limit,
                offset=query.offset,
            )
        except InvalidNamespaceError as exc:
            raise InvalidRequest(str(exc)) from None
        return {"namespaces": [list(namespace) for namespace in namespaces]}
