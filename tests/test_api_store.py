"""The LangGraph API store endpoints, end to end through langgraph_sdk (memory and Postgres)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import httpx
import pytest
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.client import LangGraphClient, SyncLangGraphClient

from src.services.errors import InvalidRequest
from src.services.store.service import StoreService
from src.web.requests.store import parse_get, parse_put, parse_search
from tests.conftest import ServerProcess, database_url

# Labels that break a naive query string or a naive split: all must come back as written.
ODD_LABELS = ["a b+c", "100%", "%41", "x&y=z", "#frag?", "日本語", "emoji 🙂", "tab\there", "-_~"]


def new_namespace(*labels: str) -> list[str]:
    """A namespace no other test touches: the server is shared by the whole module."""
    return [f"t-{uuid.uuid4().hex[:12]}", *labels]


@pytest.fixture
async def client(api_server: ServerProcess) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=api_server.url, timeout=30)
    yield client
    await client.aclose()


@pytest.fixture
def sync_client(api_server: ServerProcess) -> Iterator[SyncLangGraphClient]:
    with get_sync_client(url=api_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def http(api_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, timeout=30) as client:
        yield client


async def test_put_get_overwrite_delete_round_trip(client: LangGraphClient) -> None:
    namespace = new_namespace("users", "alice")
    assert await client.store.put_item(namespace, "prefs", {"theme": "dark", "size": 3}) is None
    item = await client.store.get_item(namespace, "prefs")
    assert item["namespace"] == namespace and item["key"] == "prefs"
    assert item["value"] == {"theme": "dark", "size": 3}
    created = datetime.fromisoformat(item["created_at"])
    assert created.tzinfo is not None and datetime.fromisoformat(item["updated_at"]) >= created

    await client.store.put_item(namespace, "prefs", {"theme": "light"})
    again = await client.store.get_item(namespace, "prefs")
    assert again["value"] == {"theme": "light"}
    assert datetime.fromisoformat(again["updated_at"]) >= datetime.fromisoformat(item["updated_at"])

    assert await client.store.delete_item(namespace, "prefs") is None
    # A missing item is 200 null, as in the LangGraph API: the SDK returns None.
    assert await client.store.get_item(namespace, "prefs") is None
    await client.store.delete_item(namespace, "prefs")  # deleting again is fine


async def test_namespaces_and_values_come_back_exactly_as_written(client: LangGraphClient) -> None:
    namespace = new_namespace(*ODD_LABELS)
    value = {
        "text": 'héllo wörld — 你好 🙂 "quoted" \\ back',
        "nested": {"deeper": {"list": [1, 2.5, -3, True, False, None, "", {"k": []}], "empty": {}}},
        "big": 2**62,
        "float": 1e-9,
        "ünïcode kéy": "värde",
    }
    for key in ["plain", "key with spaces & = + %20", "ключ/🙂"]:
        await client.store.put_item(namespace, key, value)
        item = await client.store.get_item(namespace, key)
        assert (item["namespace"], item["key"], item["value"]) == (namespace, key, value)
    found = await client.store.search_items(namespace)
    assert sorted(item["key"] for item in found["items"]) == sorted(["plain", "key with spaces & = + %20", "ключ/🙂"])
    assert all(item["namespace"] == namespace and item["value"] == value for item in found["items"])
    listed = await client.store.list_namespaces(prefix=namespace[:1])
    assert listed["namespaces"] == [namespace]


async def test_nested_namespaces_are_separate(client: LangGraphClient) -> None:
    root = new_namespace()
    await client.store.put_item(root, "k", {"level": 1})
    await client.store.put_item([*root, "child"], "k", {"level": 2})
    await client.store.put_item([*root, "child", "grandchild"], "k", {"level": 3})
    await client.store.put_item([root[0] + "x"], "k", {"level": "sibling"})  # shares a string prefix only
    assert (await client.store.get_item(root, "k"))["value"] == {"level": 1}
    assert (await client.store.get_item([*root, "child"], "k"))["value"] == {"level": 2}
    assert (await client.store.get_item([*root, "child", "grandchild"], "k"))["value"] == {"level": 3}
    levels = sorted(str(item["value"]["level"]) for item in (await client.store.search_items(root))["items"])
    assert levels == ["1", "2", "3"]
    below = await client.store.search_items([*root, "child"])
    assert sorted(item["value"]["level"] for item in below["items"]) == [2, 3]


async def test_search_filters_and_pages(client: LangGraphClient) -> None:
    root = new_namespace()
    for number in range(12):
        color = "red" if number % 3 == 0 else "blue"
        meta = {"tier": "gold"} if number == 4 else {"tier": "basic"}
        await client.store.put_item(
            [*root, f"group{number % 2}"], f"item{number}", {"n": number, "color": color, "meta": meta}
        )

    default_page = await client.store.search_items(root, limit=None)  # type: ignore[arg-type]
    assert len(default_page["items"]) == 10  # the server's default limit
    everything = (await client.store.search_items(root, limit=100))["items"]
    assert sorted(item["key"] for item in everything) == sorted(f"item{n}" for n in range(12))
    assert all("score" in item for item in everything)

    group0 = (await client.store.search_items([*root, "group0"], limit=100))["items"]
    assert sorted(item["value"]["n"] for item in group0) == [0, 2, 4, 6, 8, 10]

    red = (await client.store.search_items(root, filter={"color": "red"}, limit=100))["items"]
    assert sorted(item["value"]["n"] for item in red) == [0, 3, 6, 9]
    not_red = (await client.store.search_items(root, filter={"color": {"$ne": "red"}}, limit=100))["items"]
    assert len(not_red) == 8
    both = await client.store.search_items(root, filter={"color": "red", "n": {"$eq": 6}})
    assert [item["key"] for item in both["items"]] == ["item6"]
    gold = await client.store.search_items(root, filter={"meta": {"$eq": {"tier": "gold"}}})
    assert [item["key"] for item in gold["items"]] == ["item4"]
    assert (await client.store.search_items(root, filter={"color": "green"}))["items"] == []

    pages = [(await client.store.search_items(root, limit=5, offset=offset))["items"] for offset in (0, 5, 10)]
    assert [len(page) for page in pages] == [5, 5, 2]
    paged_keys = [item["key"] for page in pages for item in page]
    assert sorted(paged_keys) == sorted(item["key"] for item in everything)
    assert (await client.store.search_items(root, offset=12))["items"] == []

    # No embedding index is configured: `query` is accepted and ignored, as LangGraph stores do.
    queried = (await client.store.search_items(root, query="anything at all", limit=100))["items"]
    assert sorted(item["key"] for item in queried) == sorted(item["key"] for item in everything)
    assert all(item["score"] is None for item in queried)


async def test_list_namespaces_prefix_suffix_depth_and_paging(client: LangGraphClient) -> None:
    root = new_namespace()
    paths = [["a", "b", "c"], ["a", "b", "d", "e"], ["a", "c", "f"], ["x", "c"]]
    for path in paths:
        await client.store.put_item([*root, *path], "k", {"path": path})

    async def listed(**kwargs: object) -> list[list[str]]:
        return (await client.store.list_namespaces(**kwargs))["namespaces"]  # type: ignore[arg-type]

    assert sorted(await listed(prefix=root)) == sorted([*root, *path] for path in paths)
    assert sorted(await listed(prefix=[*root, "a", "b"])) == [[*root, "a", "b", "c"], [*root, "a", "b", "d", "e"]]
    assert sorted(await listed(prefix=root, max_depth=3)) == [[*root, "a", "b"], [*root, "a", "c"], [*root, "x", "c"]]
    assert sorted(await listed(prefix=root, suffix=["c"])) == [[*root, "a", "b", "c"], [*root, "x", "c"]]
    assert sorted(await listed(prefix=[*root, "*", "c"])) == [[*root, "a", "c", "f"], [*root, "x", "c"]]
    assert await listed(prefix=[*root, "nothing"]) == []
    first, second = await listed(prefix=root, limit=2), await listed(prefix=root, limit=2, offset=2)
    assert len(first) == len(second) == 2
    assert sorted(first + second) == sorted([*root, *path] for path in paths)


def test_sync_client_round_trip(sync_client: SyncLangGraphClient) -> None:
    namespace = new_namespace("sync", "日本")
    sync_client.store.put_item(namespace, "doc", {"title": "Über", "tags": ["a", "b"]})
    sync_client.store.put_item(namespace, "other", {"title": "Second"})
    item = sync_client.store.get_item(namespace, "doc")
    assert (item["namespace"], item["key"], item["value"]) == (namespace, "doc", {"title": "Über", "tags": ["a", "b"]})
    found = sync_client.store.search_items(namespace[:1], filter={"title": "Second"})
    assert [(i["namespace"], i["key"]) for i in found["items"]] == [(namespace, "other")]
    assert sync_client.store.list_namespaces(prefix=namespace[:1]) == {"namespaces": [namespace]}
    sync_client.store.delete_item(namespace, "doc")
    assert sync_client.store.get_item(namespace, "doc") is None


async def test_ttl_is_honoured_on_postgres_and_refused_in_memory(
    client: LangGraphClient, api_server: ServerProcess
) -> None:
    namespace = new_namespace()
    if "DATABASE_URL" in api_server.env:  # the Postgres store expires items (a sweeper runs every minute)
        await client.store.put_item(namespace, "k", {"a": 1}, ttl=5)
        assert (await client.store.get_item(namespace, "k", refresh_ttl=True))["value"] == {"a": 1}
        found = await client.store.search_items(namespace, refresh_ttl=True)
        assert [item["key"] for item in found["items"]] == ["k"]
        return
    for call in (
        client.store.put_item(namespace, "k", {"a": 1}, ttl=5),
        client.store.get_item(namespace, "k", refresh_ttl=True),
        client.store.search_items(namespace, refresh_ttl=True),
    ):
        with pytest.raises(httpx.HTTPStatusError) as caught:
            await call
        assert caught.value.response.status_code == 422
        assert "is not supported" in caught.value.response.json()["detail"]
    # Nothing was written by the refused put; refresh_ttl=False asks for nothing a store lacks.
    assert (await client.store.search_items(namespace, refresh_ttl=False))["items"] == []
    await client.store.put_item(namespace, "k", {"a": 1})
    assert (await client.store.get_item(namespace, "k", refresh_ttl=False))["value"] == {"a": 1}


PUT = "/store/items"
GOOD = {"namespace": ["ok"], "key": "k", "value": {"a": 1}}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("PUT", PUT, "{not json", 400, "request body is not valid JSON"),
        ("PUT", PUT, "", 400, "request body is empty"),
        ("POST", "/store/items/search", "[", 400, "not valid JSON"),
        ("PUT", PUT, "[" * 100_000 + "]" * 100_000, 400, "nested too deeply"),
        ("PUT", PUT, "[1]", 422, "request body must be a JSON object"),
        ("PUT", PUT, {**GOOD, "namespace": ["a.b"]}, 422, "must not contain '.'"),
        ("PUT", PUT, {**GOOD, "namespace": ["a", ""]}, 422, "namespace[1] must not be empty"),
        ("PUT", PUT, {**GOOD, "namespace": ["a", 3]}, 422, "namespace[1] must be a string"),
        ("PUT", PUT, {**GOOD, "namespace": "a.b"}, 422, "namespace must be an array"),
        ("PUT", PUT, {**GOOD, "namespace": []}, 422, "namespace must not be empty"),
        ("PUT", PUT, {**GOOD, "namespace": ["langgraph", "x"]}, 422, "reserved"),
        ("PUT", PUT, {**GOOD, "namespace": ["a\u0000b"]}, 422, "NUL"),
        ("PUT", PUT, {**GOOD, "namespace": ["n" * 1100]}, 422, "too long"),
        ("PUT", PUT, {"namespace": ["a"], "value": {}}, 422, "key is required"),
        ("PUT", PUT, {**GOOD, "key": 5}, 422, "key must be a string"),
        ("PUT", PUT, {**GOOD, "key": ""}, 422, "key must not be empty"),
        ("PUT", PUT, {**GOOD, "key": "k" * 1100}, 422, "key is too long"),
        ("PUT", PUT, {**GOOD, "value": [1, 2]}, 422, "value must be an object, got array"),
        ("PUT", PUT, {**GOOD, "value": "text"}, 422, "value must be an object, got string"),
        ("PUT", PUT, {"namespace": ["a"], "key": "k"}, 422, "value is required"),
        ("PUT", PUT, '{"namespace": ["a"], "key": "k", "value": {"x": NaN}}', 422, "finite number"),
        ("PUT", PUT, '{"namespace": ["a"], "key": "k", "value": {"x": "\\u0000"}}', 422, "NUL"),
        ("PUT", PUT, '{"namespace": ["a"], "key": "k", "value": {"x": "\\ud800"}}', 422, "surrogate"),
        ("PUT", PUT, '{"namespace": ["a"], "key": "k", "value": ' + "[" * 300 + "]" * 300 + "}", 422, "object"),
        ("PUT", PUT, '{"namespace": ["a"], "key": "k", "value": {"x": ' + "[" * 300 + "]" * 300 + "}}", 422, "deep"),
        ("PUT", PUT, {**GOOD, "index": True}, 422, "index must be false, null or an array"),
        ("PUT", PUT, {**GOOD, "index": ["ok", 1]}, 422, "index[1] must be a string"),
        ("PUT", PUT, {**GOOD, "ttl": "soon"}, 422, "ttl must be a number"),
        ("PUT", PUT, {**GOOD, "ttl": -1}, 422, "ttl must be more than 0"),
        ("PUT", PUT, {**GOOD, "extra": 1}, 422, "unknown field 'extra'"),
        ("DELETE", PUT, {"namespace": ["a.b"], "key": "k"}, 422, "must not contain '.'"),
        ("DELETE", PUT, {"namespace": ["a"]}, 422, "key is required"),
        ("DELETE", PUT, {"namespace": "", "key": "k"}, 422, "namespace must be an array"),
        ("POST", "/store/items/search", {"namespace_prefix": {}}, 422, "namespace_prefix must be an array"),
        ("DELETE", PUT, "{oops", 400, "not valid JSON"),
        ("GET", PUT + "?namespace=a&key=", None, 422, "key"),
        ("GET", PUT + "?namespace=a", None, 422, "key is required"),
        ("GET", PUT + "?key=k", None, 422, "namespace is required"),
        ("GET", PUT + "?namespace=a..b&key=k", None, 422, "namespace[1] must not be empty"),
        ("GET", PUT + "?namespace=a&key=k&refresh_ttl=maybe", None, 422, "refresh_ttl must be true or false"),
        ("GET", PUT + "?namespace=%FF&key=k", None, 400, "not percent-encoded UTF-8"),
        ("GET", PUT + "?namespace=a%00b&key=k", None, 422, "NUL"),
        ("POST", "/store/items/search", {"namespace_prefix": "a"}, 422, "namespace_prefix must be an array"),
        ("POST", "/store/items/search", {"filter": [1]}, 422, "filter must be an object"),
        ("POST", "/store/items/search", {"filter": {"x": {"$regex": "a"}}}, 422, "unknown operator '$regex'"),
        ("POST", "/store/items/search", {"filter": {"x": {"a": 1}}}, 422, "unknown operator 'a'"),
        ("POST", "/store/items/search", {"filter": {"x": {"$gt": "3"}}}, 422, "must be a number"),
        ("POST", "/store/items/search", {"filter": {"x": 2**70}}, 422, "64 bits"),
        ("POST", "/store/items/search", {"limit": -1}, 422, "limit must be between 0"),
        ("POST", "/store/items/search", {"limit": True}, 422, "limit must be an integer"),
        ("POST", "/store/items/search", {"offset": 1.5}, 422, "offset must be an integer"),
        ("POST", "/store/items/search", {"query": 3}, 422, "query must be a string"),
        ("POST", "/store/items/search", {"refresh_ttl": "yes"}, 422, "refresh_ttl must be a boolean"),
        ("POST", "/store/namespaces", {"prefix": ["a.b"]}, 422, "prefix[0] must not contain '.'"),
        ("POST", "/store/namespaces", {"suffix": [""]}, 422, "suffix[0] must not be empty"),
        ("POST", "/store/namespaces", {"max_depth": 0}, 422, "max_depth must be between 1"),
        ("POST", "/store/namespaces", {"max_depth": 2**40}, 422, "max_depth must be between 1"),
        ("POST", "/store/namespaces", {"limit": "10"}, 422, "limit must be an integer"),
        ("POST", "/store/namespaces", "", 200, None),
        ("POST", "/store/items/search", "", 200, None),
    ],
)
def test_bad_input_gets_a_4xx_with_detail(
    http: httpx.Client, method: str, path: str, body: object, status: int, detail: str | None
) -> None:
    if isinstance(body, dict):
        response = http.request(method, path, json=body)
    else:
        response = http.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    if detail is None:
        return
    payload = response.json()
    assert set(payload) == {"detail"}
    assert detail in payload["detail"], payload


def test_get_decodes_the_query_string_like_a_browser(http: httpx.Client) -> None:
    namespace = new_namespace("a b", "c+d")
    assert http.put("/store/items", json={"namespace": namespace, "key": "k 1", "value": {}}).status_code == 204
    query = f"namespace={namespace[0]}.a%20b.c%2Bd&key=k+1"  # %20 and + both decode to a space
    response = http.get(f"/store/items?{query}")
    assert response.status_code == 200, response.text
    assert (response.json()["namespace"], response.json()["key"]) == (namespace, "k 1")
    assert response.headers["content-type"].startswith("application/json")
    missing = http.get("/store/items", params={"namespace": namespace[0], "key": "nope"})
    assert missing.status_code == 200 and missing.text == "null"
    deleted = http.request("DELETE", "/store/items", json={"namespace": namespace, "key": "k 1"})
    assert deleted.status_code == 204 and deleted.content == b""


async def test_ttl_is_honoured_by_a_store_configured_to_expire_items(fresh_database: str) -> None:
    """In process: the same service over a Postgres store built with a TTL config."""
    ttl_config = {"omit_expired": True, "refresh_on_read": False}
    async with AsyncPostgresStore.from_conn_string(database_url(fresh_database), ttl=ttl_config) as store:  # type: ignore[arg-type]
        await store.setup()
        service = StoreService(store)
        assert service.supports_ttl
        await service.put(
            parse_put({"namespace": ["ttl", "short"], "key": "k", "value": {"a": 1}, "ttl": 0.01})
        )  # 0.6 s
        await service.put(parse_put({"namespace": ["ttl", "long"], "key": "k", "value": {"a": 2}, "ttl": 60}))
        # Refreshing resets the expiry from the store's whole-minute ttl_minutes column: only on "long".
        assert (await service.get(*parse_get("ttl.long", "k", "true")))["value"] == {"a": 2}
        refreshed = await service.search(parse_search({"namespace_prefix": ["ttl", "long"], "refresh_ttl": True}))
        assert [item["value"] for item in refreshed["items"]] == [{"a": 2}]
        assert (await service.get(*parse_get("ttl.short", "k", None)))["value"] == {"a": 1}
        await asyncio.sleep(1.2)
        assert await service.get(*parse_get("ttl.short", "k", None)) is None
        remaining = (await service.search(parse_search({"namespace_prefix": ["ttl"]})))["items"]
        assert [item["namespace"] for item in remaining] == [["ttl", "long"]]
        with pytest.raises(InvalidRequest, match="ttl must be more than 0"):
            await service.put(parse_put({"namespace": ["ttl"], "key": "k", "value": {}, "ttl": 0}))


async def test_in_memory_store_does_not_claim_ttl() -> None:
    service = StoreService(InMemoryStore())
    assert not service.supports_ttl
    with pytest.raises(InvalidRequest, match="ttl is not supported: this server's store \\(InMemoryStore\\)"):
        await service.put(parse_put({"namespace": ["a"], "key": "k", "value": {}, "ttl": 1}))
