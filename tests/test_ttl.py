"""TTLs from langgraph.json: store items that expire in memory (as on Postgres), and threads whose
older checkpoints are pruned (checkpointer.ttl strategy keep_latest) on memory and on Postgres."""

from __future__ import annotations

import operator
from datetime import timedelta
from typing import Annotated, TypedDict

import psycopg
import pytest
from langgraph.graph import START, StateGraph

from src.containers import Container, provide
from src.services.persistence import MemorySaver
from src.services.store.memory import ExpiringMemoryStore
from src.services.threads.repository import MemoryTables, now
from src.services.threads.retention import MemoryThreadRetention, ThreadSweeper, ThreadTTL
from src.settings import load_settings
from tests.conftest import TEST_CONFIG, database_url
from tests.inprocess import InProcessApi

KEEP_LATEST = ThreadTTL(strategy="keep_latest", default_ttl=1.0, sweep_interval_minutes=5.0, sweep_limit=100)


class Steps(TypedDict):
    steps: Annotated[list[str], operator.add]


def counter_graph(saver: MemorySaver):
    builder = StateGraph(Steps)
    builder.add_node("work", lambda state: {"steps": ["x"]})
    builder.add_edge(START, "work")
    return builder.compile(checkpointer=saver)


async def test_memory_store_items_expire_and_reads_refresh_them():
    clock = [1000.0]
    store = ExpiringMemoryStore(ttl={"refresh_on_read": True, "default_ttl": 1.0}, clock=lambda: clock[0])
    await store.aput(("docs",), "default", {"v": 1})  # the default TTL: a minute
    await store.aput(("docs",), "short", {"v": 2}, ttl=0.5)
    await store.aput(("docs",), "forever", {"v": 3}, ttl=None)
    clock[0] += 25
    assert await store.aget(("docs",), "short") is not None  # read: 30 s more from now
    clock[0] += 25
    assert await store.aget(("docs",), "short", refresh_ttl=False) is not None
    clock[0] += 15  # 65 s in: the default one is gone, the refreshed one too (55 s > 30 s)
    assert sorted(item.key for item in await store.asearch(("docs",))) == ["forever"]
    await store.aput(("docs",), "again", {"v": 4}, ttl=0.1)
    clock[0] += 10
    assert store.sweep() == 1
    assert [item.key for item in await store.asearch(("docs",))] == ["forever"]


async def test_keep_latest_prunes_memory_threads_once():
    saver, tables = MemorySaver(), MemoryTables()
    graph = counter_graph(saver)
    config = {"configurable": {"thread_id": "t1"}}
    for _ in range(3):
        await graph.ainvoke({"steps": []}, config)
    before = (await graph.aget_state(config)).values
    assert len(saver.storage["t1"][""]) > 2
    stamp = now() - timedelta(minutes=5)
    tables.threads["t1"] = {
        "thread_id": "t1",
        "created_at": stamp,
        "updated_at": stamp,
        "metadata": {},
        "status": "idle",
        "values": None,
        "interrupts": {},
        "error": None,
    }
    sweeper = ThreadSweeper(MemoryThreadRetention(tables, saver), saver, KEEP_LATEST)
    assert await sweeper.sweep() == 1
    assert len(saver.storage["t1"][""]) == 1
    assert (await graph.aget_state(config)).values == before == {"steps": ["x", "x", "x"]}
    used = {key for key in saver.blobs if key[0] == "t1"}
    latest = saver.serde.loads_typed(next(iter(saver.storage["t1"][""].values()))[0])
    assert used == {("t1", "", channel, version) for channel, version in latest["channel_versions"].items()}
    assert await sweeper.sweep() == 0  # a pruned thread is not chosen again
    # The thread goes on from its latest checkpoint.
    await graph.ainvoke({"steps": []}, config)
    assert (await graph.aget_state(config)).values == {"steps": ["x", "x", "x", "x"]}


@pytest.mark.postgres
async def test_keep_latest_prunes_postgres_threads_once(fresh_database):
    url = database_url(fresh_database)
    container = Container()
    container.config.from_dict(load_settings(TEST_CONFIG, environ={"DATABASE_URL": url}))
    api = await InProcessApi(container).start()
    try:
        thread = await api.call("POST", "/threads", {})
        body = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0}}}
        for _ in range(3):
            await api.call("POST", f"/threads/{thread['thread_id']}/runs/wait", body)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE agent_server.threads SET updated_at = now() - interval '5 minutes' WHERE thread_id = %s",
                (thread["thread_id"],),
            )
        sweeper = ThreadSweeper(
            await provide(container.thread_retention), await provide(container.checkpointer), KEEP_LATEST
        )
        assert await sweeper.sweep() == 1
        with psycopg.connect(url) as conn:
            count = conn.execute(
                "SELECT count(*) FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = ''", (thread["thread_id"],)
            ).fetchone()
        assert count == (1,)
        state = await api.call("GET", f"/threads/{thread['thread_id']}/state")
        assert state["values"] == {"steps": ["step 1", "step 2", "step 3"]}
        assert await sweeper.sweep() == 0
    finally:
        await api.stop()
