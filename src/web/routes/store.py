"""/store: the LangGraph API's long-term memory store (items, search, namespaces)."""

from __future__ import annotations

from robyn import Request, Response, Robyn

from src.containers import Container
from src.web.http import endpoint, json_response, no_content, provide, query_param, read_json


def register(app: Robyn, container: Container) -> None:
    @endpoint
    async def put_item(request: Request) -> Response:
        store = await provide(container.store_service)
        await store.put(read_json(request))
        return no_content()

    @endpoint
    async def get_item(request: Request) -> Response:
        store = await provide(container.store_service)
        item = await store.get(
            query_param(request, "namespace"), query_param(request, "key"), query_param(request, "refresh_ttl")
        )
        return json_response(item)

    @endpoint
    async def delete_item(request: Request) -> Response:
        store = await provide(container.store_service)
        await store.delete(read_json(request))
        return no_content()

    @endpoint
    async def search_items(request: Request) -> Response:
        store = await provide(container.store_service)
        return json_response(await store.search(read_json(request, empty={})))

    @endpoint
    async def list_namespaces(request: Request) -> Response:
        store = await provide(container.store_service)
        return json_response(await store.list_namespaces(read_json(request, empty={})))

    app.add_route("PUT", "/store/items", put_item)
    app.add_route("GET", "/store/items", get_item)
    app.add_route("DELETE", "/store/items", delete_item)
    app.add_route("POST", "/store/items/search", search_items)
    app.add_route("POST", "/store/namespaces", list_namespaces)
