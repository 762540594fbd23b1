"""/store: the LangGraph API's long-term memory store (items, search, namespaces)."""

from __future__ import annotations

from robyn import Response

from src.services.store.service import StoreService
from src.web.apidoc import Doc
from src.web.auth import StoreGuard
from src.web.http import HttpRequest, json_response, no_content
from src.web.requests.store import parse_delete, parse_get, parse_list_namespaces, parse_put, parse_search
from src.web.routing import route
from src.web.schemas import (
    STORE_DELETE,
    STORE_GET,
    STORE_NAMESPACES,
    STORE_PUT,
    STORE_SEARCH,
)


class StoreRoutes:
    """Each route first asks the auth guard (src/web/auth.py): the operation uses the namespace it returns."""

    def __init__(self, store: StoreService, guard: StoreGuard) -> None:
        self._store = store
        self._guard = guard

    @route("PUT", "/store/items", doc=Doc((204, 422), STORE_PUT))
    async def put_item(self, request: HttpRequest) -> Response:
        item, visible = await self._guard.put(request, parse_put(request.json()))
        await self._store.put(item, visible)
        return no_content()

    @route("GET", "/store/items", doc=Doc((200, 422), params=STORE_GET))
    async def get_item(self, request: HttpRequest) -> Response:
        # A missing item is 200 with null, as in the LangGraph API: both SDKs return None/null.
        namespace, key, refresh = parse_get(
            request.param("namespace"), request.param("key"), request.param("refresh_ttl")
        )
        namespace, key, refresh, visible = await self._guard.get(request, namespace, key, refresh)
        return json_response(await self._store.get(namespace, key, refresh, visible))

    @route("DELETE", "/store/items", doc=Doc((204, 422), STORE_DELETE))
    async def delete_item(self, request: HttpRequest) -> Response:
        namespace, key, visible = await self._guard.delete(request, *parse_delete(request.json()))
        await self._store.delete(namespace, key, visible)
        return no_content()

    @route("POST", "/store/items/search", doc=Doc((200, 422), STORE_SEARCH, body_required=False))
    async def search_items(self, request: HttpRequest) -> Response:
        search, visible = await self._guard.search(request, parse_search(request.json(empty={})))
        return json_response(await self._store.search(search, visible))

    @route("POST", "/store/namespaces", doc=Doc((200, 422), STORE_NAMESPACES, body_required=False))
    async def list_namespaces(self, request: HttpRequest) -> Response:
        query = await self._guard.list_namespaces(request, parse_list_namespaces(request.json(empty={})))
        return json_response(await self._store.list_namespaces(query))
