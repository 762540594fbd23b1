"""What browser clients and useStream need: their exact request sequence, CORS, JSON 404/405, thread streams.

Against the real server, on memory and on Postgres (`api_server`), with raw HTTP where the
SDKs would hide what is on the wire.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import TEST_CONFIG, ServerProcess

ORIGIN = "http://localhost:3000"
# What the React useStream hook sends (client.runs.stream in @langchain/langgraph-sdk).
USE_STREAM_MODES = ["values", "messages-tuple", "custom"]


def human(text: str) -> dict:
    return {"messages": [{"type": "human", "content": text}]}


def sse_events(response: httpx.Response) -> Iterator[tuple[str | None, str, object]]:
    """(id, event, data) of a server-sent event stream, as a browser's EventSource parses it."""
    event_id, event, data = None, "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event_id, event, json.loads("\n".join(data))
            event_id, event, data = None, "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                event_id = value
            elif field == "event":
                event = value
            elif field == "data":
                data.append(value)


@pytest.fixture
def http(api_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, timeout=30) as client:
        yield client


def use_stream_turn(http: httpx.Client, thread_id: str, text: str, checkpoint: dict | None) -> list:
    body = {
        "input": human(text),
        "stream_mode": USE_STREAM_MODES,
        "stream_subgraphs": True,
        "stream_resumable": True,
        "on_disconnect": "continue",
        "assistant_id": "agent",
        "checkpoint": checkpoint,
    }
    with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body, headers={"Origin": ORIGIN}) as response:
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["content-location"].startswith(f"/threads/{thread_id}/runs/")
        return list(sse_events(response))


def test_use_stream_sequence_sends_back_the_checkpoint_it_got(http: httpx.Client) -> None:
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    first = use_stream_turn(http, thread_id, "my name is Ada", None)
    assert first[0][1] == "metadata"
    assert "error" not in [event for _, event, _ in first]
    assert {"values", "messages"} <= {event for _, event, _ in first}

    history = http.post(f"/threads/{thread_id}/history", json={"limit": 1}).json()
    checkpoint = history[0]["checkpoint"]
    assert checkpoint["thread_id"] == thread_id and checkpoint["checkpoint_id"]
    assert None not in checkpoint.values(), "a field the server does not have is left out, not null"
    assert history[0]["checkpoint_id"] == checkpoint["checkpoint_id"]

    # useStream deletes thread_id; older servers' null checkpoint_map must be accepted too.
    sent = {key: value for key, value in checkpoint.items() if key != "thread_id"} | {"checkpoint_map": None}
    second = use_stream_turn(http, thread_id, "what is my name?", sent)
    assert [data for _, event, data in second if event == "error"] == []
    final = [data for _, event, data in second if event == "values"][-1]
    assert final["messages"][-1]["content"] == "Your name is Ada."
    assert [m["content"] for m in final["messages"] if m["type"] == "human"] == ["my name is Ada", "what is my name?"]


def test_wait_with_a_null_filled_checkpoint_succeeds(http: httpx.Client) -> None:
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    run = {"assistant_id": "agent", "input": human("my name is Grace")}
    assert http.post(f"/threads/{thread_id}/runs/wait", json=run).status_code == 200
    nulls = {"checkpoint_ns": "", "checkpoint_id": None, "checkpoint_map": None, "thread_id": None}
    result = http.post(
        f"/threads/{thread_id}/runs/wait", json={**run, "input": human("what is my name?"), "checkpoint": nulls}
    )
    assert result.status_code == 200 and "__error__" not in result.json()
    assert result.json()["messages"][-1]["content"] == "Your name is Grace."
    bad = http.post(f"/threads/{thread_id}/runs/wait", json={**run, "checkpoint": {"checkpoint_id": 7}})
    assert bad.status_code == 422 and "checkpoint.checkpoint_id" in bad.json()["detail"]


def test_state_of_a_thread_without_checkpoints_has_no_checkpoint(http: httpx.Client) -> None:
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    state = http.get(f"/threads/{thread_id}/state").json()
    assert state["checkpoint"] is None and state["values"] == {} and state["next"] == []


def test_cors_preflight_and_headers_on_every_response(http: httpx.Client) -> None:
    preflight = http.options(
        "/threads/search",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-key",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "content-type, x-api-key"
    assert preflight.headers["access-control-max-age"] == "600"

    ok = http.get("/ok", headers={"Origin": ORIGIN})
    assert ok.headers["access-control-allow-origin"] == "*"
    assert "content-location" in ok.headers["access-control-expose-headers"]
    missing = http.get(f"/threads/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers={"Origin": ORIGIN})
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == "*"
    invalid = http.post("/threads", content=b"{", headers={"Origin": ORIGIN, "Content-Type": "application/json"})
    assert invalid.status_code == 400 and invalid.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in http.get("/ok").headers  # no Origin, no CORS headers


def test_unknown_routes_and_wrong_methods_answer_json(http: httpx.Client) -> None:
    for path in ("/nope", "/", "/threads/x/y/z/w"):
        response = http.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json" and "No route" in response.json()["detail"]
    wrong = http.put("/threads", json={})
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert "not allowed" in wrong.json()["detail"]
    trace = http.request("TRACE", "/ok")
    assert trace.status_code == 405 and trace.headers["allow"] == "GET"
    options = http.options("/store/namespaces")  # not a preflight: what the path allows
    assert options.status_code == 204 and options.headers["allow"] == "POST, OPTIONS"


def test_event_streams_carry_one_cache_control_header(http: httpx.Client) -> None:
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    body = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0}}}
    with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
        assert response.headers.get_list("cache-control") == ["no-cache, no-store, must-revalidate"]
        assert response.headers["content-type"].startswith("text/event-stream")
        list(response.iter_lines())


class ThreadStreamReader:
    """A client following GET /threads/{id}/stream in a thread, collecting what arrives."""

    def __init__(self, url: str, thread_id: str, headers: dict[str, str] | None = None, query: str = "") -> None:
        self.events: list[tuple[str | None, str, object]] = []
        self.status: int | None = None
        self._url, self._thread_id, self._headers, self._query = url, thread_id, headers or {}, query
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with httpx.Client(base_url=self._url, timeout=30) as client:
            path = f"/threads/{self._thread_id}/stream{self._query}"
            try:
                with client.stream("GET", path, headers=self._headers) as response:
                    self.status = response.status_code
                    for item in sse_events(response):
                        self.events.append(item)
                        if self._stop.is_set():
                            return
            except httpx.HTTPError:
                if not self._stop.is_set():  # closed by the server while still wanted
                    raise

    def wait_for(self, predicate, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            assert time.monotonic() < deadline, f"timed out; got {self.events}"
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()


def run_done(events: list, count: int = 1) -> bool:
    return sum(1 for _, event, data in events if event == "metadata" and data.get("status") == "run_done") >= count


def test_thread_stream_opened_before_a_run_follows_the_next_runs(api_server: ServerProcess, http: httpx.Client):
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    reader = ThreadStreamReader(api_server.url, thread_id, headers={"Origin": ORIGIN})
    time.sleep(0.3)  # the stream is open, no run yet: it must not end or fail
    assert reader.status == 200 and reader.events == []
    body = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0.05}}}
    first = http.post(f"/threads/{thread_id}/runs", json=body).json()
    reader.wait_for(run_done)
    second = http.post(f"/threads/{thread_id}/runs", json=body).json()
    reader.wait_for(lambda events: run_done(events, 2))
    reader.close()
    starts = [data["run_id"] for _, event, data in reader.events if event == "metadata" and "attempt" in data]
    assert starts == [first["run_id"], second["run_id"]]
    values = [data for _, event, data in reader.events if event == "values"]
    assert values[-1] == {"steps": ["step 1", "step 2"]}
    ids = [event_id for event_id, _, _ in reader.events]
    assert all(event_id and event_id.count(":") == 1 for event_id in ids) and len(set(ids)) == len(ids)

    # A reconnect with Last-Event-ID resumes after that event.
    resumed = ThreadStreamReader(api_server.url, thread_id, headers={"Last-Event-ID": ids[1]})
    resumed.wait_for(lambda events: run_done(events, 2))
    resumed.close()
    assert resumed.events == reader.events[2:]

    lifecycle = ThreadStreamReader(api_server.url, thread_id, query="?stream_mode=lifecycle")
    time.sleep(0.2)
    third = http.post(f"/threads/{thread_id}/runs", json=body).json()
    lifecycle.wait_for(run_done)
    lifecycle.close()
    assert [event for _, event, _ in lifecycle.events] == ["metadata", "metadata"]
    assert lifecycle.events[-1][2] == {"status": "run_done", "run_id": third["run_id"]}


def test_thread_stream_refuses_unknown_threads_and_modes(http: httpx.Client) -> None:
    missing = http.get("/threads/00000000-0000-0000-0000-000000000000/stream")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    bad = http.get(f"/threads/{thread_id}/stream", params={"stream_mode": "everything"})
    assert bad.status_code == 422 and "stream_mode" in bad.json()["detail"]
    stale = http.get(f"/threads/{thread_id}/stream", headers={"Last-Event-ID": "garbage"})
    assert stale.status_code == 422


def test_access_log_and_failed_run_traceback(api_server: ServerProcess, http: httpx.Client) -> None:
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    body = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0, "fail": "x1"}}}
    result = http.post(f"/threads/{thread_id}/runs/wait", json=body).json()
    assert result["__error__"]["message"] == "asked to fail: x1"
    http.get("/definitely/not/here")
    deadline = time.monotonic() + 5
    while "GET /definitely/not/here 404" not in api_server.output and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "GET /definitely/not/here 404" in api_server.output
    assert f"POST /threads/{thread_id}/runs/wait 200" in api_server.output
    failure = api_server.output[api_server.output.index("failed: RuntimeError: asked to fail: x1") :]
    assert "Traceback (most recent call last)" in failure and 'raise RuntimeError(f"asked to fail' in failure


@pytest.fixture(scope="module")
def restricted_server() -> Iterator[ServerProcess]:
    server = ServerProcess(
        env={"CONFIG_FILE": str(TEST_CONFIG), "CORS_ALLOW_ORIGINS": f"{ORIGIN}, https://app.example"}
    ).start()
    yield server
    assert server.stop() == 0


def test_cors_allow_origins_restricts_who_may_call(restricted_server: ServerProcess) -> None:
    with httpx.Client(base_url=restricted_server.url) as http:
        allowed = http.get("/ok", headers={"Origin": "https://app.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert allowed.headers["vary"] == "Origin"
        other = http.get("/ok", headers={"Origin": "https://evil.example"})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
        refused = http.options(
            "/threads", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert refused.status_code == 400 and "origin" in refused.json()["detail"]
        preflight = http.options("/threads", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == ORIGIN
