"""The auth matrix: two users, every route of every resource, through langgraph-sdk with per-user headers,
against the real server on memory and on Postgres, with the ready-made module (API keys) and with a user's
module (tests/auth/matrix_auth.py). Each asserts what the other user gets (404, 403, 409) and the exact
rows searches, counts and lists return; a final test checks that no listing shows another user's records.
The LangGraph documentation's own auth file runs unchanged in test_the_documentation_auth_file_works_unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.conftest import ServerProcess, create_database, database_url, drop_database
from tests.test_auth_module import ALICE_KEY, AUTH_CONFIG, BOB_KEY

FAST = {"configurable": {"delay": 0}}
SYSTEM_GRAPHS = ("agent", "slow", "whoami")


@dataclass(frozen=True)
class Profile:
    """An auth module under test, and where its rules differ."""

    name: str
    env: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]
    system_assistants_visible: bool  # the graphs' default assistants, to reads and searches
    bob_may_delete: bool  # matrix_auth.py refuses thread deletes without a permission: 403


PROFILES = {
    "builtin": Profile(
        "builtin",
        {"AUTH_API_KEYS": f"alice:{ALICE_KEY},bob:{BOB_KEY}"},
        {"x-api-key": ALICE_KEY},
        {"x-api-key": BOB_KEY},
        system_assistants_visible=True,
        bob_may_delete=True,
    ),
    "custom": Profile(
        "custom",
        {"AUTH_PATH": "./matrix_auth.py:auth"},
        {"Authorization": "Bearer alice-token"},
        {"Authorization": "Bearer bob-token"},
        system_assistants_visible=False,
        bob_may_delete=False,
    ),
}


@dataclass
class World:
    """One server with its users' clients, and every thread and assistant each of them still owns."""

    server: ServerProcess
    profile: Profile
    alice: LangGraphClient
    bob: LangGraphClient
    threads: dict[str, set[str]] = field(default_factory=lambda: {"alice": set(), "bob": set()})
    assistants: dict[str, set[str]] = field(default_factory=lambda: {"alice": set(), "bob": set()})

    def http(self, user: str) -> httpx.AsyncClient:
        headers = self.profile.alice if user == "alice" else self.profile.bob
        return httpx.AsyncClient(base_url=self.server.url, headers=headers, timeout=30)


@pytest.fixture(scope="module", params=[(b, p) for b in ("memory", "postgres") for p in PROFILES])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    backend, name = request.param
    profile = PROFILES[name]
    env = {"CONFIG_FILE": str(AUTH_CONFIG), **profile.env}
    database = create_database("agent_server_auth") if backend == "postgres" else None
    if database is not None:
        env["DATABASE_URL"] = database_url(database)  # its own: the rows each user sees are known exactly
    server = ServerProcess(env=env).start()
    try:
        yield World(
            server,
            profile,
            client_for(server.url, profile.alice),
            client_for(server.url, profile.bob),
        )
    finally:
        code = server.stop()
        if database is not None:
            drop_database(database)
    assert code == 0, server.output


def client_for(url: str, headers: dict[str, str]) -> LangGraphClient:
    """An SDK client sending `headers` (an x-api-key goes as the SDK's api_key: it sets that header itself)."""
    rest = {name: value for name, value in headers.items() if name != "x-api-key"}
    return get_client(url=url, api_key=headers.get("x-api-key"), headers=rest)


async def status(call: Awaitable[Any]) -> int:
    try:
        await call
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200


async def stream_status(stream: AsyncIterator[Any] | Awaitable[AsyncIterator[Any]]) -> int:
    try:
        if inspect.isawaitable(stream):  # some SDK stream methods are coroutines returning the stream
            stream = await stream
        async for _ in stream:
            pass
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200


def ids(records: list[dict[str, Any]], key: str = "thread_id") -> list[str]:
    return [record[key] for record in records]


async def test_threads(world: World) -> None:
    alice, bob = world.alice, world.bob
    tag = str(uuid.uuid4())
    mine = await alice.threads.create(metadata={"tag": tag, "owner": "bob"})  # an owner it may not choose
    theirs = await bob.threads.create(metadata={"tag": tag})
    ta, tb = mine["thread_id"], theirs["thread_id"]
    world.threads["alice"].add(ta)
    world.threads["bob"].add(tb)
    assert mine["metadata"] == {"tag": tag, "owner": "alice"}
    assert (await alice.threads.get(ta))["thread_id"] == ta
    assert await status(bob.threads.get(ta)) == 404
    # search and count: exactly the caller's rows, whatever the filter asks for
    assert ids(await alice.threads.search(metadata={"tag": tag})) == [ta]
    assert ids(await bob.threads.search(metadata={"tag": tag})) == [tb]
    assert await bob.threads.search(metadata={"owner": "alice"}) == []
    assert ids(await bob.threads.search(ids=[ta, tb])) == [tb]
    assert await alice.threads.count(metadata={"tag": tag}) == 1
    assert await bob.threads.count(metadata={"owner": "alice"}) == 0
    more = [(await alice.threads.create(metadata={"tag": tag, "i": i}))["thread_id"] for i in range(3)]
    world.threads["alice"].update(more)
    page = await alice.threads.search(metadata={"tag": tag}, limit=2, offset=1, sort_by="created_at", sort_order="asc")
    assert ids(page) == more[:2]
    assert await alice.threads.count(metadata={"tag": tag}) == 4
    assert await bob.threads.count(metadata={"tag": tag}) == 1
    # a create over another user's id: 409, whatever if_exists says; over one's own, as without auth
    assert await status(bob.threads.create(thread_id=ta)) == 409
    assert await status(bob.threads.create(thread_id=ta, if_exists="do_nothing")) == 409
    assert (await alice.threads.create(thread_id=ta, if_exists="do_nothing"))["thread_id"] == ta
    # update: another's is not found; one's own keeps its owner
    assert await status(bob.threads.update(ta, metadata={"x": 1})) == 404
    assert (await alice.threads.update(ta, metadata={"owner": "bob", "x": 1}))["metadata"]["owner"] == "alice"
    # state, history, checkpoints, copy, stream: all 404 for the other user
    await alice.runs.wait(ta, "slow", input={}, config=FAST)
    state = await alice.threads.get_state(ta)
    checkpoint_id = state["checkpoint"]["checkpoint_id"]
    assert state["values"] == {"steps": ["step 1"]}
    for call in (
        bob.threads.get_state(ta),
        bob.threads.get_state(ta, checkpoint_id=checkpoint_id),
        bob.threads.get_state(ta, checkpoint={"checkpoint_id": checkpoint_id}),
        bob.threads.get_history(ta),
        bob.threads.update_state(ta, {"steps": ["forged"]}, as_node="work"),
        bob.threads.copy(ta),
    ):
        assert await status(call) == 404
    async with world.http("bob") as http:
        assert (await http.get(f"/threads/{ta}/history")).status_code == 404
        async with http.stream("GET", f"/threads/{ta}/stream") as stream:
            assert stream.status_code == 404
    assert len(await alice.threads.get_history(ta)) >= 2
    copied = await alice.threads.copy(ta)
    assert copied["metadata"]["owner"] == "alice" and await status(bob.threads.get(copied["thread_id"])) == 404
    # delete: another's is not found (or refused before anything is looked up: 403)
    assert await status(bob.threads.delete(ta)) == (404 if world.profile.bob_may_delete else 403)
    await alice.threads.delete(copied["thread_id"])
    assert await status(alice.threads.get(copied["thread_id"])) == 404
    spare = (await bob.threads.create())["thread_id"]
    world.threads["bob"].add(spare)
    if world.profile.bob_may_delete:
        await bob.threads.delete(spare)
        world.threads["bob"].discard(spare)
    else:
        assert await status(bob.threads.delete(spare)) == 403
    assert (await alice.threads.get(ta))["metadata"]["owner"] == "alice"


async def test_runs(world: World) -> None:
    alice, bob = world.alice, world.bob
    ta = (await alice.threads.create())["thread_id"]
    tb = (await bob.threads.create())["thread_id"]
    world.threads["alice"].add(ta)
    world.threads["bob"].add(tb)
    run = await alice.runs.create(ta, "slow", input={}, config=FAST)
    rid = run["run_id"]
    await alice.runs.join(ta, rid)
    # every run route of alice's thread is not found for bob
    for call in (
        bob.runs.create(ta, "slow", input={}, config=FAST),
        bob.runs.wait(ta, "slow", input={}, config=FAST),
        bob.runs.wait(ta, "slow", input={}, config=FAST, if_not_exists="create"),
        bob.runs.list(ta),
        bob.runs.get(ta, rid),
        bob.runs.join(ta, rid),
        bob.runs.cancel(ta, rid),
        bob.runs.get(tb, rid),  # his own thread, her run
    ):
        assert await status(call) == 404
    assert await status(bob.runs.delete(ta, rid)) == (404 if world.profile.bob_may_delete else 403)
    assert await stream_status(bob.runs.stream(ta, "slow", input={}, config=FAST)) == 404
    assert await stream_status(bob.runs.join_stream(ta, rid)) == 404
    assert await stream_status(bob.threads.join_stream(ta)) == 404
    assert ids(await alice.runs.list(ta), "run_id") == [rid]
    assert (await alice.runs.get(ta, rid))["metadata"]["owner"] == "alice"  # the handler stamped the run too
    assert await bob.runs.list(tb) == []
    # bulk cancel cancels only the caller's runs
    slow = await alice.runs.create(ta, "slow", input={}, config={"configurable": {"delay": 3}})
    await bob.runs.cancel_many(status="all")
    await bob.runs.cancel_many(thread_id=ta, run_ids=[slow["run_id"]])
    await asyncio.sleep(0.2)
    assert (await alice.runs.get(ta, slow["run_id"]))["status"] in ("pending", "running")
    await alice.runs.cancel_many(thread_id=ta, run_ids=[slow["run_id"]])
    await alice.runs.join(ta, slow["run_id"])
    assert (await alice.runs.get(ta, slow["run_id"]))["status"] == "interrupted"
    # threads a run creates belong to its creator: stateless (kept), and if_not_exists='create'
    kept = await bob.runs.create(None, "slow", input={}, config=FAST, on_completion="keep")
    await bob.runs.join(kept["thread_id"], kept["run_id"])
    world.threads["bob"].add(kept["thread_id"])
    assert (await bob.threads.get(kept["thread_id"]))["metadata"]["owner"] == "bob"
    assert await status(alice.threads.get(kept["thread_id"])) == 404
    fresh = str(uuid.uuid4())
    await alice.runs.wait(fresh, "slow", input={}, config=FAST, if_not_exists="create")
    world.threads["alice"].add(fresh)
    assert (await alice.threads.get(fresh))["metadata"]["owner"] == "alice"
    assert await status(bob.runs.wait(fresh, "slow", input={}, config=FAST, if_not_exists="create")) == 404
    assert await status(bob.threads.get(fresh)) == 404
    # a stateless run answers its creator only, and leaves no thread behind
    assert (await bob.runs.wait(None, "slow", input={}, config=FAST))["steps"] == ["step 1"]
    # runs on another user's assistant: not found; on a graph's default assistant: allowed
    theirs = await bob.assistants.create("slow")
    world.assistants["bob"].add(theirs["assistant_id"])
    assert await status(alice.runs.wait(ta, theirs["assistant_id"], input={}, config=FAST)) == 404
    assert await status(alice.runs.wait(None, theirs["assistant_id"], input={}, config=FAST)) == 404
    assert (await bob.runs.wait(tb, theirs["assistant_id"], input={}, config=FAST))["steps"] == ["step 1"]
    # alice deletes her run; the run routes of her thread answer her
    await alice.runs.delete(ta, rid)
    assert await status(alice.runs.get(ta, rid)) == 404


async def test_runs_execute_as_their_creator(world: World) -> None:
    who = await world.alice.runs.wait(None, "whoami", input={}, config={"configurable": {"user_id": "bob"}})
    assert who["user_id"] == who["identity_attribute"] == who["server_user"] == "alice"
    assert who["user"]["identity"] == "alice" and who["claimed_user_id"] == "bob"
    expected = ["threads:delete"] if world.profile.name == "custom" else []
    assert who["permissions"] == expected
    for key in ("langgraph_auth_user", "langgraph_auth_user_id", "langgraph_auth_permissions"):
        forged = {"configurable": {key: "bob"}}
        assert await status(world.alice.runs.wait(None, "whoami", input={}, config=forged)) == 422


async def test_assistants(world: World) -> None:
    alice, bob = world.alice, world.bob
    tag = str(uuid.uuid4())
    mine = await alice.assistants.create("slow", metadata={"tag": tag, "owner": "bob"}, name="mine")
    theirs = await bob.assistants.create("slow", metadata={"tag": tag}, name="theirs")
    aa, ba = mine["assistant_id"], theirs["assistant_id"]
    world.assistants["alice"].add(aa)
    world.assistants["bob"].add(ba)
    assert mine["metadata"] == {"tag": tag, "owner": "alice"}
    for call in (
        bob.assistants.get(aa),
        bob.assistants.get_graph(aa),
        bob.assistants.get_schemas(aa),
        bob.assistants.get_subgraphs(aa),
        bob.assistants.get_versions(aa),
        bob.assistants.update(aa, name="taken"),
        bob.assistants.set_latest(aa, 1),
        bob.assistants.delete(aa),
    ):
        assert await status(call) == 404
    assert ids(await alice.assistants.search(metadata={"tag": tag}), "assistant_id") == [aa]
    assert ids(await bob.assistants.search(metadata={"tag": tag}), "assistant_id") == [ba]
    assert await alice.assistants.count(metadata={"tag": tag}) == 1
    assert await bob.assistants.count(metadata={"owner": "alice"}) == 0
    assert await status(bob.assistants.create("slow", assistant_id=aa)) == 409
    assert await status(bob.assistants.create("slow", assistant_id=aa, if_exists="do_nothing")) == 409
    updated = await alice.assistants.update(aa, metadata={"owner": "bob"}, name="renamed")
    assert updated["metadata"]["owner"] == "alice" and updated["version"] == 2
    assert ids(await alice.assistants.get_versions(aa), "version") == [2, 1]
    assert (await alice.assistants.set_latest(aa, 1))["name"] == "mine"
    # the graphs' default assistants: readable by everyone with the ready-made module, hidden (but runnable)
    # with a module that filters every read by owner, as LangGraph's documentation's does
    visible = world.profile.system_assistants_visible
    assert await status(bob.assistants.get("slow")) == (200 if visible else 404)
    listed = await alice.assistants.search(limit=100)
    defaults = sorted(a["graph_id"] for a in listed if a["metadata"].get("created_by") == "system")
    assert defaults == (list(SYSTEM_GRAPHS) if visible else [])
    assert await status(bob.assistants.update("slow", name="mine now")) == 404
    assert await status(bob.assistants.delete("slow")) == 404
    spare = (await alice.assistants.create("slow"))["assistant_id"]
    await alice.assistants.delete(spare)
    assert await status(alice.assistants.get(spare)) == 404


async def wait_for(condition: Any, seconds: float = 15.0) -> Any:
    """Polls the coroutine function `condition` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await condition()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_crons(world: World) -> None:
    alice, bob = world.alice, world.bob
    tag = str(uuid.uuid4())
    ta = (await alice.threads.create())["thread_id"]
    tb = (await bob.threads.create())["thread_id"]
    world.threads["alice"].add(ta)
    world.threads["bob"].add(tb)
    yearly = {"schedule": "0 0 1 1 *", "input": {}, "config": FAST}  # none of these fire during the test
    mine = await alice.crons.create_for_thread(ta, "slow", metadata={"tag": tag, "owner": "bob"}, **yearly)
    mine_stateless = await alice.crons.create("slow", metadata={"tag": tag}, **yearly)
    theirs = await bob.crons.create_for_thread(tb, "slow", metadata={"tag": tag}, **yearly)
    ca, cs, cb = mine["cron_id"], mine_stateless["cron_id"], theirs["cron_id"]
    # the create handler's metadata is what is stored (in the payload too: the runs' metadata); the creator too
    assert mine["metadata"] == {"tag": tag, "owner": "alice"} and mine["user_id"] == "alice"
    assert mine["payload"]["metadata"] == {"tag": tag, "owner": "alice"}
    assert theirs["metadata"] == {"tag": tag, "owner": "bob"} and theirs["user_id"] == "bob"
    # a cron on another user's thread, or on another user's assistant: not found; forged callers: 422
    assert await status(bob.crons.create_for_thread(ta, "slow", **yearly)) == 404
    assistant = (await bob.assistants.create("slow"))["assistant_id"]
    world.assistants["bob"].add(assistant)
    assert await status(alice.crons.create(assistant, **yearly)) == 404
    assert await status(alice.crons.create_for_thread(ta, assistant, **yearly)) == 404
    forged = {**yearly, "config": {"configurable": {"langgraph_auth_user_id": "bob"}}}
    assert await status(alice.crons.create("slow", **forged)) == 422
    # read, update, delete another user's cron: not found (or, delete, refused first: 403)
    async with world.http("bob") as http:
        assert (await http.get(f"/runs/crons/{ca}")).status_code == 404
        assert (await http.get(f"/runs/crons/{cb}")).json()["cron_id"] == cb
    async with world.http("alice") as http:
        assert (await http.get(f"/runs/crons/{ca}")).json()["metadata"]["owner"] == "alice"
    assert await status(bob.crons.update(ca, enabled=False)) == 404
    assert await status(bob.crons.update(cs, metadata={"x": 1})) == 404
    assert await status(bob.crons.delete(ca)) == (404 if world.profile.bob_may_delete else 403)
    # search and count: exactly the caller's rows, whatever the filter asks for
    assert sorted(ids(await alice.crons.search(metadata={"tag": tag}), "cron_id")) == sorted([ca, cs])
    assert ids(await bob.crons.search(metadata={"tag": tag}), "cron_id") == [cb]
    assert await bob.crons.search(metadata={"owner": "alice"}) == []
    assert await bob.crons.search(thread_id=ta) == []
    assert ids(await alice.crons.search(thread_id=ta), "cron_id") == [ca]
    assert ids(await alice.crons.search(metadata={"tag": tag}, limit=1, sort_by="created_at"), "cron_id") == [cs]
    assert await alice.crons.count(metadata={"tag": tag}) == 2
    assert await alice.crons.count(assistant_id="slow", metadata={"tag": tag}) == 2
    assert await bob.crons.count(metadata={"tag": tag}) == 1
    assert await bob.crons.count(thread_id=ta) == 0
    # update one's own: the owner stays
    updated = await alice.crons.update(ca, metadata={"owner": "bob", "x": 1}, enabled=False)
    assert updated["metadata"] == {"tag": tag, "owner": "alice", "x": 1} and updated["enabled"] is False
    assert updated["payload"]["metadata"]["owner"] == "alice"
    # delete one's own (alice may delete with both modules); bob's crons are untouched
    for cron_id in (ca, cs):
        await alice.crons.delete(cron_id)
    assert await alice.crons.count() == 0 and ids(await bob.crons.search(), "cron_id") == [cb]
    if world.profile.bob_may_delete:
        await bob.crons.delete(cb)
    else:
        assert await status(bob.crons.delete(cb)) == 403


async def test_a_crons_runs_execute_as_its_creator(world: World) -> None:
    """Fired by the scheduler, with no request: on her thread and stateless, as alice; bob sees none of it."""
    alice, bob = world.alice, world.bob
    tag = str(uuid.uuid4())
    ta = (await alice.threads.create())["thread_id"]
    world.threads["alice"].add(ta)
    every_second = {"schedule": "* * * * * *", "input": {}, "metadata": {"tag": tag}}
    on_thread = await alice.crons.create_for_thread(ta, "whoami", multitask_strategy="enqueue", **every_second)
    end_time = datetime.now(UTC) + timedelta(seconds=2.5)  # fires once or twice, then no more
    await alice.crons.create("whoami", on_run_completed="keep", end_time=end_time, **every_second)

    async def done_runs() -> list[dict[str, Any]]:
        runs = await alice.runs.list(ta)
        return [run for run in runs if run["status"] == "success"]

    assert await wait_for(done_runs), "the thread cron never fired"
    await alice.crons.delete(on_thread["cron_id"])
    state = await alice.threads.get_state(ta)
    assert state["values"]["user_id"] == state["values"]["identity_attribute"] == "alice"
    assert state["values"]["server_user"] == "alice"
    expected = ["threads:delete"] if world.profile.name == "custom" else []
    assert state["values"]["permissions"] == expected
    assert (await done_runs())[0]["metadata"]["owner"] == "alice"
    # the stateless cron's threads are kept, and belong to alice: visible to her, not to bob
    await asyncio.sleep(max(0.0, (end_time - datetime.now(UTC)).total_seconds()) + 1.0)

    async def kept_threads() -> list[dict[str, Any]]:
        threads = await alice.threads.search(metadata={"tag": tag, "stateless": True}, limit=100)
        return threads if threads and all(t["status"] == "idle" for t in threads) else []

    kept = await wait_for(kept_threads)
    assert kept, "the stateless cron never fired"
    world.threads["alice"].update(ids(kept))
    for thread in kept:
        assert thread["metadata"]["owner"] == "alice" and thread["values"]["user_id"] == "alice"
        assert await status(bob.threads.get(thread["thread_id"])) == 404
    assert await bob.threads.search(metadata={"tag": tag}) == []
    assert await bob.crons.search(metadata={"tag": tag}) == []
    (ended,) = await alice.crons.search(metadata={"tag": tag})
    await alice.crons.delete(ended["cron_id"])


async def test_store(world: World) -> None:
    alice, bob = world.alice, world.bob
    await alice.store.put_item(["notes"], "k", {"v": "alice"})
    await bob.store.put_item(["notes"], "k", {"v": "bob"})
    assert (await alice.store.get_item(["notes"], "k"))["value"] == {"v": "alice"}
    assert (await bob.store.get_item(["notes"], "k"))["value"] == {"v": "bob"}
    found = await alice.store.search_items([])
    assert [(item["namespace"], item["value"]) for item in found["items"]] == [(["alice", "notes"], {"v": "alice"})]
    assert (await bob.store.list_namespaces())["namespaces"] == [["bob", "notes"]]
    # (after the listing: InMemoryStore lists a namespace once it was merely looked up)
    assert await bob.store.get_item(["alice", "notes"], "k") is None  # reaches ("bob", "alice", "notes")
    await bob.store.delete_item(["alice", "notes"], "k")  # his own (absent) copy
    assert (await alice.store.get_item(["notes"], "k"))["value"] == {"v": "alice"}
    await alice.store.delete_item(["notes"], "k")
    assert await alice.store.get_item(["notes"], "k") is None
    assert (await bob.store.get_item(["notes"], "k"))["value"] == {"v": "bob"}


async def test_unauthenticated_requests(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.server.url) as anonymous:
        for path in ("/ok", "/health", "/openapi.json", "/docs"):
            assert (await anonymous.get(path)).status_code == 200, path
        for method, path in (("GET", "/info"), ("POST", "/threads/search"), ("GET", f"/threads/{uuid.uuid4()}")):
            response = await anonymous.request(method, path, json={} if method == "POST" else None)
            assert response.status_code == 401 and response.json()["detail"], path
        wrong = await anonymous.post(
            "/threads/search", json={}, headers={"x-api-key": "x" * 20, "Authorization": "Bearer x"}
        )
        assert wrong.status_code == 401
    async with world.http("alice") as http:
        assert (await http.get("/info")).json()["auth"] == {"enabled": True, "module": world.profile.name}


async def test_no_listing_shows_another_users_records(world: World) -> None:
    """After everything above: each user sees exactly the threads and assistants they still own."""
    for user, client in (("alice", world.alice), ("bob", world.bob)):
        threads = await client.threads.search(limit=1000)
        assert set(ids(threads)) == world.threads[user] and all(t["metadata"]["owner"] == user for t in threads)
        assert await client.threads.count() == len(world.threads[user])
        assistants = [a for a in await client.assistants.search(limit=1000) if a["metadata"].get("owner")]
        assert set(ids(assistants, "assistant_id")) == world.assistants[user]
        assert all(a["metadata"]["owner"] == user for a in assistants)


@pytest.mark.parametrize("backend", ["memory", "postgres"])
async def test_the_documentation_auth_file_works_unchanged(backend: str) -> None:
    env = {"CONFIG_FILE": str(AUTH_CONFIG), "AUTH_PATH": "./docs_auth.py:auth"}
    database = create_database("agent_server_auth") if backend == "postgres" else None
    if database is not None:
        env["DATABASE_URL"] = database_url(database)
    server = ServerProcess(env=env).start()
    try:
        user1 = client_for(server.url, {"Authorization": "Bearer user1-token"})
        user2 = client_for(server.url, {"Authorization": "Bearer user2-token"})
        thread = await user1.threads.create()
        assert thread["metadata"] == {"owner": "user1"}
        result = await user1.runs.wait(
            thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "my name is Ada"}]}
        )
        assert result["messages"][-1]["content"] == "Nice to meet you, Ada!"
        assert await status(user2.threads.get(thread["thread_id"])) == 404
        assert await status(user2.runs.wait(thread["thread_id"], "agent", input={})) == 404
        assert ids(await user1.threads.search()) == [thread["thread_id"]]
        assert await user2.threads.search() == [] and await user2.threads.count() == 0
        async with httpx.AsyncClient(base_url=server.url) as anonymous:
            missing = await anonymous.post("/threads/search", json={})
            assert missing.status_code == 401  # the file's `assert authorization`
            bad = await anonymous.post("/threads/search", json={}, headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 401 and bad.json() == {"detail": "Invalid token"}
    finally:
        code = server.stop()
        if database is not None:
            drop_database(database)
    assert code == 0, server.output
