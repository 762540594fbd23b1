"""`--workers N`: one supervising process, N server processes sharing one port (Postgres).

Real processes end to end: both workers answer, a killed worker is replaced while the other
serves, SIGTERM stops every process and leaves no database connection, a worker whose parent is
killed stops itself, and the start-up errors stay one line with their exit code.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_CONFIG, ServerProcess, connections_after_close, create_database, drop_database

WAIT = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0}}}
ACCESS_LINE = re.compile(r"\[(\d+)\] agent_server\.access: POST /runs/wait 200")


@pytest.fixture
def database() -> Iterator[str]:
    name = create_database("agent_server_workers")
    yield name
    drop_database(name)


def workers_env(database: str) -> dict[str, str]:
    return {"CONFIG_FILE": str(TEST_CONFIG), "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}"}


def children(parent: int) -> set[int]:
    """PIDs of `parent`'s child processes, read from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def answering_pids(server: ServerProcess, requests: int = 40) -> set[int]:
    """PIDs in the access-log lines of `requests` runs, each on a new connection."""
    before = len(server.output)
    for _ in range(requests):
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/runs/wait", json=WAIT).status_code == 200
    time.sleep(0.2)
    lines = server.output[before:].splitlines()
    return {int(match.group(1)) for line in lines if (match := ACCESS_LINE.search(line))}


def test_two_workers_serve_one_port_and_stop_cleanly(database: str, server_factory):
    server = server_factory(env=workers_env(database), args=["--workers", "2"]).start()
    assert server.process is not None
    wait_until(lambda: "2 workers serving" in server.output, 30, "both workers ready")
    workers = children(server.process.pid)
    assert len(workers) == 2
    # The kernel spreads new connections over both processes.
    assert answering_pids(server) == workers
    # A scrape answered by either reports the runs of both.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        families = {family.name: family for family in text_string_to_metric_families(client.get("/metrics").text)}
    created = families["agent_server_runs_created"].samples
    assert sum(sample.value for sample in created if sample.name.endswith("_total")) == 40
    # SIGTERM to the parent stops every process, each closing its pool.
    assert server.stop(signal.SIGTERM, timeout=15) == 0
    assert not any(alive(pid) for pid in workers)
    assert connections_after_close(database) == 0
    assert server.output.count("agent_server: stopped") == 2


def test_a_killed_worker_is_replaced_while_the_other_serves(database: str, server_factory):
    server = server_factory(env=workers_env(database), args=["--workers", "2"]).start()
    assert server.process is not None
    wait_until(lambda: "2 workers serving" in server.output, 30, "both workers ready")
    victim, survivor = sorted(children(server.process.pid))
    os.kill(victim, signal.SIGKILL)
    # The port keeps answering through the survivor meanwhile.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(5):
            assert client.post("/runs/wait", json=WAIT).status_code == 200
    wait_until(lambda: len(children(server.process.pid)) == 2, 30, "a replacement worker")
    replacement = (children(server.process.pid) - {survivor}).pop()
    assert replacement != victim
    wait_until(lambda: "serving again" in server.output, 30, "the replacement serving")
    assert f"(pid {victim}) exited (killed by SIGKILL)" in server.output
    assert answering_pids(server) == {survivor, replacement}
    assert server.stop(signal.SIGTERM, timeout=15) == 0
    assert connections_after_close(database) == 0


def test_workers_stop_when_their_parent_is_killed(database: str, server_factory):
    server = server_factory(env=workers_env(database), args=["--workers", "2"]).start()
    assert server.process is not None
    wait_until(lambda: "2 workers serving" in server.output, 30, "both workers ready")
    workers = children(server.process.pid)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    wait_until(lambda: not any(alive(pid) for pid in workers), 15, "orphaned workers to stop")
    assert "is gone: stopping" in server.output
    assert connections_after_close(database) == 0


def test_a_worker_that_cannot_start_stops_the_server_with_one_line(database: str, server_factory, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("graphs:\n  nope: ./missing.py:graph\n")
    code, output, _ = server_factory(
        env={**workers_env(database), "CONFIG_FILE": str(broken)}, args=["--workers", "2"]
    ).run_to_exit()
    assert code == 2
    errors = [line for line in output.splitlines() if "config error" in line]
    assert len(errors) == 1 and "missing.py" in errors[0], output
    assert "Traceback" not in output


def test_workers_need_postgres(server_factory):
    code, output, _ = server_factory(env={"CONFIG_FILE": str(TEST_CONFIG), "WORKERS": "3"}).run_to_exit()
    assert code == 2
    assert output.strip().splitlines() == [
        "agent-server: config error: server.workers=3 needs Postgres: in-memory persistence lives in one "
        "process; set DATABASE_URL, or WORKERS=1"
    ]
