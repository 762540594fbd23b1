"""Soak: does the server's memory stay flat over thousands of runs?

The real server is started (`python -m src.web`, tests/graphs/config.yml, LOG_LEVEL=WARNING)
on in-memory persistence or on Postgres (a throwaway database, dropped after). `--clients`
clients then loop a normal workload until `--runs` runs have finished, each round one of:

- `runs.wait` of the `slow` graph on the client's conversation thread;
- a stateless `runs.wait` (`/runs/wait`: a temporary thread, deleted with its checkpoints);
- a `runs.stream` on the conversation thread whose client reads the first event and
  disconnects (its run goes on).

Each client's conversation ends after `--turns` runs, as conversations do: its thread is
deleted (with its checkpoints) and a new one begins. So the data the workload keeps on
purpose stays the same size, and what grows is what the server fails to let go of.

The server's resident memory (RSS, from /proc) is sampled every `--every` runs. The
verdict compares RSS after a warm-up (the first fifth of the runs: caches, allocator
arenas and the buffer of finished runs' events filling) with RSS at the end: growth
beyond `--max-growth-mb` fails the run (exit code 1). On Postgres the leftover rows are
counted too: no checkpoint of a deleted or stateless thread may remain.

    .venv/bin/python -m bench.soak [--backend memory|postgres] [--runs 10000] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from bench.common import DEFAULT_ADMIN_URL, create_database, database_url, drop_database

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "graphs" / "config.yml"
QUICK = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0}}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Workload:
    def __init__(self, url: str, args: argparse.Namespace, pid: int) -> None:
        self.url, self.pid = url, pid
        self.total, self.every, self.mix, self.turns = args.runs, args.every, args.mix, args.turns
        self.done = 0
        self.samples: list[tuple[int, float]] = [(0, rss_mb(pid))]
        self.failures = 0

    async def client(self, index: int) -> None:
        rng = random.Random(index)
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as http:
            thread_id, turns = (await http.post("/threads", json={})).json()["thread_id"], 0
            while self.done < self.total:
                if turns == self.turns:  # the conversation ends; another begins
                    while (await http.delete(f"/threads/{thread_id}")).status_code == 409:
                        await asyncio.sleep(0.05)  # an abandoned stream's run is still going
                    thread_id, turns = (await http.post("/threads", json={})).json()["thread_id"], 0
                kind = rng.choice(self.mix)
                if kind == "thread":
                    turns += 1
                    response = await http.post(f"/threads/{thread_id}/runs/wait", json=QUICK)
                    # Every earlier run of the conversation ran first (enqueue), abandoned streams' too.
                    expected = {"steps": [f"step {n}" for n in range(1, turns + 1)]}
                    ok = response.status_code == 200 and response.json() == expected
                elif kind == "stateless":
                    response = await http.post("/runs/wait", json=QUICK)
                    ok = response.status_code == 200 and response.json() == {"steps": ["step 1"]}
                else:
                    turns += 1
                    path = f"/threads/{thread_id}/runs/stream"
                    async with http.stream("POST", path, json={**QUICK, "stream_mode": ["values"]}) as stream:
                        ok = stream.status_code == 200
                        async for _ in stream.aiter_lines():
                            break  # the client goes away after the first line
                self.failures += not ok
                self.done += 1
                if self.done % self.every == 0:
                    self.samples.append((self.done, rss_mb(self.pid)))
                    print(f"  {self.done:>6} runs  RSS {self.samples[-1][1]:7.1f} MB", file=sys.stderr, flush=True)


async def soak(url: str, pid: int, args: argparse.Namespace) -> Workload:
    workload = Workload(url, args, pid)
    await asyncio.gather(*(workload.client(i) for i in range(args.clients)))
    await asyncio.sleep(2)  # the last runs finish, abandoned streams are noticed
    workload.samples.append((workload.done, rss_mb(pid)))
    return workload


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "src.web"],
        cwd=ROOT,
        env={**os.environ, **env, "PORT": str(port), "CONFIG_FILE": str(CONFIG), "LOG_LEVEL": "WARNING"},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ok", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("memory", "postgres"), default="memory")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--turns", type=int, default=50, help="runs per conversation thread before it ends")
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument(
        "--mix",
        type=lambda text: text.split(","),
        default=["thread", "thread", "stateless", "abandoned stream"],
        help="what each round does, chosen at random: thread, stateless, abandoned stream (comma-separated)",
    )
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL", DEFAULT_ADMIN_URL))
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONFIG_FILE")}
    dbname = None
    if args.backend == "postgres":
        dbname = create_database(args.admin_url, "agent_server_soak")
        env["DATABASE_URL"] = database_url(args.admin_url, dbname)
    port = free_port()
    os.environ.clear()
    os.environ.update(env)
    server = start_server(env, port)
    try:
        began = time.monotonic()
        workload = asyncio.run(soak(f"http://127.0.0.1:{port}", server.pid, args))
        seconds = time.monotonic() - began
        leftover = None
        if dbname is not None:
            with psycopg.connect(database_url(args.admin_url, dbname)) as conn:
                row = conn.execute(
                    "SELECT count(DISTINCT thread_id) FROM checkpoints WHERE thread_id::uuid NOT IN "
                    "(SELECT thread_id FROM agent_server.threads)"
                ).fetchone()
                leftover = row[0] if row else 0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)
        if dbname is not None:
            drop_database(args.admin_url, dbname)
    warm = next(rss for runs, rss in workload.samples if runs >= args.runs // 5)
    end = workload.samples[-1][1]
    print(
        f"\nSoak on {args.backend}: {workload.done} runs by {args.clients} clients in {seconds:.0f} s, "
        f"{workload.failures} failed"
    )
    print("| runs | RSS (MB) |\n| ---: | ---: |")
    for runs, rss in workload.samples:
        print(f"| {runs} | {rss:.1f} |")
    print(
        f"\nRSS after warm-up {warm:.1f} MB, at the end {end:.1f} MB: growth {end - warm:+.1f} MB "
        f"(allowed {args.max_growth_mb:g})"
    )
    if leftover is not None:
        print(f"checkpointed threads that no longer exist (stateless runs' leftovers): {leftover}")
    if workload.failures or end - warm > args.max_growth_mb or leftover:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
