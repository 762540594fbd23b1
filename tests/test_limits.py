"""Bad input and bounded memory: one JSON rule for every body, request limits, buffers that let go.

End to end against the real server on memory and on Postgres (`api_server`), plus unit
tests of the pieces that bound what the server keeps.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest

from src.containers import Container, provide
from src.services.runs.streams import RunStream
from src.settings import load_settings
from src.web.sse import sse_body
from tests.conftest import TEST_CONFIG, ServerProcess
from tests.inprocess import InProcessApi

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def http(api_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, timeout=30) as client:
        yield client


def send(http: httpx.Client, method: str, path: str, raw: str) -> httpx.Response:
    return http.request(method, path, content=raw.encode("utf-8", "surrogatepass"), headers=JSON)


DEEP = "[" * 150 + "]" * 150
BIG = str(2**70)


@pytest.mark.parametrize(
    ("method", "path", "raw", "detail"),
    [
        ("POST", "/threads", '{"metadata": {"a": "x\\u0000y"}}', "NUL"),
        ("POST", "/threads", '{"metadata": {"a": "\\ud800"}}', "unpaired surrogates"),
        ("POST", "/threads", '{"metadata": {"k\\u0000": 1}}', "a key in"),
        ("POST", "/threads", '{"metadata": {"deep": ' + DEEP + "}}", "nested too deeply"),
        ("POST", "/threads", '{"metadata": {"n": ' + BIG + "}}", "within 64 bits"),
        ("POST", "/threads", '{"metadata": {"n": NaN}}', "finite"),
        ("POST", "/threads", '{"metadata": {"n": 1e400}}', "finite number"),
        ("POST", "/threads/search", '{"metadata": {"a": "\\ud800"}}', "unpaired surrogates"),
        ("POST", "/runs/wait", '{"assistant_id": "agent", "input": {"messages": [{"content": "\\u0000"}]}}', "NUL"),
        ("POST", "/runs/wait", '{"assistant_id": "agent", "metadata": {"m": "\\u0000"}}', "NUL"),
        ("POST", "/assistants", '{"graph_id": "agent", "name": "a\\u0000"}', "NUL"),
        ("PUT", "/store/items", '{"namespace": ["a"], "key": "k", "value": {"v": ' + BIG + "}}", "64 bits"),
    ],
)
def test_json_that_storage_cannot_round_trip_is_refused_alike_on_both_backends(http, method, path, raw, detail):
    response = send(http, method, path, raw)
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]


def test_refused_values_never_reach_storage_and_search_keeps_working(http: httpx.Client) -> None:
    marker = str(uuid.uuid4())
    for raw in ('{"metadata": {"m": "MARK", "a": "\\ud800"}}', '{"metadata": {"m": "MARK", "d": ' + DEEP + "}}"):
        assert send(http, "POST", "/threads", raw.replace("MARK", marker)).status_code == 422
    assert http.post("/threads", json={"metadata": {"m": marker}}).status_code == 200
    found = http.post("/threads/search", json={"metadata": {"m": marker}})
    assert found.status_code == 200 and len(found.json()) == 1
    assert http.post("/threads/search", json={}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/threads/search", {"limit": 1_000_000_000}),
        ("POST", "/assistants/search", {"limit": 1_000_000_000}),
        ("POST", "/store/items/search", {"limit": 1_000_000_000}),
        ("POST", "/store/namespaces", {"limit": 1_000_000_000}),
        ("POST", "/threads/THREAD/history", {"limit": 1_000_000_000}),
        ("GET", "/threads/THREAD/runs?limit=1000000000", None),
        ("GET", "/threads/THREAD/history?limit=1000000000", None),
    ],
)
def test_absurd_limits_are_refused(http, method, path, body) -> None:
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    response = http.request(method, path.replace("THREAD", thread_id), json=body)
    assert response.status_code == 422 and "between" in response.json()["detail"]


def test_bodies_must_be_json_and_not_too_large(http: httpx.Client) -> None:
    # A "simple" cross-origin request (no preflight) cannot carry application/json.
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = http.post("/threads", content=b"{}", headers={"Content-Type": content_type})
        assert response.status_code == 415, content_type
        assert "application/json" in response.json()["detail"]
    form = http.post("/threads", files={"metadata": ("m.json", b"{}", "application/json")})  # a real form post
    assert form.status_code == 415 and "multipart/form-data" in form.json()["detail"]
    assert http.post("/threads", content=b"{}").status_code == 415  # no type at all
    assert http.post("/threads", content=b"{}", headers={"Content-Type": "application/json; charset=utf-8"}).is_success
    big = b'{"metadata": {"x": "' + b"a" * (10 * 1024 * 1024) + b'"}}'
    too_large = http.post("/threads", content=big, headers=JSON)
    assert too_large.status_code == 413 and "server.max_body_bytes" in too_large.json()["detail"]
    assert http.get("/ok").status_code == 200


def test_host_header_must_name_this_server(http: httpx.Client) -> None:
    # The test server listens on 127.0.0.1: only loopback names are answered (DNS rebinding).
    assert http.get("/ok", headers={"Host": "localhost:8123"}).status_code == 200
    refused = http.get("/ok", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and "ALLOWED_HOSTS" in refused.json()["detail"]
    assert http.post("/threads", json={}, headers={"Host": "attacker.test:80"}).status_code == 400


def test_allowed_hosts_setting(server_factory) -> None:
    env = {"CONFIG_FILE": str(TEST_CONFIG), "ALLOWED_HOSTS": "api.example.com,.internal,127.0.0.1"}
    server = server_factory(env=env).start()
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/ok", headers={"Host": "api.example.com"}).status_code == 200
        assert http.get("/ok", headers={"Host": "svc.internal:8080"}).status_code == 200
        assert http.get("/ok", headers={"Host": "localhost"}).status_code == 400


def test_stateless_runs_leave_no_checkpoints(api_server: ServerProcess, http: httpx.Client) -> None:
    quick = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0}}}
    for _ in range(5):
        assert http.post("/runs/wait", json=quick).json() == {"steps": ["step 1"]}
    kept = http.post("/runs/wait", json={**quick, "on_completion": "keep"})
    assert kept.status_code == 200
    if "DATABASE_URL" not in api_server.env:
        return  # memory: the in-process test below counts the saver's threads
    with psycopg.connect(api_server.env["DATABASE_URL"]) as conn:
        orphans = conn.execute(
            "SELECT count(DISTINCT thread_id) FROM checkpoints "
            "WHERE thread_id::uuid NOT IN (SELECT thread_id FROM agent_server.threads)"
        ).fetchone()
    assert orphans == (0,)


async def test_stateless_runs_leave_no_checkpoints_in_memory() -> None:
    container = Container()
    container.config.from_dict(load_settings(TEST_CONFIG, environ={}))
    api = await InProcessApi(container).start()
    quick = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0}}}
    for _ in range(3):
        await api.call("POST", "/runs/wait", quick)
    saver = await provide(container.checkpointer)
    assert not saver.storage and not saver.blobs and not saver.writes
    await api.stop()


def test_run_stream_keeps_a_bounded_number_of_events() -> None:
    stream = RunStream(max_events=100)
    for index in range(1000):
        stream.publish("values", index)
    stream.close()
    assert stream.length == 1000

    async def follow(start: int) -> list[int]:
        return [item[0] async for item in stream.follow(start) if item is not None]

    positions = asyncio.run(follow(0))
    assert len(positions) <= 125 and positions[-1] == 999 and positions == sorted(positions)
    assert asyncio.run(follow(990)) == list(range(990, 1000))


async def test_an_abandoned_stream_is_closed_and_lets_go_of_its_run() -> None:
    released = asyncio.Event()
    told: list[bool] = []

    async def events() -> AsyncIterator[tuple[int, str, object] | None]:
        try:
            for index in range(1000):
                yield index, "values", {"i": index}
                await asyncio.sleep(0.01)
        finally:
            released.set()

    body = sse_body(events(), lambda: told.append(True), abandon_after=0.8)
    first = await body.__anext__()
    assert json.loads(first.split("data: ", 1)[1]) == {"i": 0}
    # The client stops reading: the stream is parked after its first chunk.
    await asyncio.wait_for(released.wait(), 5)
    assert told == [True]
    with pytest.raises(StopAsyncIteration):
        await body.__anext__()
