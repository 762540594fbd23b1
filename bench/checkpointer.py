"""Checkpointer throughput: in-process `graph.ainvoke` calls per second, by checkpointer and concurrency.

What it measures: a small deterministic two-node LangGraph graph (no LLM; node `a`
appends "a" to a list, node `b` appends "b") is invoked over and over by N concurrent
workers. Each worker has its own thread_id and calls `ainvoke` on it sequentially, so
N is the number of threads running at once. The figure is completed invocations per
second across all workers, after a warm-up, for each of three checkpointers:

1. `InMemorySaver` - the ceiling: the cost of LangGraph itself, with no database.
2. one plain `AsyncPostgresSaver(pool)` shared by every thread - the obvious design.
3. `ThreadShardedSaver(pool, shards)` - the server's design (src.services.persistence).

Why: `AsyncPostgresSaver` takes one `asyncio.Lock` around every query, even when it
is given a pool, so all the threads sharing one instance queue on that lock and use
one connection at a time however large the pool is. `ThreadShardedSaver` keeps
`shards` savers on the same pool, each with its own lock, and routes each thread (by
a stable hash of its id) to one of them: a thread stays serialised, different threads
run their queries in parallel. This script shows what that buys as concurrency grows.

The Postgres savers run on a throwaway database (created through --admin-url, dropped
WITH (FORCE) at the end, even on error), on a pool built as the server's `init_pool`
builds it, with `shards` = the pool's max size as the server sets it. The checkpoint
tables are emptied before each measurement so that no run inherits another's rows,
and each measurement is checked: every result must be right, and the database must
hold checkpoints of every thread, at least one per completed invocation.

Run from the repository root (the table goes to stdout, progress to stderr):

    .venv/bin/python -m bench.checkpointer [--duration 5] [--warmup 1] [--concurrency 1,8,32] [--pool-size 10]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import psycopg
import uvloop
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from psycopg import sql
from psycopg.rows import dict_row

from bench.common import DEFAULT_ADMIN_URL, concurrency_list, create_database, database_url, drop_database
from src.services.database import Pool, create_pool
from src.services.persistence import ThreadShardedSaver

POOL_TIMEOUT = 30.0
POOL_SAMPLE_INTERVAL = 0.01
CHECKPOINT_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
EXPECTED_ITEMS = ["a", "b"]

MEMORY = "InMemorySaver"
PLAIN = "AsyncPostgresSaver (one shared)"
SHARDED = "ThreadShardedSaver"


# The graph ------------------------------------------------------------------------


class State(TypedDict):
    # No reducer: each invocation's input replaces the list, so the state (and what
    # every checkpoint serialises) stays the same size however many runs a thread has.
    items: list[str]


def node_a(state: State) -> State:
    return {"items": [*state["items"], "a"]}


def node_b(state: State) -> State:
    return {"items": [*state["items"], "b"]}


def build_graph(checkpointer: BaseCheckpointSaver) -> Any:
    builder = StateGraph(State)
    builder.add_node("a", node_a)
    builder.add_node("b", node_b)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder.compile(checkpointer=checkpointer)


# One measurement ------------------------------------------------------------------


@dataclass
class Meter:
    """Invocations completed, in total and inside the measured window."""

    counting: bool = False
    stopping: bool = False
    total: int = 0
    measured: int = 0

    def done(self) -> None:
        self.total += 1
        if self.counting:
            self.measured += 1


async def worker(graph: Any, thread_id: str, meter: Meter) -> None:
    config = {"configurable": {"thread_id": thread_id}}
    while not meter.stopping:
        result = await graph.ainvoke({"items": []}, config)
        if result["items"] != EXPECTED_ITEMS:
            raise RuntimeError(f"thread {thread_id}: expected {EXPECTED_ITEMS}, got {result['items']}")
        meter.done()


async def measure(graph: Any, meter: Meter, label: str, concurrency: int, warmup: float, duration: float) -> float:
    """Run `concurrency` workers; return invocations per second over `duration` after `warmup`."""
    workers = [asyncio.create_task(worker(graph, f"{label}-{i}", meter)) for i in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        meter.counting = True
        start = time.perf_counter()
        await asyncio.sleep(duration)
        meter.counting = False
        elapsed = time.perf_counter() - start
        meter.stopping = True
        await asyncio.gather(*workers)  # the runs in flight finish; they are not counted
    finally:
        meter.stopping = True
        for task in workers:
            task.cancel()
    return meter.measured / elapsed


# Postgres -------------------------------------------------------------------------


async def setup_schema(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        await AsyncPostgresSaver(conn).setup()


async def open_pool(url: str, min_size: int, max_size: int) -> Pool:
    """The server's own pool (`create_pool`), labelled so its sessions can be told apart."""
    pool = create_pool(url, min_size, max_size, POOL_TIMEOUT, application_name="agent-server-bench")
    await pool.open(wait=True, timeout=POOL_TIMEOUT)
    return pool


async def clear_checkpoints(pool: Pool) -> None:
    tables = sql.SQL(", ").join(sql.Identifier(name) for name in CHECKPOINT_TABLES)
    async with pool.connection() as conn:
        await conn.execute(sql.SQL("TRUNCATE {}").format(tables))


async def check_checkpoints(pool: Pool, concurrency: int, meter: Meter) -> int:
    """Fail unless every thread left checkpoints, at least one per invocation; return the row count."""
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) AS n, count(DISTINCT thread_id) AS threads FROM checkpoints")
        row = await cursor.fetchone()
    assert row is not None
    if row["threads"] != concurrency or row["n"] < meter.total:
        raise RuntimeError(
            f"expected checkpoints of {concurrency} threads, at least {meter.total} rows; "
            f"found {row['n']} rows of {row['threads']} threads"
        )
    return row["n"]


async def peak_busy_connections(pool: Pool, meter: Meter) -> int:
    """Sample the pool until the workers stop; the most connections seen checked out at once."""
    peak = 0
    while not meter.stopping:
        stats = pool.get_stats()
        peak = max(peak, stats["pool_size"] - stats["pool_available"])
        await asyncio.sleep(POOL_SAMPLE_INTERVAL)
    return peak


# The run --------------------------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure_saver(
    saver: BaseCheckpointSaver, pool: Pool | None, concurrency: int, args: argparse.Namespace
) -> tuple[float, str]:
    """One figure, for a fresh saver (on empty tables), and a note on what the run used."""
    if pool is not None:
        await clear_checkpoints(pool)
    meter = Meter()
    label = f"{type(saver).__name__}-c{concurrency}"
    sampler = asyncio.create_task(peak_busy_connections(pool, meter)) if pool is not None else None
    wall, cpu = time.perf_counter(), cpu_seconds()
    rate = await measure(build_graph(saver), meter, label, concurrency, args.warmup, args.duration)
    cpu_share = (cpu_seconds() - cpu) / (time.perf_counter() - wall)
    note = f"{meter.total} invocations, this process on CPU {cpu_share:.0%} of the time"
    if pool is None or sampler is None:
        return rate, note
    peak = await sampler
    rows = await check_checkpoints(pool, concurrency, meter)
    return rate, f"{note}, {rows} checkpoint rows, at most {peak} connections busy"


async def run(args: argparse.Namespace, url: str) -> dict[str, dict[int, float]]:
    """Every checkpointer at every concurrency, on one pool; figures by name, then concurrency."""
    await setup_schema(url)
    pool = await open_pool(url, args.pool_min_size, args.pool_size)
    savers: list[tuple[str, Callable[[], BaseCheckpointSaver], Pool | None]] = [
        (MEMORY, InMemorySaver, None),
        (PLAIN, lambda: AsyncPostgresSaver(pool), pool),
        (SHARDED, lambda: ThreadShardedSaver(pool, args.pool_size), pool),
    ]
    results: dict[str, dict[int, float]] = {}
    try:
        for name, make_saver, saver_pool in savers:
            results[name] = {}
            for concurrency in args.concurrency:
                rate, note = await measure_saver(make_saver(), saver_pool, concurrency, args)
                results[name][concurrency] = rate
                print(f"  {name:<32} c={concurrency:<3} {rate:9.1f} inv/s  ({note})", file=sys.stderr, flush=True)
    finally:
        await pool.close()
    return results


# Report ---------------------------------------------------------------------------


def render(results: dict[str, dict[int, float]], concurrencies: Sequence[int], command: str) -> str:
    header = ["checkpointer", *(f"{c} thread{'s' if c > 1 else ''} (inv/s)" for c in concurrencies)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([" --- "] + [" ---: "] * len(concurrencies)) + "|",
    ]
    for name, rates in results.items():
        lines.append("| " + " | ".join([name, *(f"{rates[c]:,.0f}" for c in concurrencies)]) + " |")
    top = max(concurrencies)
    ratio = results[SHARDED][top] / results[PLAIN][top]
    lines += [
        "",
        f"Sharded / plain shared at {top} threads: {ratio:.2f}x",
        "",
        f"Command: `{command}`",
    ]
    return "\n".join(lines)


# Command line ---------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per figure (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds run before measuring (default 1)")
    parser.add_argument(
        "--concurrency", type=concurrency_list, default=[1, 8, 32], help="threads at once (default 1,8,32)"
    )
    parser.add_argument("--pool-size", type=int, default=10, help="pool max size and shard count (default 10)")
    parser.add_argument("--pool-min-size", type=int, default=10, help="pool min size (default 10)")
    parser.add_argument(
        "--admin-url", default=DEFAULT_ADMIN_URL, help=f"creates the database (default {DEFAULT_ADMIN_URL})"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be > 0 and --warmup >= 0")
    if not 1 <= args.pool_min_size <= args.pool_size:
        parser.error("expected 1 <= --pool-min-size <= --pool-size")
    return args


def main() -> None:
    args = parse_args(sys.argv[1:])
    dbname = create_database(args.admin_url, "bench_checkpointer")
    print(f"throwaway database {dbname}", file=sys.stderr)
    try:
        # uvloop, as in the server: Robyn runs its handlers on a uvloop event loop.
        results = uvloop.run(run(args, database_url(args.admin_url, dbname)))
    finally:
        drop_database(args.admin_url, dbname)
        print(f"dropped database {dbname}", file=sys.stderr)
    print(render(results, args.concurrency, shlex.join(sys.orig_argv)))


if __name__ == "__main__":
    main()
