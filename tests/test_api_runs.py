"""Runs through langgraph-sdk and RemoteGraph, against the real server on memory and on Postgres."""

import asyncio
import http.server
import json
import threading
import time

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client, get_sync_client

SLOW = {"input": {"steps": []}, "config": {"configurable": {"delay": 0.4}}}


def human(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.fixture
def client(api_server):
    return get_client(url=api_server.url)


async def test_stream_values_updates_and_messages(client):
    thread = await client.threads.create()
    parts = [
        part
        async for part in client.runs.stream(
            thread["thread_id"],
            "agent",
            input=human("my name is Ada"),
            stream_mode=["values", "updates", "messages-tuple", "debug", "checkpoints", "tasks"],
        )
    ]
    events = [part.event for part in parts]
    assert events[0] == "metadata" and parts[0].data["run_id"]
    assert {"values", "updates", "messages", "debug", "checkpoints", "tasks"} <= set(events)
    final = [part.data for part in parts if part.event == "values"][-1]
    assert final["messages"][-1]["content"] == "Nice to meet you, Ada!"
    update = next(part.data for part in parts if part.event == "updates")
    assert "model" in update
    message, meta = next(part.data for part in parts if part.event == "messages")
    assert message["type"] in ("ai", "AIMessageChunk") and meta["langgraph_node"] == "model"


async def test_stream_messages_mode_uses_partial_and_metadata_events(client):
    thread = await client.threads.create()
    events = [
        part.event
        async for part in client.runs.stream(thread["thread_id"], "agent", input=human("hello"), stream_mode="messages")
    ]
    assert events[0] == "metadata"
    assert "messages/metadata" in events
    assert {"messages/partial", "messages/complete"} & set(events)


async def test_events_mode_and_custom_mode(client):
    thread = await client.threads.create()
    parts = [
        part
        async for part in client.runs.stream(
            thread["thread_id"],
            "approval",
            input={"request": "leave", "log": []},
            stream_mode=["events", "custom", "values"],
        )
    ]
    names = {part.event for part in parts}
    assert {"metadata", "events", "custom", "values"} <= names
    assert any(part.data == {"progress": "asking"} for part in parts if part.event == "custom")
    assert any(part.data["event"] == "on_chain_start" for part in parts if part.event == "events")


async def test_interrupt_and_resume(client):
    thread = await client.threads.create()
    result = await client.runs.wait(thread["thread_id"], "approval", input={"request": "leave", "log": []})
    assert result["__interrupt__"][0]["value"] == {"question": "approve leave?"}
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["ask"]
    assert (await client.threads.get(thread["thread_id"]))["status"] == "interrupted"
    resumed = await client.runs.wait(thread["thread_id"], "approval", command={"resume": "yes"})
    assert resumed["log"] == ["answer: yes", "done"]
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"


async def test_background_run_join_get_list_delete(client):
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "slow", **SLOW)
    assert run["status"] in ("pending", "running") and run["thread_id"] == thread["thread_id"]
    assert await client.runs.join(thread["thread_id"], run["run_id"]) == {"steps": ["step 1"]}
    fetched = await client.runs.get(thread["thread_id"], run["run_id"])
    assert (
        fetched["status"] == "success"
        and fetched["assistant_id"] == (await client.assistants.get("slow"))["assistant_id"]
    )
    listed = await client.runs.list(thread["thread_id"])
    assert [r["run_id"] for r in listed] == [run["run_id"]]
    await client.runs.delete(thread["thread_id"], run["run_id"])
    with pytest.raises(httpx.HTTPStatusError) as missing:
        await client.runs.get(thread["thread_id"], run["run_id"])
    assert missing.value.response.status_code == 404


async def test_join_stream_of_a_live_run(client):
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "slow", stream_mode=["values"], **SLOW)
    events = [part.event async for part in client.runs.join_stream(thread["thread_id"], run["run_id"])]
    assert events[0] == "metadata" and "values" in events


async def test_cancel_a_running_run(client):
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"], "slow", input={"steps": []}, config={"configurable": {"delay": 5}}
    )
    await asyncio.sleep(0.2)
    began = time.monotonic()
    await client.runs.cancel(thread["thread_id"], run["run_id"], wait=True)
    assert time.monotonic() - began < 2
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "interrupted"
    # The thread is usable again at once.
    result = await client.runs.wait(
        thread["thread_id"], "slow", input={"steps": []}, config={"configurable": {"delay": 0}}
    )
    assert result == {"steps": ["step 1"]}


async def test_multitask_strategies(client):
    thread = await client.threads.create()
    first = await client.runs.create(thread["thread_id"], "slow", **SLOW)
    with pytest.raises(httpx.HTTPStatusError) as rejected:
        await client.runs.create(thread["thread_id"], "slow", multitask_strategy="reject", **SLOW)
    assert rejected.value.response.status_code == 409
    queued = await client.runs.create(thread["thread_id"], "slow", multitask_strategy="enqueue", **SLOW)
    assert await client.runs.join(thread["thread_id"], queued["run_id"]) == {"steps": ["step 1", "step 2"]}
    assert (await client.runs.get(thread["thread_id"], first["run_id"]))["status"] == "success"

    running = await client.runs.create(thread["thread_id"], "slow", **SLOW)
    await asyncio.sleep(0.1)
    newer = await client.runs.create(thread["thread_id"], "slow", multitask_strategy="interrupt", **SLOW)
    assert await client.runs.join(thread["thread_id"], newer["run_id"]) == {"steps": ["step 1", "step 2", "step 3"]}
    assert (await client.runs.get(thread["thread_id"], running["run_id"]))["status"] == "interrupted"


async def test_stateless_runs(client):
    assert (await client.runs.wait(None, "agent", input=human("my name is Bo")))["messages"][-1]["content"] == (
        "Nice to meet you, Bo!"
    )
    events = [part.event async for part in client.runs.stream(None, "agent", input=human("hi"))]
    assert events[0] == "metadata" and events[-1] == "values"


def test_sync_client_and_remote_graph(api_server):
    sync = get_sync_client(url=api_server.url)
    thread = sync.threads.create()
    result = sync.runs.wait(thread["thread_id"], "agent", input=human("my name is Cy"))
    assert result["messages"][-1]["content"] == "Nice to meet you, Cy!"

    remote = RemoteGraph("agent", url=api_server.url)
    config = {"configurable": {"thread_id": thread["thread_id"]}}
    answer = remote.invoke(human("what is my name?"), config)
    assert answer["messages"][-1]["content"] == "Your name is Cy."
    chunks = list(remote.stream(human("hello"), config, stream_mode="updates"))
    assert any("model" in chunk for chunk in chunks)


async def test_stream_on_disconnect_cancel_stops_the_run(api_server, client):
    thread = await client.threads.create()
    body = {
        "assistant_id": "slow",
        "input": {"steps": []},
        "config": {"configurable": {"delay": 10}},
        "on_disconnect": "cancel",
    }
    async with httpx.AsyncClient(base_url=api_server.url) as http:
        async with http.stream("POST", f"/threads/{thread['thread_id']}/runs/stream", json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            location = response.headers["content-location"]
            async for line in response.aiter_lines():
                if line.startswith("event: metadata"):
                    break
    run_id = location.rsplit("/", 1)[1]
    deadline = time.monotonic() + 3
    while (run := await client.runs.get(thread["thread_id"], run_id))["status"] != "interrupted":
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ("{oops", 400, "not valid JSON"),
        ('{"assistant_id": "agent", "stream_mode": "nonsense"}', 422, "stream_mode 'nonsense' is not supported"),
        ('{"assistant_id": "agent", "multitask_strategy": "sometimes"}', 422, "multitask_strategy must be one of"),
        ('{"assistant_id": "agent", "webhook": "ftp://example.org/x"}', 422, "webhook must be an http"),
        ('{"assistant_id": "agent", "after_seconds": 5}', 422, "after_seconds is not supported"),
        ('{"assistant_id": "agent", "input": {"messages": 5}}', 200, None),
        ('{"assistant_id": "missing"}', 404, "Assistant 'missing' not found"),
    ],
)
async def test_bad_run_requests(api_server, client, body, status, detail):
    thread = await client.threads.create()
    async with httpx.AsyncClient(base_url=api_server.url) as http:
        response = await http.post(
            f"/threads/{thread['thread_id']}/runs/wait", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == status, response.text
    if detail:
        assert detail in response.json()["detail"]


async def test_unknown_run_and_bad_ids(client):
    thread = await client.threads.create()
    for call in (
        client.runs.get(thread["thread_id"], "00000000-0000-0000-0000-000000000000"),
        client.runs.join(thread["thread_id"], "00000000-0000-0000-0000-000000000000"),
        client.runs.cancel(thread["thread_id"], "00000000-0000-0000-0000-000000000000"),
    ):
        with pytest.raises(httpx.HTTPStatusError) as failed:
            await call
        assert failed.value.response.status_code == 404


class WebhookReceiver:
    """A local HTTP endpoint that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        received: list[dict] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


async def test_webhook_is_called_when_the_run_ends(client):
    receiver = WebhookReceiver()
    try:
        thread = await client.threads.create()
        run = await client.runs.create(thread["thread_id"], "agent", input=human("my name is Di"), webhook=receiver.url)
        await client.runs.join(thread["thread_id"], run["run_id"])
        deadline = time.monotonic() + 5
        while not receiver.received:
            assert time.monotonic() < deadline, "webhook not called"
            await asyncio.sleep(0.05)
        body = receiver.received[0]
        assert body["run_id"] == run["run_id"] and body["status"] == "success"
        assert body["values"]["messages"][-1]["content"] == "Nice to meet you, Di!"
        assert body["run_started_at"] <= body["run_ended_at"]
    finally:
        receiver.close()


async def test_cancel_many_and_thread_stream(client):
    thread = await client.threads.create()
    long_run = {"input": {"steps": []}, "config": {"configurable": {"delay": 5}}}
    run = await client.runs.create(thread["thread_id"], "slow", **long_run)
    events = []
    async for part in await client.threads.join_stream(thread["thread_id"]):
        events.append(part.event)
        if part.event == "values":
            break
    assert events[0] == "metadata"
    await client.runs.cancel_many(thread_id=thread["thread_id"])
    deadline = time.monotonic() + 3
    while (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] != "interrupted":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_runs_beyond_the_concurrency_limit_wait_as_pending(client):
    # The server runs with RUNS_MAX_CONCURRENCY=4: a fifth run waits for a slot.
    threads = [(await client.threads.create())["thread_id"] for _ in range(5)]
    body = {"input": {"steps": []}, "config": {"configurable": {"delay": 0.6}}}
    runs = [await client.runs.create(thread_id, "slow", **body) for thread_id in threads]
    await asyncio.sleep(0.3)
    statuses = [(await client.runs.get(t, r["run_id"]))["status"] for t, r in zip(threads, runs, strict=True)]
    assert statuses.count("running") == 4 and statuses.count("pending") == 1
    results = await asyncio.gather(*(client.runs.join(t, r["run_id"]) for t, r in zip(threads, runs, strict=True)))
    assert all(result == {"steps": ["step 1"]} for result in results)


async def test_openapi_and_docs(api_server):
    async with httpx.AsyncClient(base_url=api_server.url) as http:
        document = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")
    assert document["openapi"].startswith("3.")
    for path in ("/threads/{thread_id}/runs/stream", "/assistants/search", "/store/items", "/runs/wait"):
        assert path in document["paths"]
    assert docs.status_code == 200 and "/openapi.json" in docs.text


async def test_rollback_deletes_the_run_and_its_checkpoints(client):
    thread = await client.threads.create()
    thread_id = thread["thread_id"]
    quick = {"input": {"steps": []}, "config": {"configurable": {"delay": 0}}}
    assert await client.runs.wait(thread_id, "slow", **quick) == {"steps": ["step 1"]}
    history_before = await client.threads.get_history(thread_id, limit=100)

    slow = {"input": {"steps": ["from the rolled-back run"]}, "config": {"configurable": {"delay": 5}}}
    doomed = await client.runs.create(thread_id, "slow", **slow)
    await asyncio.sleep(0.3)  # it has written its input checkpoint by now
    newer = await client.runs.create(thread_id, "slow", multitask_strategy="rollback", **quick)
    assert await client.runs.join(thread_id, newer["run_id"]) == {"steps": ["step 1", "step 2"]}
    with pytest.raises(httpx.HTTPStatusError) as gone:
        await client.runs.get(thread_id, doomed["run_id"])
    assert gone.value.response.status_code == 404

    cancelled = await client.runs.create(thread_id, "slow", **slow)
    await asyncio.sleep(0.3)
    await client.runs.cancel(thread_id, cancelled["run_id"], wait=True, action="rollback")
    with pytest.raises(httpx.HTTPStatusError):
        await client.runs.get(thread_id, cancelled["run_id"])
    state = await client.threads.get_state(thread_id)
    assert state["values"] == {"steps": ["step 1", "step 2"]}
    history_after = await client.threads.get_history(thread_id, limit=100)
    runs_in_history = {h["metadata"].get("run_id") for h in history_after}
    assert doomed["run_id"] not in runs_in_history and cancelled["run_id"] not in runs_in_history
    assert len(history_after) > len(history_before)  # the newer run's checkpoints stay
