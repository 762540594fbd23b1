"""The web layer in process, with the container's services replaced by fakes: routes parse requests
into typed arguments, call one service method and shape the response; the pipeline maps errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from dependency_injector import providers

from src.containers import Container
from src.services.assistants.models import AssistantPage, AssistantSearch
from src.services.errors import Conflict
from src.services.threads.models import ThreadFilter, ThreadSearch
from src.settings import load_settings
from tests.conftest import TEST_CONFIG
from tests.inprocess import InProcessApi


class FakeThreads:
    """Records what the routes hand over; answers canned values."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def search(self, request: ThreadSearch) -> list[dict[str, Any]]:
        self.calls.append(("search", request))
        return [{"thread_id": "t1"}]

    async def count(self, where: ThreadFilter) -> int:
        self.calls.append(("count", where))
        return 7

    async def delete(self, thread_id: str, visible: Any = None) -> None:
        raise Conflict(f"Thread {thread_id!r} is busy")

    async def get(self, thread_id: str, visible: Any = None) -> dict[str, Any]:
        raise RuntimeError("a bug with a secret in it: password=hunter2")


class FakeAssistants:
    def __init__(self) -> None:
        self.searches: list[AssistantSearch] = []

    async def search(self, request: AssistantSearch) -> AssistantPage:
        self.searches.append(request)
        return AssistantPage([{"assistant_id": "a"}, {"assistant_id": "b"}], request.offset, request.limit, more=True)


@pytest.fixture
async def web() -> AsyncIterator[tuple[InProcessApi, FakeThreads, FakeAssistants]]:
    container = Container()
    container.config.from_dict(load_settings(TEST_CONFIG, environ={}))
    threads, assistants = FakeThreads(), FakeAssistants()
    with (
        container.thread_service.override(providers.Object(threads)),
        container.assistant_service.override(providers.Object(assistants)),
        container.default_assistants.override(providers.Object(None)),
    ):
        api = await InProcessApi(container).start()
        yield api, threads, assistants
        await api.stop()


async def test_routes_hand_services_typed_arguments(web) -> None:
    api, threads, _ = web
    body = {"metadata": {"owner": "ada"}, "status": "idle", "limit": 3, "sort_by": "updated_at", "sort_order": "asc"}
    assert await api.call("POST", "/threads/search", body) == [{"thread_id": "t1"}]
    assert await api.call("POST", "/threads/count", {"values": {"x": 1}}) == 7
    (_, search), (_, where) = threads.calls
    assert search == ThreadSearch(
        where=ThreadFilter(metadata={"owner": "ada"}, status="idle"),
        limit=3,
        offset=0,
        sort_by="updated_at",
        sort_order="asc",
    )
    assert where == ThreadFilter(values={"x": 1})


async def test_bad_requests_never_reach_the_service(web) -> None:
    api, threads, _ = web
    for body, detail in (
        ({"limit": "x"}, "limit must be an integer"),
        ({"status": "sleeping"}, "status must be one of"),
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"limit": 1001}, "limit must be between 0 and 1000"),
    ):
        response = await api.respond("POST", "/threads/search", body)
        assert response.status_code == 422
        assert detail in orjson.loads(response.description)["detail"]
    unreadable = await api.respond("POST", "/threads/search", body=b"{nope")
    assert unreadable.status_code == 400 and "not valid JSON" in orjson.loads(unreadable.description)["detail"]
    assert threads.calls == []


async def test_domain_errors_map_to_status_codes_and_bugs_to_a_bare_500(web) -> None:
    api, _, _ = web
    busy = await api.respond("DELETE", "/threads/00000000-0000-0000-0000-000000000001")
    assert busy.status_code == 409 and orjson.loads(busy.description) == {
        "detail": "Thread '00000000-0000-0000-0000-000000000001' is busy"
    }
    bug = await api.respond("GET", "/threads/00000000-0000-0000-0000-000000000001")
    assert bug.status_code == 500
    assert orjson.loads(bug.description) == {"detail": "internal server error; the server log has the details"}


async def test_pagination_headers_are_shaped_by_the_route(web) -> None:
    api, _, assistants = web
    response = await api.respond("POST", "/assistants/search", {"limit": 2, "offset": 4, "graph_id": "slow"})
    assert response.status_code == 200
    assert response.headers.get("x-pagination-total") == "7" and response.headers.get("x-pagination-next") == "6"
    (search,) = assistants.searches
    assert (search.limit, search.offset, search.query.graph_id) == (2, 4, "slow")


async def test_fallback_and_cors_in_process(web) -> None:
    api, _, _ = web
    missing = await api.respond("GET", "/nowhere", headers={"Origin": "http://app.example"})
    assert missing.status_code == 404 and missing.headers.get("access-control-allow-origin") == "*"
    wrong = await api.respond("PUT", "/threads")
    assert wrong.status_code == 405 and wrong.headers.get("allow") == "POST"
    preflight = await api.respond(
        "OPTIONS",
        "/threads/search",
        headers={"Origin": "http://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204 and "POST" in preflight.headers.get("access-control-allow-methods")
