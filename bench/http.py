"""HTTP throughput and latency: the real server, driven by LangGraph's own SDK, by backend and concurrency.

What it measures: the server is started as a subprocess (`python -m src.web`, as
tests/conftest.py's `ServerProcess` starts it) once on in-memory persistence and once
on Postgres (a throwaway database), with LOG_LEVEL=WARNING and RUNS_MAX_CONCURRENCY
left at its default. It serves the test graphs of tests/graphs/config.yml as well as
the built-in agent. For each concurrency level N, N clients, each with its own thread
created beforehand, loop `await client.runs.wait(thread_id, GRAPH, ...)` for a fixed
duration after a warm-up. Reported per backend and level: completed runs per second
across all clients, the p50 and p99 latency of one `runs.wait` call, and the CPU the
server process, this client process and everything else on the machine used.
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
keeps its one keep-alive connection, as independent users would. Note that the SDK
JSON-encodes every request and decodes every response through `run_in_executor` (the
default thread pool), a client-side cost included in every latency here.

The machine's cores are shared by this process, the server and Postgres, so the
figures are for this machine only; the CPU columns show who used them.

Run from the repository root (the tables go to stdout, progress to stderr):

    .venv/bin/python -m bench.http [--duration 10] [--warmup 2] [--concurrency 1,8,32]
        [--backends memory,postgres] [--graph agent|slow] [--streams 50] [--rounds 3] [--admin-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
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
from collections.abc import Callable, Sequence
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
STOP_TIMEOUT = 10.0
STREAM_WARMUP = 5
SERVER_SETTINGS = frozenset(
    {
        "CONFIG_FILE",
        "HOST",
        "PORT",
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


# The server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m src.web` on a free port; its output goes to a file, never a pipe that could fill up."""

    def __init__(self, database_url: str | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Every setting at its default (the offline model, pool sizes, RUNS_MAX_CONCURRENCY) whatever this shell sets.
        base = {k: v for k, v in os.environ.items() if k not in SERVER_SETTINGS}
        self.env = {
            **base,
            "PORT": str(self.port),
            "CONFIG_FILE": str(CONFIG_FILE),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **({"DATABASE_URL": database_url} if database_url else {}),
        }
        self.log: IO[str] = tempfile.TemporaryFile("w+")
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "src.web"], cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        raise RuntimeError(f"server at {self.url} not ready within {READY_TIMEOUT} s:\n{self.output()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

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


# CPU accounting -------------------------------------------------------------------


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent not idle (first line of /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


@dataclass
class CpuMeter:
    """Cores used by the server, this process and the rest of the machine over an interval."""

    server: Server
    start: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def sample(self) -> tuple[float, float, float, float]:
        return time.perf_counter(), self.server.cpu_seconds(), client_cpu_seconds(), machine_busy_seconds()

    def begin(self) -> None:
        self.start = self.sample()

    def end(self) -> tuple[float, float, float]:
        """(server, client, other) in cores, averaged since `begin`."""
        now = self.sample()
        wall = now[0] - self.start[0]
        server, client, machine = ((now[i] - self.start[i]) / wall for i in (1, 2, 3))
        return server, client, max(machine - server - client, 0.0)


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
    clients: int
    rate: float
    p50: float
    p99: float
    cpu: tuple[float, float, float]
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


async def measure_level(
    server: Server, backend: str, workload: Workload, clients: int, args: argparse.Namespace
) -> Level:
    """`clients` clients, each looping runs.wait on its own thread; runs/s and latency after the warm-up."""
    sdk = [sdk_client(server.url) for _ in range(clients)]
    meter, cpu = Meter(), CpuMeter(server)
    try:
        threads = [(await client.threads.create())["thread_id"] for client in sdk]
        tasks = [asyncio.create_task(client_loop(c, t, workload, meter)) for c, t in zip(sdk, threads, strict=True)]
        try:
            done, _ = await asyncio.wait(tasks, timeout=args.warmup, return_when=asyncio.FIRST_EXCEPTION)
            meter.counting = True
            cpu.begin()
            start = time.perf_counter()
            if not done:
                done, _ = await asyncio.wait(tasks, timeout=args.duration, return_when=asyncio.FIRST_EXCEPTION)
            meter.counting = False
            elapsed = time.perf_counter() - start
            usage = cpu.end()
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
    level = Level(backend, clients, len(ms) / elapsed, percentile(ms, 50), percentile(ms, 99), usage, meter.total)
    tenth = max(len(ms) // 10, 1)  # in completion order: shows how the threads' growing state weighs
    print(
        f"  {backend:<8} c={clients:<3} {level.rate:8.1f} runs/s  p50 {level.p50:7.1f} ms  p99 {level.p99:7.1f} ms"
        f"  ({meter.total} runs checked; threads grew to {meter.largest} {workload.unit}, p50 of the first/last"
        f" tenth {percentile(ms[:tenth], 50):.1f}/{percentile(ms[-tenth:], 50):.1f} ms; cores: server"
        f" {usage[0]:.2f}, client {usage[1]:.2f}, other {usage[2]:.2f})",
        file=sys.stderr,
        flush=True,
    )
    return level


# Time to first event --------------------------------------------------------------


async def stream_once(client: LangGraphClient, thread_id: str, workload: Workload) -> float:
    """Seconds from the runs.stream call to its first part; the rest of the stream is read and checked."""
    began = time.perf_counter()
    parts = client.runs.stream(thread_id, workload.graph, input=workload.input, config=workload.config)
    first = await anext(parts)
    elapsed = time.perf_counter() - began
    if first.event != "metadata" or not first.data.get("run_id"):
        raise RuntimeError(f"thread {thread_id}: expected a metadata event first, got {first!r}")
    values = None
    async for part in parts:
        if part.event == "error":
            raise RuntimeError(f"thread {thread_id}: the run failed: {part.data!r}")
        if part.event == "values":
            values = part.data
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


# Postgres -------------------------------------------------------------------------


def check_run_records(url: str, expected: int) -> None:
    """Fail unless the database holds `expected` run records, every one a success."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM agent_server.runs GROUP BY status").fetchall()
    found = dict(rows)
    if found != {"success": expected}:
        raise RuntimeError(f"expected {expected} successful run records in Postgres, found {found}")
    print(f"  postgres holds {expected} run records, all successful", file=sys.stderr, flush=True)


# The run --------------------------------------------------------------------------


def check_backend(server: Server, backend: str, graph: str) -> None:
    info = httpx.get(f"{server.url}/info", timeout=5.0).json()
    if info["persistence"]["backend"] != backend or graph not in info["graphs"]:
        raise RuntimeError(f"expected a {backend} server serving {graph!r}, got {info}")


async def run_backend(server: Server, backend: str, args: argparse.Namespace) -> tuple[list[Level], list[float]]:
    workload = WORKLOADS[args.graph]
    rounds: list[list[Level]] = []
    for number in range(args.rounds):
        if args.rounds > 1:
            print(f"  round {number + 1} of {args.rounds}", file=sys.stderr, flush=True)
        rounds.append([await measure_level(server, backend, workload, clients, args) for clients in args.concurrency])
    # The machine's cores are shared (and, on a VM, lent): a single round can land on a
    # busy moment, so each level reports its median round and the range of all of them.
    levels = [median_level([found[index] for found in rounds]) for index in range(len(args.concurrency))]
    times = await measure_first_event(server, workload, args.streams)
    print(
        f"  {backend:<8} first event after p50 {percentile(times, 50):.1f} ms, p99 {percentile(times, 99):.1f} ms"
        f" ({len(times)} sequential streams, each checked)",
        file=sys.stderr,
        flush=True,
    )
    return levels, times


def bench_backend(backend: str, args: argparse.Namespace) -> tuple[list[Level], list[float]]:
    """Start a server on `backend`, measure it, stop it (dropping a Postgres database even on error)."""
    dbname = create_database(args.admin_url, "bench_http") if backend == "postgres" else None
    url = database_url(args.admin_url, dbname) if dbname else None
    if dbname:
        print(f"throwaway database {dbname}", file=sys.stderr, flush=True)
    try:
        server = Server(url).start()
        try:
            check_backend(server, backend, args.graph)
            print(f"{backend}: server pid {server.pid} at {server.url}", file=sys.stderr, flush=True)
            levels, times = uvloop.run(run_backend(server, backend, args))
        finally:
            server.stop()
        if url:
            check_run_records(url, sum(level.runs for level in levels) + STREAM_WARMUP + len(times))
        return levels, times
    finally:
        if dbname:
            drop_database(args.admin_url, dbname)
            print(f"dropped database {dbname}", file=sys.stderr, flush=True)


# Report ---------------------------------------------------------------------------


def render(
    results: dict[str, tuple[list[Level], list[float]]], args: argparse.Namespace, command: str, cores: int
) -> str:
    rounds = f"; median of {args.rounds} rounds (range in brackets)" if args.rounds > 1 else ""
    lines = [
        f"Graph `{args.graph}`, {args.duration:g} s per level after {args.warmup:g} s warm-up{rounds}, {cores} cores"
        " shared by client, server and Postgres.",
        "",
        "| backend | clients | runs/s | runs.wait p50 (ms) | runs.wait p99 (ms) | server cores | client cores "
        "| other cores |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for levels, _ in results.values():
        for level in levels:
            server, client, other = level.cpu
            spread = f" ({min(level.rates):,.0f}-{max(level.rates):,.0f})" if len(level.rates) > 1 else ""
            lines.append(
                f"| {level.backend} | {level.clients} | {level.rate:,.0f}{spread} | {level.p50:.1f} | {level.p99:.1f} "
                f"| {server:.2f} | {client:.2f} | {other:.2f} |"
            )
    lines += [
        "",
        "| backend | sequential streams | first event p50 (ms) | first event p99 (ms) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for backend, (_, times) in results.items():
        lines.append(f"| {backend} | {len(times)} | {percentile(times, 50):.1f} | {percentile(times, 99):.1f} |")
    lines += ["", f"Command: `{command}`"]
    return "\n".join(lines)


# Command line ---------------------------------------------------------------------


def backend_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values or any(value not in BACKENDS for value in values):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(BACKENDS)}, got {text!r}")
    return list(dict.fromkeys(values))


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
    parser.add_argument("--graph", choices=sorted(WORKLOADS), default="agent", help="graph to run (default agent)")
    parser.add_argument("--streams", type=int, default=50, help="sequential streams timed (default 50)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="times every level is measured; the median is reported (default 3)"
    )
    parser.add_argument(
        "--admin-url", default=DEFAULT_ADMIN_URL, help=f"creates the database (default {DEFAULT_ADMIN_URL})"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.streams < 1 or args.rounds < 1:
        parser.error("--duration must be > 0, --warmup >= 0, --streams >= 1 and --rounds >= 1")
    return args


def main() -> None:
    args = parse_args(sys.argv[1:])
    results = {backend: bench_backend(backend, args) for backend in args.backends}
    print(render(results, args, shlex.join(sys.orig_argv), os.cpu_count() or 0))


if __name__ == "__main__":
    main()
