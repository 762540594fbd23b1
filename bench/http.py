"""HTTP throughput and latency: the real server, driven by LangGraph's own SDK, by backend, processes and concurrency.

What it measures: the server is started as a subprocess (`python -m src.web`, as
tests/conftest.py's `ServerProcess` starts it) once on in-memory persistence and, for
each `--workers` count, on Postgres (a fresh throwaway database each time), with
LOG_LEVEL=WARNING and RUNS_MAX_CONCURRENCY left at its default. With `--workers N` above 1
it is started with WORKERS=N: a supervising process starts N server processes sharing the
port (src/web/supervisor.py), and the clock starts only once all N have said they are ready
(the supervisor closes a worker's ready pipe then: no child left with a pipe open to it).
In-memory persistence lives in one process, so memory is measured with 1 worker only. The
server serves the test graphs of tests/graphs/config.yml as well as the built-in agent. For
each concurrency level N, N clients, each with its own thread created beforehand, loop
`await client.runs.wait(thread_id, GRAPH, ...)` for a fixed duration after a warm-up.
Reported per backend, worker count and level: completed runs per second across all
clients, the p50 and p99 latency of one `runs.wait` call, and the CPU the server, this
client process and everything else on the machine (Postgres included) used, in cores.
When several worker counts were measured, one line per backend, count and level gives the
rate's ratio to the lowest count's.

The cost of one run, over the same measured window, divided by the runs completed in it:
- server CPU ms per run: user + system CPU of every server process, the supervisor and its
  current children (read from /proc/<pid>/stat; a child that died in the window loses its CPU);
- Postgres transactions per run (Postgres only): xact_commit + xact_rollback of the bench
  database in `pg_stat_database`, read through a connection to the admin database (so the
  reading does not count itself). PostgreSQL 15 publishes a backend's counts when it goes
  idle, at most once a second, so a reading lags by up to about a second: both ends are read
  the same way while the clients are running, so the lag cancels out on average (checked
  once against readings taken after 11 s of quiet around a whole 5 s level: 4% apart, the
  latter including the threads' creation and the idle server's lease loop);
- Postgres CPU ms per run: user + system CPU of every process on the machine whose name is
  `postgres` (the postmaster, its background processes and every backend). Approximate: it
  includes any other database's activity (there is none during a bench run on its own
  machine) and a backend that exited in the window loses its CPU. Statements per run would
  need pg_stat_statements, which is not assumed to be installed: not measured.
The levels are measured `--rounds` times over (3 by default, on the same server, each
round on fresh threads) and each level reports its median round, with the range of all
rounds: the cores are shared with Postgres and, on a virtual machine, with the host
("other" includes time the hypervisor stole), so one round alone can land on a busy
moment and read 20% low.

Then, on the idle server, N `client.runs.stream(thread_id, GRAPH, ...)` calls are made
one after another, each on a fresh thread (created before the clock starts), and the
time from the call to the first streamed part (the `metadata` event, which the server
publishes as soon as the run is created, before the graph starts) is reported as p50
and p99 (nearest rank: with 50 streams, p99 is the slowest): the latency a user sees
before anything happens. Five streams before those are not counted.

On Postgres, finally, the time to the first event of a run joined from the same process
and from another one: two single-process servers, A and B, on one more throwaway database.
N times over, each on a fresh thread: `runs.create` on A (the run starts at once, owned by
A), then at once `runs.join_stream(thread_id, run_id)` on A itself ("same process"), and on
another fresh thread the same with the join on B ("other process": B marks the run
watched and notifies A, which writes the run's events from the first to the database for
B to relay; see README "Several processes"). Measured from the join_stream call to its
first part, p50 and p99. These runs use tests/graphs/slow.py with a 0.3 s delay whatever
`--graph` says, so that the run is still executing when the join arrives (the events of an
unwatched run that has ended are not kept for another process). The first part must be the
run's `metadata` event; every joined stream is read to its end: an `error` event fails the
bench at once, and a stream that ends without the run's final values is counted, reported
in the table and makes the bench exit 1 once the tables are printed (the first-event time
stays valid). At the end the database must hold every run successful, exactly the "other
process" ones marked watched. Five of each before those are not timed.

The graph must be deterministic and offline. `agent` (the default) is the built-in
agent with its rule-based offline model: each run adds the user's "hello" and the
reply "You said: hello" to the thread, so a thread's state grows by two messages per
run, and late runs of a long measurement carry (and serialise, checkpoint and return)
a much longer conversation than early ones: the figures include that growth, and the
progress lines say how large the threads grew. `--graph slow` runs tests/graphs/slow.py
with delay 0: one node appending one short string per run, the server's own overhead
with the least graph work. Every result is checked (the reply, or the step count the
thread must have reached), so a figure counts only correct runs; on Postgres the run
records are counted at the end too.

All clients run in this one asyncio process, on uvloop. Each client has its own SDK
client (`get_client`), and so its own httpx connection pool, rather than all sharing
one: the SDK builds its client on `httpx.AsyncHTTPTransport(retries=5)` with httpx's
default limits (max_connections=100, max_keepalive_connections=20). 32 requests at
once fit under 100, but a shared pool closes every connection that comes back while 20
others are idle, so whenever responses bunch up at 32 clients it would reconnect,
measuring TCP set-up instead of the server. With one client each, every simulated user
keeps its one keep-alive connection, as independent users would. With several workers
the kernel picks a worker for each connection (SO_REUSEPORT hashes the client's address
and port), so with few clients the workers' shares can be uneven: the progress lines give
each server process's cores. Note that the SDK JSON-encodes every request and decodes
every response through `run_in_executor` (the default thread pool), a client-side cost
included in every latency here.

The machine's cores are shared by this process, the server and Postgres, so the
figures are for this machine only; the CPU columns show who used them.

Run from the repository root (the tables go to stdout, progress to stderr):

    .venv/bin/python -m bench.http [--duration 10] [--warmup 2] [--concurrency 1,8,32]
        [--backends memory,postgres] [--workers 1] [--graph agent|slow] [--streams 50] [--rounds 3]
        [--admin-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import uvloop
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from bench.common import DEFAULT_ADMIN_URL, concurrency_list, create_database, database_url, drop_database

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "tests" / "graphs" / "config.yml"
BACKENDS = ("memory", "postgres")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0  # the supervisor gives its workers 10 s to stop
STREAM_WARMUP = 5
JOIN_RUN_SECONDS = 0.3  # how long a joined run executes: still running when the join arrives
SERVER_SETTINGS = frozenset(
    {
        "CONFIG_FILE",
        "HOST",
        "PORT",
        "WORKERS",
        "LOG_LEVEL",
        "DATABASE_URL",
        "DATABASE_POOL_MIN_SIZE",
        "DATABASE_POOL_MAX_SIZE",
        "DATABASE_POOL_TIMEOUT",
        "DATABASE_CONNECT_TIMEOUT",
        "RUNS_MAX_CONCURRENCY",
        "WEBHOOKS_ALLOWED_HOSTS",
        "WEBHOOKS_ALLOW_LOOPBACK",
        "MODEL",
        "MODEL_BASE_URL",
        "MODEL_API_KEY",
    }
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# The graphs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What a run sends, and the check that its `runs` -th result on a thread is right."""

    graph: str
    input: dict[str, Any]
    config: dict[str, Any] | None
    check: Callable[[Any, int], str | None]  # (values, runs so far on the thread) -> error or None
    size: Callable[[Any], int]  # how large the thread's state is (for the progress lines)
    unit: str


def check_agent(values: Any, runs: int) -> str | None:
    messages = values.get("messages") if isinstance(values, dict) else None
    if not isinstance(messages, list) or len(messages) != 2 * runs:
        return f"expected {2 * runs} messages, got {len(messages) if isinstance(messages, list) else messages!r}"
    last = messages[-1]
    if last.get("type") != "ai" or last.get("content") != "You said: hello":
        return f"expected the AI reply 'You said: hello', got {last!r}"
    return None


def check_slow(values: Any, runs: int) -> str | None:
    steps = values.get("steps") if isinstance(values, dict) else None
    if not isinstance(steps, list) or len(steps) != runs or steps[-1] != f"step {runs}":
        return f"expected {runs} steps ending with 'step {runs}', got {steps!r}"
    return None


WORKLOADS = {
    "agent": Workload(
        "agent",
        {"messages": [{"role": "user", "content": "hello"}]},
        None,
        check_agent,
        lambda values: len(values["messages"]),
        "messages",
    ),
    "slow": Workload(
        "slow", {"steps": []}, {"configurable": {"delay": 0}}, check_slow, lambda values: len(values["steps"]), "steps"
    ),
}


# Processes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    ppid: int
    name: str  # the kernel's `comm`: "postgres" for every PostgreSQL process
    cpu: float  # user + system CPU seconds, all its threads


def process_table() -> dict[int, Process]:
    """Every process on the machine, read from /proc/<pid>/stat (one that exits meanwhile is left out)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].rpartition(")")
        fields = rest.split()  # from field 3 (state) on: ppid is fields[1], utime and stime fields[11] and [12]
        table[int(entry)] = Process(int(fields[1]), name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return table


# The server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m src.web` on a free port; its output goes to a file, never a pipe that could fill up.

    With `workers` above 1 the process started is the supervisor, and its children serve."""

    def __init__(self, database_url: str | None, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        # Every setting at its default (the offline model, pool sizes, RUNS_MAX_CONCURRENCY) whatever this shell sets.
        base = {k: v for k, v in os.environ.items() if k not in SERVER_SETTINGS}
        self.env = {
            **base,
            "PORT": str(self.port),
            "WORKERS": str(workers),
            "CONFIG_FILE": str(CONFIG_FILE),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **({"DATABASE_URL": database_url} if database_url else {}),
        }
        self.log: IO[str] = tempfile.TemporaryFile("w+")
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "src.web"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,  # the supervisor's only pipes are then its workers' ready pipes
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=1.0).status_code == 200 and self.all_workers_ready():
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        raise RuntimeError(f"server at {self.url} not ready within {READY_TIMEOUT} s:\n{self.output()}")

    def all_workers_ready(self) -> bool:
        """True with one process; with several, once all have started and each has said it is ready.

        The supervisor reads a worker's "ready" from a pipe it closes then (src/web/supervisor.py):
        all of them started and no pipe left open in the supervisor means all are serving."""
        if self.workers == 1:
            return True
        if len(self.pids()) != self.workers + 1:
            return False
        links = []
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                links.append(os.readlink(fd))
            except OSError:
                continue  # closed meanwhile
        return not any(link.startswith("pipe:") for link in links)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pids(self, table: dict[int, Process] | None = None) -> list[int]:
        """The server's processes: the one started, then its children (the workers, when it supervises)."""
        table = process_table() if table is None else table
        return [self.pid, *sorted(pid for pid, process in table.items() if process.ppid == self.pid)]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        """SIGTERM, and fail unless the server exits cleanly (code 0) in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise RuntimeError(f"server ignored SIGTERM for {STOP_TIMEOUT} s:\n{self.output()}") from None
        code = self.process.returncode
        self.process = None
        if code != 0:
            raise RuntimeError(f"server exited with {code}:\n{self.output()}")


# CPU and Postgres accounting ------------------------------------------------------


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent not idle (first line of /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


class PgStats:
    """Transactions of one database from `pg_stat_database`, read over a connection to another one."""

    def __init__(self, admin_url: str, dbname: str) -> None:
        self.admin_url = admin_url
        self.dbname = dbname
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> PgStats:
        self.conn = await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def transactions(self) -> int:
        """xact_commit + xact_rollback as last published (PG15: by each backend when idle, at most once a second)."""
        assert self.conn is not None
        await self.conn.execute("SELECT pg_stat_clear_snapshot()")
        cursor = await self.conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (self.dbname,)
        )
        row = await cursor.fetchone()
        if row is None:
            raise RuntimeError(f"database {self.dbname} is not in pg_stat_database")
        return int(row[0])


@dataclass(frozen=True)
class Sample:
    wall: float
    server: dict[int, float]  # pid -> CPU seconds, the server's processes
    client: float
    machine: float
    postgres: dict[int, float]  # pid -> CPU seconds, every process named postgres
    transactions: int | None


def cpu_since(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU seconds per process of `after`; one that started since counts whole, one that ended is lost."""
    return {pid: seconds - before.get(pid, 0.0) for pid, seconds in after.items()}


@dataclass(frozen=True)
class Usage:
    """What the server, this process, the rest of the machine and Postgres used over a window."""

    seconds: float
    server: dict[int, float]  # CPU seconds per server process, the one started first
    client: float
    other: float  # the machine's busy time less server and client: Postgres, other programs, steal
    postgres: float
    transactions: int | None

    @property
    def cores(self) -> tuple[float, float, float]:
        """(server, client, other) in cores, averaged over the window."""
        return sum(self.server.values()) / self.seconds, self.client / self.seconds, self.other / self.seconds


@dataclass
class Window:
    """Samples taken at both ends of the measured window, the same way at each."""

    server: Server
    pg: PgStats | None
    start: Sample | None = None

    async def sample(self) -> Sample:
        transactions = await self.pg.transactions() if self.pg is not None else None
        table = process_table()
        server = {pid: table[pid].cpu for pid in self.server.pids(table) if pid in table}
        postgres = {pid: process.cpu for pid, process in table.items() if process.name == "postgres"}
        return Sample(time.perf_counter(), server, client_cpu_seconds(), machine_busy_seconds(), postgres, transactions)

    async def begin(self) -> None:
        self.start = await self.sample()

    async def end(self) -> Usage:
        assert self.start is not None
        now, start = await self.sample(), self.start
        server = cpu_since(start.server, now.server)
        client = now.client - start.client
        other = max(now.machine - start.machine - sum(server.values()) - client, 0.0)
        postgres = sum(cpu_since(start.postgres, now.postgres).values())
        transactions = None
        if now.transactions is not None and start.transactions is not None:
            transactions = now.transactions - start.transactions
        return Usage(now.wall - start.wall, server, client, other, postgres, transactions)


# One concurrency level ------------------------------------------------------------


@dataclass
class Meter:
    """Runs completed, in total and inside the measured window, with the measured latencies."""

    counting: bool = False
    stopping: bool = False
    total: int = 0
    latencies: list[float] = field(default_factory=list)
    largest: int = 0


@dataclass
class Level:
    backend: str
    workers: int
    clients: int
    rate: float
    p50: float
    p99: float
    cpu: tuple[float, float, float]  # cores: server, client, other
    server_ms: float  # server CPU ms per run measured
    pg_transactions: float | None  # Postgres transactions per run measured
    pg_ms: float | None  # Postgres CPU ms per run measured
    runs: int
    rates: list[float] = field(default_factory=list)  # every round's rate, when several were run


def median_level(rounds: list[Level]) -> Level:
    """The round with the median rate (the lower middle one for an even count), knowing every rate."""
    chosen = sorted(rounds, key=lambda level: level.rate)[(len(rounds) - 1) // 2]
    return dataclasses.replace(chosen, runs=sum(level.runs for level in rounds), rates=[level.rate for level in rounds])


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)]


def sdk_client(url: str) -> LangGraphClient:
    return get_client(url=url, api_key=None)


async def client_loop(client: LangGraphClient, thread_id: str, workload: Workload, meter: Meter) -> None:
    runs = 0
    while not meter.stopping:
        began = time.perf_counter()
        values = await client.runs.wait(thread_id, workload.graph, input=workload.input, config=workload.config)
        elapsed = time.perf_counter() - began
        runs += 1
        error = workload.check(values, runs)
        if error is not None:
            raise RuntimeError(f"thread {thread_id}, run {runs}: {error}")
        meter.total += 1
        meter.largest = max(meter.largest, workload.size(values))
        if meter.counting:
            meter.latencies.append(elapsed)


def describe_processes(usage: Usage) -> str:
    """The server's cores, split by process when it has several (supervisor first, then each worker)."""
    total = sum(usage.server.values()) / usage.seconds
    if len(usage.server) == 1:
        return f"server {total:.2f}"
    parts = [f"{seconds / usage.seconds:.2f}" for seconds in usage.server.values()]
    return f"server {total:.2f} (supervisor {parts[0]}, workers {'/'.join(parts[1:])})"


async def measure_level(
    server: Server, backend: str, workload: Workload, clients: int, args: argparse.Namespace, pg: PgStats | None
) -> Level:
    """`clients` clients, each looping runs.wait on its own thread; runs/s, latency and cost after the warm-up."""
    sdk = [sdk_client(server.url) for _ in range(clients)]
    meter, window = Meter(), Window(server, pg)
    try:
        threads = [(await client.threads.create())["thread_id"] for client in sdk]
        tasks = [asyncio.create_task(client_loop(c, t, workload, meter)) for c, t in zip(sdk, threads, strict=True)]
        try:
            done, _ = await asyncio.wait(tasks, timeout=args.warmup, return_when=asyncio.FIRST_EXCEPTION)
            await window.begin()
            meter.counting = True
            start = time.perf_counter()
            if not done:
                done, _ = await asyncio.wait(tasks, timeout=args.duration, return_when=asyncio.FIRST_EXCEPTION)
            meter.counting = False
            elapsed = time.perf_counter() - start
            usage = await window.end()  # the clients still running, as at the start
            meter.stopping = True
            await asyncio.gather(*tasks)  # the runs in flight finish (and are checked); they are not counted
        finally:
            meter.stopping = True
            for task in tasks:
                task.cancel()
    finally:
        await asyncio.gather(*(client.aclose() for client in sdk))
    if not meter.latencies:
        raise RuntimeError(f"{backend}, {clients} clients: no run completed in {args.duration} s")
    ms = [value * 1000 for value in meter.latencies]
    runs = len(ms)
    postgres = backend == "postgres"
    level = Level(
        backend,
        server.workers,
        clients,
        runs / elapsed,
        percentile(ms, 50),
        percentile(ms, 99),
        usage.cores,
        sum(usage.server.values()) / runs * 1000,
        usage.transactions / runs if usage.transactions is not None else None,
        usage.postgres / runs * 1000 if postgres else None,
        meter.total,
    )
    tenth = max(runs // 10, 1)  # in completion order: shows how the threads' growing state weighs
    cost = f"server CPU {level.server_ms:.1f} ms/run"
    if level.pg_transactions is not None and level.pg_ms is not None:
        cost += f", Postgres {level.pg_transactions:.1f} transactions and {level.pg_ms:.1f} ms CPU/run"
    _, client_cores, other_cores = usage.cores
    print(
        f"  {backend:<8} w={server.workers} c={clients:<3} {level.rate:8.1f} runs/s  p50 {level.p50:7.1f} ms"
        f"  p99 {level.p99:7.1f} ms  ({meter.total} runs checked; threads grew to {meter.largest} {workload.unit},"
        f" p50 of the first/last tenth {percentile(ms[:tenth], 50):.1f}/{percentile(ms[-tenth:], 50):.1f} ms;"
        f" cores: {describe_processes(usage)}, client {client_cores:.2f}, other {other_cores:.2f}; {cost})",
        file=sys.stderr,
        flush=True,
    )
    return level


# Time to first event --------------------------------------------------------------


async def last_values(parts: AsyncIterator[Any], what: str) -> Any:
    """Read a stream to its end: the data of its last `values` event; RuntimeError on an `error` event."""
    values = None
    async for part in parts:
        if part.event == "error":
            raise RuntimeError(f"{what} failed: {part.data!r}")
        if part.event == "values":
            values = part.data
    return values


async def stream_once(client: LangGraphClient, thread_id: str, workload: Workload) -> float:
    """Seconds from the runs.stream call to its first part; the rest of the stream is read and checked."""
    began = time.perf_counter()
    parts = client.runs.stream(thread_id, workload.graph, input=workload.input, config=workload.config)
    first = await anext(parts)
    elapsed = time.perf_counter() - began
    if first.event != "metadata" or not first.data.get("run_id"):
        raise RuntimeError(f"thread {thread_id}: expected a metadata event first, got {first!r}")
    values = await last_values(parts, f"thread {thread_id}: the run")
    error = workload.check(values, 1)
    if error is not None:
        raise RuntimeError(f"thread {thread_id}, streamed run: {error}")
    return elapsed


async def measure_first_event(server: Server, workload: Workload, count: int) -> list[float]:
    """Milliseconds to the first streamed part of `count` sequential runs, each on a fresh thread."""
    client = sdk_client(server.url)
    try:
        threads = [(await client.threads.create())["thread_id"] for _ in range(STREAM_WARMUP + count)]
        times = [await stream_once(client, thread_id, workload) * 1000 for thread_id in threads]
    finally:
        await client.aclose()
    return times[STREAM_WARMUP:]


JOIN_WORKLOAD = dataclasses.replace(WORKLOADS["slow"], config={"configurable": {"delay": JOIN_RUN_SECONDS}})


async def join_once(creator: LangGraphClient, joiner: LangGraphClient, thread_id: str) -> tuple[float, str | None]:
    """Seconds from a join_stream call on `joiner` to its first part, for a run just created on `creator`.

    The rest of the stream is read: an `error` event fails the bench; a stream that ends
    without the run's final values is returned as the second item, to be counted and reported."""
    run = await creator.runs.create(
        thread_id, JOIN_WORKLOAD.graph, input=JOIN_WORKLOAD.input, config=JOIN_WORKLOAD.config
    )
    began = time.perf_counter()
    parts = joiner.runs.join_stream(thread_id, run["run_id"])
    try:
        first = await anext(parts)
    except httpx.HTTPStatusError as exc:
        raise RuntimeError(
            f"thread {thread_id}: join_stream of run {run['run_id']} answered {exc.response.status_code}"
            f" {exc.response.text!r} (did the run end within {JOIN_RUN_SECONDS} s, before the join?)"
        ) from exc
    elapsed = time.perf_counter() - began
    if first.event != "metadata" or first.data.get("run_id") != run["run_id"]:
        raise RuntimeError(f"thread {thread_id}: expected the run's metadata event first, got {first!r}")
    values = await last_values(parts, f"thread {thread_id}: the joined run")
    error = JOIN_WORKLOAD.check(values, 1)
    return elapsed, None if error is None else f"thread {thread_id}, run {run['run_id']}: {error}"


@dataclass
class JoinTimes:
    """Milliseconds to the first event of join_stream, on the process running the run and on another one,
    and the streams of each that ended without the run's final values."""

    same: list[float]
    other: list[float]
    same_short: list[str]
    other_short: list[str]


async def measure_join(a: Server, b: Server, count: int) -> JoinTimes:
    """`count` runs created on A and joined on A, and as many joined on B, alternately, each on a fresh thread."""
    client_a, client_b = sdk_client(a.url), sdk_client(b.url)
    found: dict[str, list[tuple[float, str | None]]] = {"same": [], "other": []}
    try:
        threads = [(await client_a.threads.create())["thread_id"] for _ in range(2 * (STREAM_WARMUP + count))]
        for index in range(STREAM_WARMUP + count):
            found["same"].append(await join_once(client_a, client_a, threads[2 * index]))
            found["other"].append(await join_once(client_a, client_b, threads[2 * index + 1]))
    finally:
        await asyncio.gather(client_a.aclose(), client_b.aclose())
    same, other = found["same"][STREAM_WARMUP:], found["other"][STREAM_WARMUP:]
    return JoinTimes(
        [seconds * 1000 for seconds, _ in same],
        [seconds * 1000 for seconds, _ in other],
        [short for _, short in found["same"] if short],  # warm-up streams included: a wrong end counts wherever
        [short for _, short in found["other"] if short],
    )


# Postgres -------------------------------------------------------------------------


def check_run_records(url: str, expected: int, watched: int = 0) -> None:
    """Fail unless the database holds `expected` run records, every one a success, `watched` of them
    followed from another process."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM agent_server.runs GROUP BY status").fetchall()
        found_watched = conn.execute("SELECT count(*) FROM agent_server.runs WHERE watched").fetchone()
    found = dict(rows)
    if found != {"success": expected}:
        raise RuntimeError(f"expected {expected} successful run records in Postgres, found {found}")
    if found_watched is None or found_watched[0] != watched:
        raise RuntimeError(f"expected {watched} runs followed from another process, found {found_watched}")
    followed = f", {watched} of them followed from another process" if watched else ""
    print(f"  postgres holds {expected} run records, all successful{followed}", file=sys.stderr, flush=True)


# The run --------------------------------------------------------------------------


def check_backend(server: Server, backend: str, graph: str) -> None:
    info = httpx.get(f"{server.url}/info", timeout=5.0).json()
    if info["persistence"]["backend"] != backend or graph not in info["graphs"]:
        raise RuntimeError(f"expected a {backend} server serving {graph!r}, got {info}")


async def run_backend(
    server: Server, backend: str, args: argparse.Namespace, dbname: str | None
) -> tuple[list[Level], list[float]]:
    workload = WORKLOADS[args.graph]
    label = f"{backend:<8} w={server.workers}"
    rounds: list[list[Level]] = []
    async with contextlib.AsyncExitStack() as stack:
        pg = await stack.enter_async_context(PgStats(args.admin_url, dbname)) if dbname else None
        for number in range(args.rounds):
            if args.rounds > 1:
                print(f"  round {number + 1} of {args.rounds}", file=sys.stderr, flush=True)
            rounds.append(
                [await measure_level(server, backend, workload, clients, args, pg) for clients in args.concurrency]
            )
    # The machine's cores are shared (and, on a VM, lent): a single round can land on a
    # busy moment, so each level reports its median round and the range of all of them.
    levels = [median_level([found[index] for found in rounds]) for index in range(len(args.concurrency))]
    times = await measure_first_event(server, workload, args.streams)
    print(
        f"  {label} first event after p50 {percentile(times, 50):.1f} ms, p99 {percentile(times, 99):.1f} ms"
        f" ({len(times)} sequential streams, each checked)",
        file=sys.stderr,
        flush=True,
    )
    return levels, times


def bench_backend(backend: str, workers: int, args: argparse.Namespace) -> tuple[list[Level], list[float]]:
    """Start a server on `backend` with `workers` processes, measure it, stop it (dropping a Postgres
    database even on error)."""
    dbname = create_database(args.admin_url, "bench_http") if backend == "postgres" else None
    url = database_url(args.admin_url, dbname) if dbname else None
    if dbname:
        print(f"throwaway database {dbname}", file=sys.stderr, flush=True)
    try:
        server = Server(url, workers).start()
        try:
            check_backend(server, backend, args.graph)
            pids = ", ".join(str(pid) for pid in server.pids())
            print(f"{backend}, {workers} worker(s): server pids {pids} at {server.url}", file=sys.stderr, flush=True)
            levels, times = uvloop.run(run_backend(server, backend, args, dbname))
        finally:
            server.stop()
        if url:
            check_run_records(url, sum(level.runs for level in levels) + STREAM_WARMUP + len(times))
        return levels, times
    finally:
        if dbname:
            drop_database(args.admin_url, dbname)
            print(f"dropped database {dbname}", file=sys.stderr, flush=True)


def bench_join(args: argparse.Namespace) -> JoinTimes:
    """Two single-process servers on one throwaway database: join_stream on the run's own process and on the other."""
    dbname = create_database(args.admin_url, "bench_http_join")
    url = database_url(args.admin_url, dbname)
    print(f"throwaway database {dbname}", file=sys.stderr, flush=True)
    try:
        servers: list[Server] = []
        try:
            for _ in range(2):  # one after the other: the first applies the migrations
                servers.append(Server(url).start())
                check_backend(servers[-1], "postgres", JOIN_WORKLOAD.graph)
            a, b = servers
            print(f"postgres: servers A (pid {a.pid}) and B (pid {b.pid}) on one database", file=sys.stderr, flush=True)
            times = uvloop.run(measure_join(a, b, args.streams))
        finally:
            for server in servers:
                server.stop()
        kinds = (("same process", times.same, times.same_short), ("other process", times.other, times.other_short))
        for name, found, short in kinds:
            print(
                f"  postgres join_stream, {name}: first event after p50 {percentile(found, 50):.1f} ms,"
                f" p99 {percentile(found, 99):.1f} ms ({len(found)} runs, each checked; {len(short)} of"
                f" {STREAM_WARMUP + len(found)} streams ended without the run's final values)",
                file=sys.stderr,
                flush=True,
            )
            for line in short[:3]:
                print(f"    {line}", file=sys.stderr, flush=True)
        check_run_records(url, 2 * (STREAM_WARMUP + args.streams), watched=STREAM_WARMUP + args.streams)
        return times
    finally:
        drop_database(args.admin_url, dbname)
        print(f"dropped database {dbname}", file=sys.stderr, flush=True)


# Report ---------------------------------------------------------------------------

Results = dict[tuple[str, int], tuple[list[Level], list[float]]]  # (backend, workers) -> (levels, first events)


def optional(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def ratio_lines(results: Results) -> list[str]:
    """Per backend measured with several worker counts: each count's rate over the lowest's, by level."""
    lines = []
    for backend in dict.fromkeys(backend for backend, _ in results):
        counts = sorted(workers for name, workers in results if name == backend)
        base = {level.clients: level for level in results[(backend, counts[0])][0]}
        for workers in counts[1:]:
            for level in results[(backend, workers)][0]:
                clients = f"{level.clients} client{'s' if level.clients > 1 else ''}"
                ratio = level.rate / base[level.clients].rate
                lines.append(f"{backend}: workers {workers} / workers {counts[0]} at {clients}: {ratio:.2f}x")
    return lines


def render(results: Results, joins: JoinTimes | None, args: argparse.Namespace, command: str, cores: int) -> str:
    rounds = f"; median of {args.rounds} rounds (range in brackets)" if args.rounds > 1 else ""
    lines = [
        f"Graph `{args.graph}`, {args.duration:g} s per level after {args.warmup:g} s warm-up{rounds}, {cores} cores"
        " shared by client, server and Postgres.",
        "",
        "| backend | workers | clients | runs/s | runs.wait p50 (ms) | runs.wait p99 (ms) | server cores "
        "| client cores | other cores | server CPU ms/run | Postgres transactions/run | Postgres CPU ms/run |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for levels, _ in results.values():
        for level in levels:
            server, client, other = level.cpu
            spread = f" ({min(level.rates):,.0f}-{max(level.rates):,.0f})" if len(level.rates) > 1 else ""
            lines.append(
                f"| {level.backend} | {level.workers} | {level.clients} | {level.rate:,.0f}{spread} | {level.p50:.1f} "
                f"| {level.p99:.1f} | {server:.2f} | {client:.2f} | {other:.2f} | {level.server_ms:.1f} "
                f"| {optional(level.pg_transactions)} | {optional(level.pg_ms)} |"
            )
    ratios = ratio_lines(results)
    if ratios:
        lines += ["", *ratios]
    if "memory" in args.backends and args.workers != [1]:
        lines += ["", "memory: measured with 1 worker only (in-memory persistence lives in one process)."]
    lines += [
        "",
        "| backend | workers | sequential streams | first event p50 (ms) | first event p99 (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for (backend, workers), (_, times) in results.items():
        lines.append(
            f"| {backend} | {workers} | {len(times)} | {percentile(times, 50):.1f} | {percentile(times, 99):.1f} |"
        )
    if joins is not None:
        lines += [
            "",
            "join_stream of a run just created on server A (Postgres, two single-process servers,"
            f" {JOIN_RUN_SECONDS:g} s runs of `slow`):",
            "",
            "| join_stream on | runs | first event p50 (ms) | first event p99 (ms) "
            "| streams without the final values |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        kinds = (
            ("A: same process", joins.same, joins.same_short),
            ("B: other process", joins.other, joins.other_short),
        )
        for name, times, short in kinds:
            lines.append(
                f"| {name} | {len(times)} | {percentile(times, 50):.1f} | {percentile(times, 99):.1f} "
                f"| {len(short)} of {STREAM_WARMUP + len(times)} |"
            )
    lines += ["", f"Command: `{command}`"]
    return "\n".join(lines)


# Command line ---------------------------------------------------------------------


def backend_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values or any(value not in BACKENDS for value in values):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(BACKENDS)}, got {text!r}")
    return list(dict.fromkeys(values))


def worker_counts(backend: str, args: argparse.Namespace) -> list[int]:
    """The worker counts measured on `backend`: in-memory persistence lives in one process."""
    return [1] if backend == "memory" else args.workers


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per level (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds run before measuring (default 2)")
    parser.add_argument(
        "--concurrency", type=concurrency_list, default=[1, 8, 32], help="clients at once (default 1,8,32)"
    )
    parser.add_argument(
        "--backends", type=backend_list, default=list(BACKENDS), help="persistence (default memory,postgres)"
    )
    parser.add_argument(
        "--workers",
        type=concurrency_list,
        default=[1],
        help="server processes (WORKERS), each count measured in turn on Postgres; memory runs 1 only (default 1)",
    )
    parser.add_argument("--graph", choices=sorted(WORKLOADS), default="agent", help="graph to run (default agent)")
    parser.add_argument(
        "--streams", type=int, default=50, help="sequential streams timed, and joins of each kind (default 50)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="times every level is measured; the median is reported (default 3)"
    )
    parser.add_argument(
        "--admin-url", default=DEFAULT_ADMIN_URL, help=f"creates the database (default {DEFAULT_ADMIN_URL})"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.streams < 1 or args.rounds < 1:
        parser.error("--duration must be > 0, --warmup >= 0, --streams >= 1 and --rounds >= 1")
    args.workers = sorted(set(args.workers))
    if "memory" in args.backends and 1 not in args.workers:
        parser.error(
            "in-memory persistence lives in one process: --workers must include 1 with the memory backend"
            " (or pass --backends postgres)"
        )
    return args


def main() -> None:
    args = parse_args(sys.argv[1:])
    if "memory" in args.backends and args.workers != [1]:
        print("memory: measured with 1 worker only (in-memory persistence lives in one process)", file=sys.stderr)
    results: Results = {}
    for backend in args.backends:
        for workers in worker_counts(backend, args):
            results[(backend, workers)] = bench_backend(backend, workers, args)
    joins = bench_join(args) if "postgres" in args.backends else None
    print(render(results, joins, args, shlex.join(sys.orig_argv), os.cpu_count() or 0))
    if joins is not None and (joins.same_short or joins.other_short):
        short = len(joins.same_short) + len(joins.other_short)
        print(f"FAILED: {short} joined streams ended without the run's final values", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
