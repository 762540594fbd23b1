"""Threads through langgraph-sdk, against the real server on memory and on Postgres."""

import uuid

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client


def human(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.fixture
def client(api_server):
    return get_client(url=api_server.url)


async def test_create_get_patch_delete(client):
    thread_id = str(uuid.uuid4())
    created = await client.threads.create(thread_id=thread_id, metadata={"owner": "ada", "n": 1})
    assert created["thread_id"] == thread_id and created["status"] == "idle"
    again = await client.threads.create(thread_id=thread_id, if_exists="do_nothing")
    assert again["metadata"] == {"owner": "ada", "n": 1}
    with pytest.raises(httpx.HTTPStatusError) as conflict:
        await client.threads.create(thread_id=thread_id)
    assert conflict.value.response.status_code == 409
    patched = await client.threads.update(thread_id, metadata={"n": 2, "tag": "x"})
    assert patched["metadata"] == {"owner": "ada", "n": 2, "tag": "x"}
    await client.runs.wait(thread_id, "agent", input=human("hi"))
    await client.threads.delete(thread_id)
    with pytest.raises(httpx.HTTPStatusError) as gone:
        await client.threads.get(thread_id)
    assert gone.value.response.status_code == 404
    with pytest.raises(httpx.HTTPStatusError) as gone_state:
        await client.threads.get_state(thread_id)
    assert gone_state.value.response.status_code == 404


async def test_search_and_count(client):
    tag = str(uuid.uuid4())
    ids = [(await client.threads.create(metadata={"tag": tag, "i": i}))["thread_id"] for i in range(3)]
    await client.runs.wait(ids[0], "agent", input=human("my name is Ada"))
    found = await client.threads.search(metadata={"tag": tag})
    assert [t["thread_id"] for t in found] == list(reversed(ids))  # newest first
    oldest_first = await client.threads.search(metadata={"tag": tag}, sort_by="created_at", sort_order="asc")
    assert [t["thread_id"] for t in oldest_first] == ids
    page = await client.threads.search(metadata={"tag": tag}, limit=1, offset=1, sort_order="asc")
    assert [t["thread_id"] for t in page] == [ids[1]]
    assert [t["thread_id"] for t in await client.threads.search(metadata={"tag": tag, "i": 2})] == [ids[2]]
    by_values = await client.threads.search(metadata={"tag": tag}, values={"messages": [{"content": "my name is Ada"}]})
    assert [t["thread_id"] for t in by_values] == [ids[0]]
    assert await client.threads.count(metadata={"tag": tag}) == 3
    assert await client.threads.count(metadata={"tag": tag}, status="busy") == 0
    selected = await client.threads.search(metadata={"tag": tag}, select=["thread_id", "status"], limit=1)
    assert set(selected[0]) == {"thread_id", "status"}


async def test_state_history_and_checkpoints(client):
    thread = await client.threads.create()
    thread_id = thread["thread_id"]
    await client.runs.wait(thread_id, "agent", input=human("my name is Ada"))
    await client.runs.wait(thread_id, "agent", input=human("what is my name?"))
    state = await client.threads.get_state(thread_id)
    assert state["values"]["messages"][-1]["content"] == "Your name is Ada."
    history = await client.threads.get_history(thread_id, limit=50)
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert len(history) > 4
    earlier = history[3]
    at = await client.threads.get_state(thread_id, checkpoint_id=earlier["checkpoint"]["checkpoint_id"])
    assert at["values"] == earlier["values"]
    before = await client.threads.get_history(thread_id, limit=2, before=earlier["checkpoint"])
    assert [h["checkpoint"]["checkpoint_id"] for h in before] == [
        h["checkpoint"]["checkpoint_id"] for h in history[4:6]
    ]


async def test_update_state_as_node_then_continue(client):
    thread = await client.threads.create()
    thread_id = thread["thread_id"]
    await client.runs.wait(thread_id, "agent", input=human("hello"))
    update = await client.threads.update_state(
        thread_id, {"messages": [{"role": "user", "content": "my name is Zed"}]}, as_node="tools"
    )
    assert update["checkpoint"]["checkpoint_id"]
    state = await client.threads.get_state(thread_id)
    assert state["values"]["messages"][-1]["content"] == "my name is Zed"
    assert state["next"] == ["model"]
    result = await client.runs.wait(thread_id, "agent", input=None)
    assert result["messages"][-1]["content"] == "Nice to meet you, Zed!"


async def test_update_state_of_an_interrupted_thread_and_thread_status(client):
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "approval", input={"request": "x", "log": []})
    interrupted = await client.threads.get(thread["thread_id"])
    assert interrupted["status"] == "interrupted" and interrupted["interrupts"]
    assert await client.threads.count(status="interrupted") >= 1


async def test_copy_keeps_state_and_history(client):
    thread = await client.threads.create(metadata={"k": "v"})
    await client.runs.wait(thread["thread_id"], "agent", input=human("my name is Ada"))
    copied = await client.threads.copy(thread["thread_id"])
    assert copied["thread_id"] != thread["thread_id"] and copied["metadata"]["k"] == "v"
    result = await client.runs.wait(copied["thread_id"], "agent", input=human("what is my name?"))
    assert result["messages"][-1]["content"] == "Your name is Ada."
    original = await client.threads.get_state(thread["thread_id"])
    assert len(original["values"]["messages"]) == 2  # the copy's run did not touch the original


def test_sync_client_threads(api_server):
    sync = get_sync_client(url=api_server.url)
    thread = sync.threads.create(metadata={"sync": True})
    assert sync.threads.get(thread["thread_id"])["metadata"] == {"sync": True}
    assert sync.threads.get_state(thread["thread_id"])["values"] == {}
    assert sync.threads.get_history(thread["thread_id"]) == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("POST", "/threads/search", '{"limit": -1}', 422, "limit must be between 0 and"),
        ("POST", "/threads/search", '{"sort_by": "colour"}', 422, "sort_by must be one of"),
        ("POST", "/threads/search", '{"status": "sleeping"}', 422, "status must be one of"),
        ("POST", "/threads/search", '{"metadata": []}', 422, "metadata must be an object"),
        ("POST", "/threads/count", "[", 400, "not valid JSON"),
        ("PATCH", "/threads/THREAD", '{"metadata": 1}', 422, "metadata must be an object"),
        ("POST", "/threads/THREAD/state", '{"values": {}}', 409, "has no graph yet"),
        ("GET", f"/threads/THREAD/state/{uuid.uuid4()}", None, 200, None),
        ("POST", "/threads/THREAD/history", '{"limit": "ten"}', 422, "limit must be an integer"),
        ("POST", "/threads/THREAD/history", '{"limit": 1.5}', 422, "limit must be an integer"),
        ("POST", "/threads/THREAD/history", '{"limit": 10.0}', 200, None),  # JSON's integer 10
        ("POST", "/threads/THREAD/state/checkpoint", '{"checkpoint": {}, "subgraphs": 1}', 422, "subgraphs must be"),
        ("POST", "/threads/THREAD/state/checkpoint", '{"checkpoint": {}, "at": 1}', 422, "unknown field 'at'"),
        ("GET", "/threads/%FF", None, 400, "path parameter 'thread_id' is not percent-encoded UTF-8"),
        ("GET", "/threads/PERCENT_ENCODED_THREAD", None, 200, None),
        ("DELETE", f"/threads/{uuid.uuid4()}", None, 404, "not found"),
        ("POST", f"/threads/{uuid.uuid4()}/copy", None, 404, "not found"),
    ],
)
def test_bad_thread_requests(api_server, method, path, body, status, detail):
    with httpx.Client(base_url=api_server.url) as http:
        thread_id = http.post("/threads", json={}).json()["thread_id"]
        # A path parameter is percent-decoded: %2D is '-'.
        path = path.replace("PERCENT_ENCODED_THREAD", thread_id.replace("-", "%2D"))
        response = http.request(
            method, path.replace("THREAD", thread_id), content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == status, response.text
    if detail:
        assert detail in response.json()["detail"]
