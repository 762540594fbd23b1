"""The Postgres resources on a real server: set-up, RLS, locking, fast failure, clean shutdown."""

import asyncio
import socket
import time
import uuid

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Json, Jsonb
from psycopg_pool import AsyncConnectionPool

from src.containers import Container, provide, shutdown
from src.services.database import DatabaseUnavailable, IdleCheck, create_pool, probe, unavailable_cause
from src.services.persistence import InlineSerdeSaver, ThreadShardedSaver
from src.services.schema import MIGRATIONS
from src.settings import load_settings
from tests.conftest import (
    TEST_CONFIG,
    admin_connect,
    connections_after_close,
    database_url,
    free_port,
    server_connections,
)
from tests.inprocess import InProcessApi, Runs, Threads

pytestmark = pytest.mark.postgres

LANGGRAPH_TABLES = {
    "checkpoints",
    "checkpoint_blobs",
    "checkpoint_writes",
    "checkpoint_migrations",
    "store",
    "store_migrations",
}
OWN_TABLES = {"threads", "runs", "schema_migrations"}
TABLES_SQL = (
    "SELECT c.relname, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname IN ('public', 'agent_server')"
)


def make_container(url: str, **env: str) -> Container:
    container = Container()
    settings = load_settings(TEST_CONFIG, environ={"DATABASE_URL": url, **env})
    container.config.from_dict(settings)
    return container


def user(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def test_setup_creates_every_table_with_rls_and_is_idempotent(fresh_database):
    url = database_url(fresh_database)
    for _ in range(2):  # the second start finds everything in place
        container = make_container(url)
        await provide(container.application)
        await shutdown(container)
    with psycopg.connect(url) as conn:
        tables = dict(conn.execute(TABLES_SQL).fetchall())
        versions = conn.execute("SELECT version FROM agent_server.schema_migrations ORDER BY 1").fetchall()
        checkpoint_versions = conn.execute("SELECT count(DISTINCT v) = count(*) FROM checkpoint_migrations").fetchone()
    assert LANGGRAPH_TABLES | OWN_TABLES <= set(tables)
    assert all(tables.values()), f"tables without row-level security: {[t for t, on in tables.items() if not on]}"
    assert [v for (v,) in versions] == list(range(len(MIGRATIONS)))
    assert checkpoint_versions == (True,)


async def test_concurrent_setups_on_a_fresh_database_both_succeed(fresh_database):
    url = database_url(fresh_database)
    first, second = make_container(url), make_container(url)
    await asyncio.gather(provide(first.application), provide(second.application))
    await asyncio.gather(shutdown(first), shutdown(second))
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM agent_server.schema_migrations").fetchone() == (len(MIGRATIONS),)


async def test_non_owner_role_sees_no_rows_and_shutdown_leaves_no_connection(fresh_database):
    url = database_url(fresh_database)
    container = make_container(url)
    await provide(container.application)
    api = await InProcessApi(container).start()
    threads, runs = Threads(api), Runs(api)
    thread = await threads.create({})
    await runs.wait(thread["thread_id"], {"assistant_id": "agent", "input": user("remember that I like tea")})
    assert server_connections(fresh_database) > 0
    await shutdown(container)
    assert connections_after_close(fresh_database) == 0

    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA agent_server TO {}").format(sql.Identifier(role)))
        for schema in ("public", "agent_server"):
            conn.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(role)
                )
            )
        owner_counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("checkpoints", "store")}
    try:
        assert all(owner_counts.values()), owner_counts
        with psycopg.connect(database_url(fresh_database, user=role)) as reader:
            for table in ("checkpoints", "checkpoint_writes", "store", "agent_server.threads", "agent_server.runs"):
                assert reader.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def test_state_and_threads_survive_a_restart(pg_url):
    first = make_container(pg_url)
    await provide(first.application)
    api = await InProcessApi(first).start()
    threads, runs = Threads(api), Runs(api)
    thread_id = (await threads.create({"metadata": {"k": "v"}}))["thread_id"]
    await runs.wait(thread_id, {"assistant_id": "agent", "input": user("my name is Ada")})
    await shutdown(first)

    second = make_container(pg_url)
    await provide(second.application)
    api = await InProcessApi(second).start()
    threads, runs = Threads(api), Runs(api)
    thread = await threads.get(thread_id)
    assert thread["metadata"]["k"] == "v" and thread["status"] == "idle"
    result = await runs.wait(thread_id, {"assistant_id": "agent", "input": user("what is my name?")})
    assert result["messages"][-1]["content"] == "Your name is Ada."
    await shutdown(second)


def new_run(thread_id: str, strategy: str = "enqueue") -> dict:
    return {
        "run_id": str(uuid.uuid4()),
        "thread_id": thread_id,
        "assistant_id": "agent",
        "metadata": {},
        "kwargs": {},
        "multitask_strategy": strategy,
        "request": {"assistant_id": "agent", "graph_id": "agent"},
    }


async def test_the_queue_hands_a_run_whose_lease_lapsed_to_another_process(pg_url):
    container = make_container(pg_url)
    threads, runs = await provide(container.thread_repository), await provide(container.run_repository)
    thread_id = str(uuid.uuid4())
    await threads.create_thread(thread_id, {})
    # Process A starts a run, then dies; its second run on the thread waits behind it.
    first = await runs.create_run(new_run(thread_id), "process-a", 0.3, {"graph_id": "agent"})
    second = await runs.create_run(new_run(thread_id), "process-a", 0.3, {"graph_id": "agent"})
    assert (first["status"], first["attempt"], second["status"]) == ("running", 1, "pending")
    assert await runs.claim("process-b", 5.0) is None  # one run per thread at a time
    assert await runs.sweep(3, "sweeper", 5.0) == []  # the lease still holds
    await asyncio.sleep(0.4)
    swept = await runs.sweep(3, "sweeper", 5.0)
    assert [(run.run_id, run.status) for run in swept] == [(first["run_id"], "pending")]
    assert (await threads.get_thread(thread_id))["status"] == "busy"
    # B takes the run A left, before the one queued after it.
    taken = await runs.claim("process-b", 5.0)
    assert (taken["run_id"], taken["owner"], taken["attempt"]) == (first["run_id"], "process-b", 2)
    # A, back from a freeze, owns nothing and cannot write the run's end.
    assert await runs.renew("process-a", 5.0) == {}
    assert not await runs.finish_run(first["run_id"], "process-a", "success", "idle")
    assert await runs.renew("process-b", 5.0) == {first["run_id"]: None}
    assert await runs.finish_run(first["run_id"], "process-b", "success", "idle")
    assert (await runs.get_run(first["run_id"]))["status"] == "success"
    assert (await runs.claim("process-b", 5.0))["run_id"] == second["run_id"]
    await shutdown(container)


async def test_a_run_cut_short_max_attempts_times_ends_in_error(pg_url):
    container = make_container(pg_url)
    threads, runs = await provide(container.thread_repository), await provide(container.run_repository)
    thread_id = str(uuid.uuid4())
    await threads.create_thread(thread_id, {})
    run = await runs.create_run(new_run(thread_id), "process-a", 0.05, {"graph_id": "agent"})
    for attempt in (2, 3):
        await asyncio.sleep(0.1)
        assert [swept.status for swept in await runs.sweep(3, "sweeper", 5.0)] == ["pending"]
        taken = await runs.claim(f"process-{attempt}", 0.05)
        assert taken["attempt"] == attempt
    await asyncio.sleep(0.1)
    assert [swept.status for swept in await runs.sweep(3, "sweeper", 5.0)] == ["error"]
    record = await runs.get_run(run["run_id"])
    assert record["status"] == "error" and "cut short 3 times" in record["error"] and record["owner"] is None
    thread = await threads.get_thread(thread_id)
    assert thread["status"] == "error" and "cut short 3 times" in thread["error"]
    await shutdown(container)


async def test_a_run_whose_rollback_was_asked_is_swept_to_the_sweeper_which_rolls_it_back(pg_url):
    container = make_container(pg_url)
    threads, runs = await provide(container.thread_repository), await provide(container.run_repository)
    thread_id = str(uuid.uuid4())
    await threads.create_thread(thread_id, {})
    run = await runs.create_run(new_run(thread_id), "process-a", 0.05, {"graph_id": "agent"})
    queued = await runs.create_run(new_run(thread_id), "process-a", 0.05, {"graph_id": "agent"})
    assert await runs.ask_cancel(run["run_id"], "rollback") == "process-a"
    assert await runs.renew("process-a", 0.05) == {run["run_id"]: "rollback"}  # heard without a message
    await asyncio.sleep(0.1)  # process A died
    swept = await runs.sweep(3, "sweeper", 5.0)
    assert [(s.run_id, s.thread_id, s.status) for s in swept] == [(run["run_id"], thread_id, "rollback")]
    # Held by the sweeper (its checkpoints are not deleted yet): the queued run may not start.
    record = await runs.get_run(run["run_id"])
    assert (record["status"], record["owner"]) == ("running", "sweeper")
    assert (await threads.get_thread(thread_id))["status"] == "busy"
    assert await runs.claim("process-b", 5.0) is None
    assert not await runs.roll_back(run["run_id"], "process-a")
    assert await runs.roll_back(run["run_id"], "sweeper")
    assert await runs.get_run(run["run_id"]) is None
    assert (await threads.get_thread(thread_id))["status"] == "idle"
    assert (await runs.claim("process-b", 5.0))["run_id"] == queued["run_id"]
    await shutdown(container)


async def test_a_queued_run_whose_request_cannot_be_read_ends_in_error_and_frees_its_slot(pg_url):
    container = make_container(pg_url, RUNS_MAX_CONCURRENCY="1")
    await provide(container.application)
    threads, runs = await provide(container.thread_repository), await provide(container.run_repository)
    thread_id = str(uuid.uuid4())
    await threads.create_thread(thread_id, {})
    damaged = await runs.create_run({**new_run(thread_id), "request": {"written by": "another version"}}, None, 5.0, {})
    await (await provide(container.run_notifier)).send({"kind": "queued"})
    deadline = time.monotonic() + 10
    while (record := await runs.get_run(damaged["run_id"]))["status"] != "error":
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.05)
    assert "stored request cannot be read" in record["error"]
    # Its slot (the only one) was given back: the next run executes.
    api = await InProcessApi(container).start()
    result = await Runs(api).wait(thread_id, {"assistant_id": "agent", "input": user("my name is Ada")})
    assert result["messages"][-1]["content"] == "Nice to meet you, Ada!"
    await shutdown(container)


async def test_health_reports_503_while_postgres_refuses_and_recovers(fresh_database):
    url = f"{database_url(fresh_database)}?password=s3cret-pw"  # trust auth: ignored, and never shown
    container = make_container(url, DATABASE_POOL_MIN_SIZE="1")
    await provide(container.application)
    health = await provide(container.health_service)
    ok, report = await health.health()
    assert ok and report["pool"]["pool_max"] == 10
    with admin_connect() as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(fresh_database)))
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (fresh_database,))
    try:
        ok, report = await health.health()
        assert not ok and report["status"] == "unavailable"
        assert "postgres" in report["reason"] and "s3cret-pw" not in str(report)
    finally:
        with admin_connect() as admin:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(fresh_database)))
    deadline = time.monotonic() + 10
    while not (await health.health())[0]:
        assert time.monotonic() < deadline, "health did not recover"
        await asyncio.sleep(0.2)
    await shutdown(container)


@pytest.mark.parametrize(
    ("make_url", "reason"),
    [
        (lambda db: f"postgresql://postgres:pw@127.0.0.1:{free_port()}/{db}", "Connection refused"),
        (lambda db: "postgresql://postgres:pw@127.0.0.1:5432/no_such_database_here", "does not exist"),
        (
            lambda db: f"postgresql://no_such_role_here:pw@127.0.0.1:5432/{db}",
            'role "no_such_role_here" does not exist',
        ),
    ],
)
async def test_probe_fails_fast_with_postgres_reason_and_no_password(pg_database, make_url, reason):
    began = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught:
        await probe(make_url(pg_database), timeout=5.0)
    assert time.monotonic() - began < 1.0
    message = str(caught.value)
    assert reason in message and "\n" not in message
    assert ":pw@" not in message and ":***@" in message


async def test_probe_gives_up_on_a_silent_host_within_the_timeout():
    with socket.socket() as silent:  # accepts TCP connections, never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        began = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="no answer within 1 s"):
            await probe(f"postgresql://postgres@127.0.0.1:{port}/x", timeout=1.0)
        assert time.monotonic() - began < 2.0


async def test_sharded_saver_keeps_each_thread_on_one_shard_and_runs_threads_in_parallel(pg_url):
    container = make_container(pg_url, DATABASE_POOL_MAX_SIZE="4")
    await provide(container.application)
    saver = await provide(container.checkpointer)
    assert isinstance(saver, ThreadShardedSaver) and len(saver.shards) == 4
    ids = [str(uuid.uuid4()) for _ in range(16)]
    assert all(saver._for_thread(t) is saver._for_thread(t) for t in ids)
    assert len({id(saver._for_thread(t)) for t in ids}) > 1

    api = await InProcessApi(container).start()
    threads, runs = Threads(api), Runs(api)
    slow = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0.0}}}
    created = [(await threads.create({}))["thread_id"] for _ in range(8)]
    for _ in range(2):
        results = await asyncio.gather(*(runs.wait(t, slow) for t in created))
    assert all(result["steps"] == ["step 1", "step 2"] for result in results)
    await shutdown(container)


SAVER_ROWS = {
    "checkpoints": "SELECT * FROM checkpoints WHERE thread_id = %s ORDER BY checkpoint_id",
    "checkpoint_blobs": "SELECT * FROM checkpoint_blobs WHERE thread_id = %s ORDER BY channel, version",
    "checkpoint_writes": "SELECT * FROM checkpoint_writes WHERE thread_id = %s ORDER BY task_id, idx",
}


async def test_inline_serde_saver_writes_exactly_the_rows_of_the_stock_saver(pg_url):
    # InlineSerdeSaver re-implements aput/aput_writes without the thread hop: any
    # difference from the stock saver (now or after an upgrade) shows up here.
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {
        "text": "inline",
        "count": 3,
        "nothing": None,
        "messages": [{"role": "user", "content": "hi"}],
        "snapshot": _DeltaSnapshot(["a", "b"]),
    }
    versions = {"text": "1", "count": "2", "messages": "3", "snapshot": "4", "unchanged": "5"}
    checkpoint["channel_versions"] = dict(versions)
    metadata = {"source": "loop", "step": 1, "run_id": "r-1", "parents": {}}
    writes = [("messages", [{"role": "ai", "content": "yo"}]), ("text", "w")]
    special = [("__error__", "boom"), ("__interrupt__", {"value": 1})]

    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True, row_factory=dict_row) as conn:
        stock, inline = AsyncPostgresSaver(conn), InlineSerdeSaver(conn)
        await stock.setup()
        rows, returned = [], []
        for saver in (stock, inline):
            thread_id = str(uuid.uuid4())
            parent = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": "parent-1"}}
            saved = await saver.aput(parent, checkpoint, metadata, versions)
            await saver.aput_writes(saved, writes, "task-1", "~path")
            await saver.aput_writes(saved, special, "task-2")
            await saver.aput_writes(saved, [("__error__", "boom again")], "task-2")
            # A special channel twice in one call (replaced: the last stays), mixed with a
            # plain channel (kept: the first stays), and nothing at all.
            await saver.aput_writes(saved, [("__interrupt__", "first"), ("__interrupt__", "last")], "task-3")
            await saver.aput_writes(saved, [("__error__", "one"), ("text", "t"), ("__error__", "two")], "task-4")
            await saver.aput_writes(saved, [], "task-5")
            # A checkpoint with no blobs at all, child of the first one.
            bare = {**checkpoint, "id": "child-1", "channel_values": {"text": "only inline"}}
            child = await saver.aput(saved, bare, {**metadata, "step": 2}, {"text": "6"})
            returned.append({**child["configurable"], "thread_id": None})
            returned.append({**saved["configurable"], "thread_id": None})
            found = {}
            for table, query in SAVER_ROWS.items():
                cursor = await conn.execute(query, (thread_id,))
                found[table] = [{**row, "thread_id": None} for row in await cursor.fetchall()]
            rows.append(found)
            assert (await saver.aget_tuple(saved)).checkpoint["channel_values"]["messages"] == [
                {"role": "user", "content": "hi"}
            ]
            # Read back through either saver: the same tuples (InlineSerdeSaver redoes the
            # row-to-tuple step), latest, by id and listed.
            latest = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
            for config in (latest, saved, child):
                assert await inline.aget_tuple(config) == await stock.aget_tuple(config)
            assert [t async for t in inline.alist(latest)] == [t async for t in stock.alist(latest)]
            assert len((await inline.aget_tuple(saved)).pending_writes) == 7
    assert returned[:2] == returned[2:]
    assert rows[0] == rows[1]
    assert [len(rows[0][table]) for table in SAVER_ROWS] == [2, 2, 7]
    interrupt = [row for row in rows[0]["checkpoint_writes"] if row["task_id"] == "task-3"]
    assert len(interrupt) == 1 and stock.serde.loads_typed((interrupt[0]["type"], interrupt[0]["blob"])) == "last"


async def backend_pid(pool) -> int:
    async with pool.connection() as conn:
        return (await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone())["pid"]


def terminate(pid: int) -> None:
    """Terminate a backend and wait until it is gone (its last message and the end of the connection sent)."""
    with admin_connect() as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone() == (True,)
    time.sleep(0.05)  # through the loopback interface into the client's socket


async def test_pool_pings_only_connections_that_sat_idle_or_heard_from_the_server(pg_url, monkeypatch):
    pings = []
    stock_check = AsyncConnectionPool.check_connection

    async def counted(conn):
        pings.append(conn.info.backend_pid)
        await stock_check(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted))
    pool = create_pool(pg_url, min_size=1, max_size=1, timeout=5.0, check_idle=0.3)
    await pool.open(wait=True)
    try:
        first = await backend_pid(pool)  # never handed back yet: pinged
        # Handed back a moment ago and nothing heard from the server since: no ping.
        assert await backend_pid(pool) == first and pings == [first]
        # Terminated while it sat in the pool: the server's last message is there, so it
        # is pinged, found dead and replaced; no query meets it.
        terminate(first)
        second = await backend_pid(pool)
        assert second != first and first in pings[1:]
        # Idle past the threshold: pinged although nothing arrived.
        await asyncio.sleep(0.4)
        pings.clear()
        assert await backend_pid(pool) == second and pings == [second]
        # Broken while in use: the one query that meets it fails (503 in the web layer), and
        # the pool discards it when it comes back.
        with pytest.raises(psycopg.OperationalError) as caught:
            async with pool.connection() as conn:
                terminate(conn.info.backend_pid)
                await conn.execute("SELECT 1")
        assert unavailable_cause(caught.value) is caught.value
        assert await backend_pid(pool) not in (first, second)
    finally:
        await pool.close()


def test_idle_check_rejects_a_negative_threshold():
    with pytest.raises(ValueError, match="idle must be >= 0 seconds"):
        IdleCheck(-1.0)


async def test_pool_round_trips_json_that_orjson_alone_would_refuse(pg_url):
    pool = create_pool(pg_url, min_size=1, max_size=1, timeout=5.0)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            value = {"big": 2**70, 1: "non-string key", "text": "é", "nested": [1.5, None, True]}
            cursor = await conn.execute("SELECT %s::jsonb AS doc, %s::json AS plain", (Jsonb(value), Json(value)))
            row = await cursor.fetchone()
        expected = {"big": 2**70, "1": "non-string key", "text": "é", "nested": [1.5, None, True]}
        assert row["doc"] == expected and row["plain"] == expected
    finally:
        await pool.close()


@pytest.mark.parametrize("backend", ["memory", "postgres"])
async def test_a_run_inserted_started_is_running_and_its_thread_busy(pg_url, backend):
    container = make_container(pg_url) if backend == "postgres" else Container()
    if backend == "memory":
        container.config.from_dict(load_settings(TEST_CONFIG, environ={}))
    await provide(container.application)
    threads, runs = await provide(container.thread_repository), await provide(container.run_repository)
    thread_id = str(uuid.uuid4())
    await threads.create_thread(thread_id, {"owner": "me"})
    run = new_run(thread_id)
    created = await runs.create_run(run, "me", 5.0, {"graph_id": "agent"})
    assert (created["status"], created["owner"], created["attempt"]) == ("running", "me", 1)
    thread = await threads.get_thread(thread_id)
    assert thread["status"] == "busy" and thread["metadata"] == {"owner": "me", "graph_id": "agent"}
    # The thread is taken: the next one waits, whoever sends it.
    queued = await runs.create_run(new_run(thread_id), "someone else", 5.0, {"graph_id": "agent"})
    assert (queued["status"], queued["owner"]) == ("pending", None)
    # No such thread: nothing is written, as for a pending insert.
    missing = {**run, "run_id": str(uuid.uuid4()), "thread_id": str(uuid.uuid4())}
    assert await runs.create_run(missing, "me", 5.0, {"graph_id": "agent"}) is None
    assert await runs.get_run(missing["run_id"]) is None
    await shutdown(container)
