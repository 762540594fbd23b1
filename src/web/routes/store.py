"""/store: the LangGraph API's long-term memory store (items, search, namespaces)."""

from __future__ import annotations

from robyn import Response

from src.services.store.service import StoreService
from src.web.apidoc import Doc
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
    def __init__(self, store: StoreService) -> None:
        self._store = store

    @route("PUT", "/store/items", doc=Doc((204, 422), STORE_PUT))
    async def put_item(self, request: HttpRequest) -> Response:
        await self._store.put(parse_put(request.json()))
        return no_content()

    @route("GET", "/store/items", doc=Doc((200, 422), params=STORE_GET))
    async def get_item(self, request: HttpRequest) -> Response:
        # A missing item is 200 with null, as in the LangGraph API: both SDKs return None/null.
        namespace, key, refresh = parse_get(
            request.param("namespace"), request.param("key"), request.param("refresh_ttl")
        )
        return json_response(await self._store.get(namespace, key, refresh))

    @route("DELETE", "/store/items", doc=Doc((204, 422), STORE_DELETE))
    async def delete_item(self, request: HttpRequest) -> Response:
        await self._store.delete(*parse_delete(request.json()))
        return no_content()

    @route("POST", "/store/items/search", doc=Doc((200, 422), STORE_SEARCH, body_required=False))
    async def search_items(self, request: HttpRequest) -> Response:
        return json_response(await self._store.search(parse_search(request.json(empty={}))))

    @route("POST", "/store/namespaces", doc=Doc((200, 422), STORE_NAMESPACES, body_required=False))
    async def list_namespaces(self, request: HttpRequest) -> Response:
        return json_response(await self._store.list_namespaces(parse_list_namespaces(request.json(empty={}))))
