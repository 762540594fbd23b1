"""Assistants through langgraph-sdk and RemoteGraph, against the real server on memory and on Postgres."""

import textwrap
import uuid

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client, get_sync_client

from tests.conftest import TEST_CONFIG, database_url

# The LangGraph API derives a graph's default assistant id as uuid5(NAMESPACE_GRAPH, graph_id).
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
AGENT_ASSISTANT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"
TEST_GRAPHS = ("agent", "factory", "slow")
SYSTEM = {"created_by": "system"}

NESTED_GRAPH = """
from dataclasses import dataclass

from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict):
    text: str


@dataclass
class Context:
    style: str = "plain"


def shout(state: State) -> dict:
    return {"text": state["text"].upper()}


child = StateGraph(State)
child.add_node("shout", shout)
child.add_edge(START, "shout")

parent = StateGraph(State, context_schema=Context)
parent.add_node("inner", child.compile())
parent.add_edge(START, "inner")
graph = parent
"""


@pytest.fixture
def client(api_server):
    return get_client(url=api_server.url)


@pytest.fixture
def sync_client(api_server):
    return get_sync_client(url=api_server.url)


@pytest.fixture
def http(api_server):
    with httpx.Client(base_url=api_server.url, timeout=30) as session:
        yield session


def tag() -> str:
    return uuid.uuid4().hex


def detail(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, f"{response.status_code} {response.text}"
    body = response.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str) and body["detail"], body
    return body["detail"]


def sdk_status(exc_info: pytest.ExceptionInfo[httpx.HTTPStatusError]) -> int:
    assert list(exc_info.value.response.json()) == ["detail"]
    return exc_info.value.response.status_code


async def test_default_assistants_are_listed_and_counted(client):
    system = await client.assistants.search(metadata=SYSTEM, limit=100)
    by_graph = {assistant["graph_id"]: assistant for assistant in system}
    for graph_id in TEST_GRAPHS:
        assistant = by_graph[graph_id]
        assert assistant["assistant_id"] == str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))
        assert assistant["name"] == graph_id and assistant["metadata"] == SYSTEM
        assert assistant["config"] == {} and assistant["context"] == {} and assistant["description"] is None
        assert assistant["version"] >= 1 and assistant["created_at"] and assistant["updated_at"]
    assert by_graph["agent"]["assistant_id"] == AGENT_ASSISTANT_ID
    assert len(by_graph) == len(system)  # one per served graph
    assert await client.assistants.count(metadata=SYSTEM) == len(system)
    for graph_id in TEST_GRAPHS:
        assert await client.assistants.count(graph_id=graph_id, metadata=SYSTEM) == 1
        [only] = await client.assistants.search(graph_id=graph_id, metadata=SYSTEM)
        assert only["assistant_id"] == by_graph[graph_id]["assistant_id"]


async def test_get_by_graph_id_and_by_uuid(client):
    by_graph_id = await client.assistants.get("agent")
    by_uuid = await client.assistants.get(AGENT_ASSISTANT_ID)
    assert by_graph_id == by_uuid
    assert by_uuid["assistant_id"] == AGENT_ASSISTANT_ID and by_uuid["graph_id"] == "agent"
    assert (await client.assistants.get(AGENT_ASSISTANT_ID.upper()))["assistant_id"] == AGENT_ASSISTANT_ID


def test_create_patch_delete_round_trip(sync_client):
    marker = tag()
    created = sync_client.assistants.create(
        "slow",
        config={"configurable": {"delay": 0.1}, "tags": ["t"]},
        metadata={"test": marker},
        name=f"round-trip {marker}",
        description="a slow one",
    )
    assert uuid.UUID(created["assistant_id"])
    assert created["graph_id"] == "slow" and created["version"] == 1
    assert created["config"] == {"configurable": {"delay": 0.1}, "tags": ["t"]}
    assert created["context"] == {"delay": 0.1}  # mirrored, as the LangGraph API does
    assert created["metadata"] == {"test": marker} and created["description"] == "a slow one"
    assistant_id = created["assistant_id"]
    assert sync_client.assistants.get(assistant_id) == created

    patched = sync_client.assistants.update(assistant_id, metadata={"extra": 1}, name=f"renamed {marker}")
    assert patched["version"] == 2 and patched["name"] == f"renamed {marker}"
    assert patched["metadata"] == {"test": marker, "extra": 1}  # merged
    assert patched["config"] == created["config"] and patched["description"] == "a slow one"
    assert patched["created_at"] == created["created_at"] and patched["updated_at"] >= created["updated_at"]
    recontexted = sync_client.assistants.update(assistant_id, context={"delay": 0.3})
    assert recontexted["context"] == {"delay": 0.3}
    assert recontexted["config"] == {"configurable": {"delay": 0.3}, "tags": ["t"]}
    regraphed = sync_client.assistants.update(assistant_id, graph_id="factory")
    assert regraphed["graph_id"] == "factory" and regraphed["version"] == 4
    assert [a["assistant_id"] for a in sync_client.assistants.search(metadata={"test": marker})] == [assistant_id]

    sync_client.assistants.delete(assistant_id)
    with pytest.raises(httpx.HTTPStatusError) as missing:
        sync_client.assistants.get(assistant_id)
    assert sdk_status(missing) == 404
    with pytest.raises(httpx.HTTPStatusError) as again:
        sync_client.assistants.delete(assistant_id)
    assert sdk_status(again) == 404
    assert sync_client.assistants.search(metadata={"test": marker}) == []


async def test_create_with_id_if_exists_and_context(client):
    assistant_id = str(uuid.uuid4())
    first = await client.assistants.create("agent", assistant_id=assistant_id, name="first", if_exists="raise")
    assert first["assistant_id"] == assistant_id and first["name"] == "first"
    with pytest.raises(httpx.HTTPStatusError) as duplicate:
        await client.assistants.create("agent", assistant_id=assistant_id, name="second")
    assert sdk_status(duplicate) == 409
    kept = await client.assistants.create("slow", assistant_id=assistant_id, name="second", if_exists="do_nothing")
    assert kept == first
    untitled = await client.assistants.create("slow", context={"delay": 0.2})
    assert untitled["name"] == "Untitled" and untitled["context"] == {"delay": 0.2}
    assert untitled["config"] == {"configurable": {"delay": 0.2}}
    with pytest.raises(httpx.HTTPStatusError) as both:
        await client.assistants.create("slow", config={"configurable": {"delay": 1}}, context={"delay": 2})
    assert sdk_status(both) == 400


async def test_search_filters_pagination_sorting_and_select(client):
    marker = tag()
    names = []
    for i in range(5):
        created = await client.assistants.create(
            "agent", name=f"{marker}-{i}", metadata={"suite": marker, "i": i, "even": i % 2 == 0, "nested": {"i": i}}
        )
        names.append(created["name"])
    suite = {"suite": marker}
    newest_first = await client.assistants.search(metadata=suite, limit=100)
    assert [a["name"] for a in newest_first] == names[::-1]  # created_at desc by default
    assert [a["name"] for a in await client.assistants.search(metadata={**suite, "even": True})] == [
        names[4],
        names[2],
        names[0],
    ]
    assert [a["name"] for a in await client.assistants.search(metadata={**suite, "nested": {"i": 3}})] == [names[3]]
    assert await client.assistants.count(metadata=suite) == 5
    assert await client.assistants.count(metadata={**suite, "even": False}) == 2
    assert await client.assistants.count(metadata=suite, graph_id="slow") == 0

    pages, offset = [], 0
    while True:
        page = await client.assistants.search(
            metadata=suite, limit=2, offset=offset, sort_by="name", sort_order="asc", response_format="object"
        )
        pages.append([a["name"] for a in page["assistants"]])
        if page["next"] is None:
            break
        assert page["next"] == str(offset + 2)
        offset = int(page["next"])
    assert pages == [names[0:2], names[2:4], names[4:5]]

    by_name = await client.assistants.search(name=marker.upper()[:10], limit=100)
    assert sorted(a["name"] for a in by_name) == names
    selected = await client.assistants.search(metadata=suite, limit=1, select=["assistant_id", "name"])
    assert len(selected) == 1 and set(selected[0]) == {"assistant_id", "name"}


async def test_graph_schemas_and_subgraphs_of_agent_and_slow(client):
    agent = await client.assistants.get_graph("agent")
    assert {node["id"] for node in agent["nodes"]} == {"__start__", "model", "tools", "__end__"}
    assert all("id" not in node.get("data", {}) for node in agent["nodes"])
    assert {"source": "__start__", "target": "model"} in agent["edges"]
    assert await client.assistants.get_graph(AGENT_ASSISTANT_ID, xray=True) == agent
    slow = await client.assistants.get_graph("slow")
    assert {node["id"] for node in slow["nodes"]} == {"__start__", "work", "__end__"}

    schemas = await client.assistants.get_schemas("agent")
    assert schemas["graph_id"] == "agent"
    assert set(schemas) == {"graph_id"} | {
        f"{kind}_schema" for kind in ("input", "output", "state", "config", "context")
    }
    assert "messages" in schemas["input_schema"]["properties"]
    assert "messages" in schemas["output_schema"]["properties"]
    assert "messages" in schemas["state_schema"]["properties"]
    assert schemas["config_schema"] == {} and schemas["context_schema"] is None
    slow_schemas = await client.assistants.get_schemas("slow")
    assert slow_schemas["graph_id"] == "slow"
    assert slow_schemas["state_schema"]["properties"]["steps"]["type"] == "array"
    # typing.TypedDict state: pydantic cannot build input/output schemas before Python 3.12, so null.
    assert slow_schemas["input_schema"] is None or "steps" in slow_schemas["input_schema"]["properties"]

    assert await client.assistants.get_subgraphs("agent") == {}
    assert await client.assistants.get_subgraphs("slow", recurse=True) == {}
    assert await client.assistants.get_subgraphs("slow", namespace="work") == {}


async def test_versions_and_set_latest(client):
    marker = tag()
    created = await client.assistants.create(
        "slow", name="v1", config={"configurable": {"delay": 0.1}}, metadata={"test": marker, "round": 1}
    )
    assistant_id = created["assistant_id"]
    await client.assistants.update(assistant_id, config={"configurable": {"delay": 0.2}}, name="v2")
    await client.assistants.update(assistant_id, metadata={"round": 3}, name="v3")

    versions = await client.assistants.get_versions(assistant_id)
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["name"] for v in versions] == ["v3", "v2", "v1"]
    assert versions[1]["config"] == {"configurable": {"delay": 0.2}} and versions[2]["context"] == {"delay": 0.1}
    assert all(v["assistant_id"] == assistant_id and v["graph_id"] == "slow" for v in versions)
    assert [v["version"] for v in await client.assistants.get_versions(assistant_id, metadata={"round": 1})] == [2, 1]
    assert [v["version"] for v in await client.assistants.get_versions(assistant_id, limit=1, offset=1)] == [2]

    latest = await client.assistants.set_latest(assistant_id, 1)
    assert latest["version"] == 1 and latest["name"] == "v1"
    assert latest["config"] == {"configurable": {"delay": 0.1}} and latest["metadata"] == {"test": marker, "round": 1}
    assert await client.assistants.get(assistant_id) == latest
    after = await client.assistants.update(assistant_id, name="v4")
    assert after["version"] == 4 and after["config"] == {"configurable": {"delay": 0.1}}
    assert len(await client.assistants.get_versions(assistant_id)) == 4

    with pytest.raises(httpx.HTTPStatusError) as unknown_version:
        await client.assistants.set_latest(assistant_id, 99)
    assert sdk_status(unknown_version) == 404
    with pytest.raises(httpx.HTTPStatusError) as no_versions:
        await client.assistants.get_versions(str(uuid.uuid4()))
    assert sdk_status(no_versions) == 404
    default_versions = await client.assistants.get_versions("factory")
    assert default_versions[-1]["version"] == 1 and default_versions[-1]["metadata"] == SYSTEM


def test_error_answers(http):
    unknown = str(uuid.uuid4())
    assert "JSON" in detail(
        http.post("/assistants", content=b"{not json", headers={"Content-Type": "application/json"}), 400
    )
    assert "JSON" in detail(
        http.post("/assistants/search", content=b"[1,", headers={"Content-Type": "application/json"}), 400
    )
    assert "graph_id" in detail(http.post("/assistants", json={}), 422)
    assert "JSON object" in detail(http.post("/assistants", json=["agent"]), 422)
    assert "nope" in detail(http.post("/assistants", json={"graph_id": "nope"}), 404)
    detail(http.post("/assistants", json={"graph_id": 7}), 422)
    detail(http.post("/assistants", json={"graph_id": "agent", "metadata": "x"}), 422)
    detail(http.post("/assistants", json={"graph_id": "agent", "assistant_id": "not-a-uuid"}), 422)
    detail(http.post("/assistants", json={"graph_id": "agent", "if_exists": "replace"}), 422)
    detail(http.post("/assistants", json={"graph_id": "agent", "config": {"recursion_limit": "x"}}), 422)
    detail(http.post("/assistants", json={"graph_id": "agent", "config": {"tags": [1]}}), 422)
    detail(http.post("/assistants", json={"graph_id": "agent", "name": 5}), 422)
    detail(http.post("/assistants", json={"graph_id": "agent", "surprise": 1}), 422)
    body = {"graph_id": "agent", "assistant_id": str(uuid.uuid4())}
    assert http.post("/assistants", json=body).status_code == 200
    assert "already exists" in detail(http.post("/assistants", json=body), 409)

    detail(http.get(f"/assistants/{unknown}"), 404)
    assert "UUID" in detail(http.get("/assistants/not-a-graph"), 422)
    detail(http.patch(f"/assistants/{unknown}", json={"name": "x"}), 404)
    detail(http.patch("/assistants/agent", json={"graph_id": "nope"}), 404)
    detail(http.patch("/assistants/agent", json={"metadata": [1]}), 422)
    detail(http.patch("/assistants/agent", content=b"{", headers={"Content-Type": "application/json"}), 400)
    detail(http.delete(f"/assistants/{unknown}"), 404)
    detail(http.delete("/assistants/agent", params={"delete_threads": "true"}), 422)

    detail(http.post("/assistants/search", json={"limit": 0}), 422)
    detail(http.post("/assistants/search", json={"limit": 1001}), 422)
    detail(http.post("/assistants/search", json={"offset": -1}), 422)
    detail(http.post("/assistants/search", json={"limit": "ten"}), 422)
    detail(http.post("/assistants/search", json={"sort_by": "color"}), 422)
    detail(http.post("/assistants/search", json={"sort_order": "up"}), 422)
    assert "select" in detail(http.post("/assistants/search", json={"select": ["nope"]}), 422)
    detail(http.post("/assistants/search", json={"graph_id": "nope"}), 404)
    detail(http.post("/assistants/count", json={"metadata": []}), 422)
    detail(http.post("/assistants/count", json={"graph_id": "nope"}), 404)

    assert "xray" in detail(http.get("/assistants/agent/graph", params={"xray": "maybe"}), 422)
    detail(http.get("/assistants/agent/graph", params={"xray": "-1"}), 422)
    detail(http.get(f"/assistants/{unknown}/graph"), 404)
    detail(http.get(f"/assistants/{unknown}/schemas"), 404)
    detail(http.get(f"/assistants/{unknown}/subgraphs"), 404)
    detail(http.get("/assistants/agent/subgraphs", params={"recurse": "perhaps"}), 422)
    detail(http.post(f"/assistants/{unknown}/versions", json={}), 404)
    detail(http.post("/assistants/agent/versions", json={"limit": 0}), 422)
    assert "version" in detail(http.post("/assistants/agent/latest", json={}), 422)
    detail(http.post("/assistants/agent/latest", json={"version": "one"}), 422)
    detail(http.post(f"/assistants/{unknown}/latest", json={"version": 1}), 404)


def test_remote_graph_get_graph(api_server, sync_client):
    drawn = RemoteGraph("agent", url=api_server.url).get_graph()
    assert {"__start__", "model", "tools", "__end__"} <= set(drawn.nodes)
    assert any(edge.source == "model" and edge.target == "tools" and edge.conditional for edge in drawn.edges)
    created = sync_client.assistants.create("slow", name=f"remote {tag()}")
    slow = RemoteGraph(created["assistant_id"], url=api_server.url).get_graph(xray=1)
    assert set(slow.nodes) == {"__start__", "work", "__end__"}


async def test_subgraphs_xray_and_context_schema_of_a_nested_graph(server_factory, tmp_path):
    (tmp_path / "nested.py").write_text(textwrap.dedent(NESTED_GRAPH))
    config = tmp_path / "config.yml"
    config.write_text("graphs:\n  nested: ./nested.py:graph\n")
    server = server_factory(env={"CONFIG_FILE": str(config)}).start()
    client = get_client(url=server.url)

    subgraphs = await client.assistants.get_subgraphs("nested")
    assert list(subgraphs) == ["inner"]
    assert "text" in subgraphs["inner"]["state_schema"]["properties"]
    assert "text" in subgraphs["inner"]["input_schema"]["properties"]
    assert await client.assistants.get_subgraphs("nested", namespace="inner") == subgraphs
    assert await client.assistants.get_subgraphs("nested", namespace="other") == {}

    flat = await client.assistants.get_graph("nested")
    assert {node["id"] for node in flat["nodes"]} == {"__start__", "inner", "__end__"}
    deep = await client.assistants.get_graph("nested", xray=True)
    assert "inner:shout" in {node["id"] for node in deep["nodes"]}

    schemas = await client.assistants.get_schemas("nested")
    assert schemas["context_schema"]["properties"]["style"]["default"] == "plain"
    assert schemas["config_schema"]["properties"]["style"]["default"] == "plain"
    assert "text" in schemas["input_schema"]["properties"]
    assert server.stop() == 0


@pytest.mark.postgres
def test_assistants_survive_a_restart_on_postgres(server_factory, pg_url):
    env = {"CONFIG_FILE": str(TEST_CONFIG), "DATABASE_URL": pg_url}
    first = server_factory(env=env).start()
    client = get_sync_client(url=first.url)
    marker = tag()
    created = client.assistants.create("slow", name=f"durable {marker}", metadata={"test": marker})
    patched = client.assistants.update(created["assistant_id"], metadata={"round": 2})
    defaults = client.assistants.search(metadata=SYSTEM, limit=100)
    assert first.stop() == 0

    second = server_factory(env=env).start()
    client = get_sync_client(url=second.url)
    assert client.assistants.get(created["assistant_id"]) == patched
    assert [v["version"] for v in client.assistants.get_versions(created["assistant_id"])] == [2, 1]
    assert client.assistants.search(metadata={"test": marker}) == [patched]
    assert client.assistants.search(metadata=SYSTEM, limit=100) == defaults  # not duplicated
    assert second.stop() == 0


@pytest.mark.postgres
def test_deleted_default_assistant_returns_at_the_next_start(server_factory, fresh_database):
    env = {"CONFIG_FILE": str(TEST_CONFIG), "DATABASE_URL": database_url(fresh_database)}
    first = server_factory(env=env).start()
    client = get_sync_client(url=first.url)
    original = client.assistants.get("slow")
    client.assistants.delete("slow")  # allowed, as in the LangGraph API
    with pytest.raises(httpx.HTTPStatusError) as gone:
        client.assistants.get("slow")
    assert sdk_status(gone) == 404
    assert client.assistants.count(graph_id="slow", metadata=SYSTEM) == 0
    assert first.stop() == 0

    second = server_factory(env=env).start()
    client = get_sync_client(url=second.url)
    back = client.assistants.get("slow")
    assert back["assistant_id"] == original["assistant_id"] and back["metadata"] == SYSTEM and back["version"] == 1
    assert second.stop() == 0
