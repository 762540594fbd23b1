"""Database outages: what clients see while Postgres is unreachable, and how soon the server serves again.

The server runs as a subprocess (tests/conftest.py's `ServerProcess`) on a throwaway
database reached through `tests/faultproxy.py`'s TCP proxy, with the test graphs and
DATABASE_POOL_TIMEOUT=3 (`--pool-timeout`). `--clients` clients, each on its own thread
and its own thread id, loop over a read (`GET /threads/{id}`), a write (`POST /threads`)
and a `runs/wait` of the one-node `slow` graph (delay 0), pausing 50 ms after a failure.
For each outage length, after 2 s of load the proxy refuses new connections and resets
the open ones (as when Postgres goes away), then listens again. Reported per outage:

- the answers to requests sent during it, by status, and the slowest of them;
- from the restore: the first `/health` 200 (polled every 20 ms) and the first time a
  read, a write and a `runs/wait` in a row all succeed (tried every 20 ms).

Then every server connection is terminated (`pg_terminate_backend`) while the server is
idle, as a Postgres restart leaves them, and the next request is timed.

The shared Postgres server itself is never stopped or reconfigured. Run from the repository root:

    .venv/bin/python -m bench.outage [--outages 8,35] [--pool-timeout 3] [--clients 4] [--admin-url URL]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import psycopg

from bench.common import DEFAULT_ADMIN_URL, create_database, drop_database
from tests.conftest import TEST_CONFIG, ServerProcess
from tests.faultproxy import FaultProxy

QUICK_RUN = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0}}}
POLL = 0.02
PAUSE_AFTER_FAILURE = 0.05
WARMUP = 2.0
TABLE_HEADER = (
    "| outage | answers to requests sent during it | slowest | /health 200 after | all succeed after |\n"
    "| ---: | --- | ---: | ---: | ---: |"
)
TERMINATE_ALL = (
    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
    "WHERE datname = %s AND application_name = 'agent-server' AND pid <> pg_backend_pid()"
)


@dataclass
class Answer:
    status: int
    began: float
    ended: float


def round_of(client: httpx.Client, thread_id: str) -> list[Answer]:
    answers = []
    for method, path, body in (
        ("GET", f"/threads/{thread_id}", None),
        ("POST", "/threads", {}),
        ("POST", f"/threads/{thread_id}/runs/wait", QUICK_RUN),
    ):
        began = time.monotonic()
        status = client.request(method, path, json=body).status_code
        answers.append(Answer(status, began, time.monotonic()))
    return answers


def clients(url: str, thread_ids: list[str], stop: threading.Event, answers: list[Answer]) -> list[threading.Thread]:
    def work(thread_id: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while not stop.is_set():
                done = round_of(client, thread_id)
                answers.extend(done)
                if any(answer.status != 200 for answer in done):
                    time.sleep(PAUSE_AFTER_FAILURE)

    threads = [threading.Thread(target=work, args=(thread_id,), daemon=True) for thread_id in thread_ids]
    for thread in threads:
        thread.start()
    return threads


def measure_outage(server: ServerProcess, proxy: FaultProxy, seconds: float, count: int) -> str:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        thread_ids = [http.post("/threads", json={}).json()["thread_id"] for _ in range(count)]
        stop, answers = threading.Event(), []
        workers = clients(server.url, thread_ids, stop, answers)
        time.sleep(WARMUP)
        cut = time.monotonic()
        proxy.outage()
        time.sleep(seconds)
        restored = time.monotonic()
        proxy.restore()
        while http.get("/health").status_code != 200:
            time.sleep(POLL)
        healthy = time.monotonic() - restored
        while not all(answer.status == 200 for answer in round_of(http, thread_ids[0])):
            time.sleep(POLL)
        recovered = time.monotonic() - restored
        stop.set()
        for worker in workers:
            worker.join()
    sent = [answer for answer in answers if cut <= answer.began < restored]
    statuses = ", ".join(f"{count} x {status}" for status, count in sorted(Counter(a.status for a in sent).items()))
    slowest = max((answer.ended - answer.began for answer in sent), default=0.0)
    return f"| {seconds:g} s | {statuses} | {slowest:.2f} s | {healthy:.2f} s | {recovered:.2f} s |"


def measure_restart(server: ServerProcess, admin_url: str, database: str) -> str:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        thread_id = http.post("/threads", json={}).json()["thread_id"]
        time.sleep(1.5)  # idle past DATABASE_POOL_CHECK_IDLE, as connections are when Postgres restarts
        with psycopg.connect(admin_url, autocommit=True) as admin:
            killed = admin.execute(TERMINATE_ALL, (database,)).fetchone()[0]
        time.sleep(0.05)
        began = time.monotonic()
        status = http.post(f"/threads/{thread_id}/runs/wait", json=QUICK_RUN).status_code
        took = time.monotonic() - began
    return f"{killed} idle server connections terminated: the next runs/wait answered {status} in {took * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outages", default="8,35", help="outage lengths in seconds, comma-separated")
    parser.add_argument("--pool-timeout", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    database = create_database(args.admin_url, "agent_server_bench_outage")
    try:
        with FaultProxy() as proxy:
            env = {
                "DATABASE_URL": proxy.url(database),
                "CONFIG_FILE": str(TEST_CONFIG),
                "DATABASE_POOL_TIMEOUT": f"{args.pool_timeout:g}",
                "ACCESS_LOG": "false",
                "LOG_LEVEL": "WARNING",
            }
            server = ServerProcess(env=env).start()
            try:
                print(f"DATABASE_POOL_TIMEOUT={args.pool_timeout:g}, {args.clients} clients\n")
                print(TABLE_HEADER)
                for seconds in (float(part) for part in args.outages.split(",")):
                    print(measure_outage(server, proxy, seconds, args.clients), flush=True)
                print()
                print(measure_restart(server, args.admin_url, database))
            finally:
                server.stop()
    finally:
        drop_database(args.admin_url, database)


if __name__ == "__main__":
    main()
