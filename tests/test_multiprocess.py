"""End to end: several real server processes on one Postgres database, clients spread across them.

The queue (src/services/runs) must hold under real processes: runs of one thread keep every
turn in order whichever process takes them, any process answers about any run (get, list,
join, streams, cancels), and a process killed with SIGKILL loses no acknowledged run and
duplicates no turn: another process resumes its runs once their leases lapse.

Leases are short here (LEASE seconds) so that a killed process's runs come back quickly.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from langgraph_sdk import get_sync_client

from tests.conftest import TEST_CONFIG, ServerProcess, create_database, database_url, drop_database

pytestmark = pytest.mark.postgres

LEASE = 3.0
QUEUE_ENV = {
    "CONFIG_FILE": str(TEST_CONFIG),
    "RUNS_LEASE_SECONDS": str(LEASE),
    "RUNS_HEARTBEAT_SECONDS": "1",
    "RUNS_POLL_SECONDS": "1",
    "LOG_LEVEL": "INFO",
}


class Cluster:
    """`size` server processes on one database; a killed one is replaced by a new process."""

    def __init__(self, database: str, size: int, env: dict[str, str] | None = None) -> None:
        self.database = database
        self.url = database_url(database)
        self.env = {**QUEUE_ENV, "DATABASE_URL": self.url, **(env or {})}
        self.servers = [ServerProcess(env=self.env) for _ in range(size)]
        self.retired: list[ServerProcess] = []  # killed ones, for their logs

    def start(self) -> Cluster:
        for server in self.servers:
            server.start(wait=False)
        for server in self.servers:
            server.wait_ready()
        return self

    def kill(self, index: int) -> None:
        self.servers[index].stop(signal.SIGKILL)

    def replace(self, index: int, wait: bool = True) -> ServerProcess:
        """A new process in place of server `index` (a new port: the old one may linger in TIME_WAIT)."""
        self.retired.append(self.servers[index])
        self.servers[index] = ServerProcess(env=self.env).start(wait=wait)
        return self.servers[index]

    def stop(self) -> None:
        for server in self.servers:
            if server.process is not None and server.process.poll() is None:
                server.stop()

    def logs(self, lines: int = 60) -> str:
        """The warnings and errors every process wrote, for a failing assertion's message."""
        out = []
        for server in [*self.retired, *self.servers]:
            noted = [line for line in server.output.splitlines() if "WARNING" in line or "ERROR" in line]
            out.append(f"--- {server.url}:\n" + "\n".join(noted[-lines:]))
        return "\n".join(out)

    def db(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)


@pytest.fixture
def cluster_database() -> Iterator[str]:
    name = create_database("agent_server_multi")
    yield name
    drop_database(name)


@pytest.fixture
def cluster(cluster_database: str) -> Iterator[Cluster]:
    cluster = Cluster(cluster_database, 3).start()
    yield cluster
    cluster.stop()


def slow(label: str, delay: float, **extra: Any) -> dict[str, Any]:
    """A run of the `slow` test graph: `label` appended to the thread's steps, then one `step N`."""
    return {"assistant_id": "slow", "input": {"steps": [label]}, "config": {"configurable": {"delay": delay}}, **extra}


def new_thread(url: str) -> str:
    response = httpx.post(f"{url}/threads", json={}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["thread_id"]


def turns(steps: list[str]) -> list[str]:
    """The inputs of a `slow` thread's steps, checking each is followed by exactly one step of its own."""
    inputs, graph_steps = steps[0::2], steps[1::2]
    assert graph_steps == [f"step {2 * n + 2}" for n in range(len(inputs))], steps
    return inputs


def thread_runs(conn: psycopg.Connection, thread_id: str) -> list[tuple[str, str, str]]:
    """(run id, status, input label) of a thread's runs, in the order the queue takes them."""
    rows = conn.execute(
        "SELECT run_id::text, status, kwargs FROM agent_server.runs WHERE thread_id = %s ORDER BY created_at, run_id",
        (thread_id,),
    ).fetchall()
    return [(run_id, status, kwargs["input"]["steps"][0]) for run_id, status, kwargs in rows]


def wait_settled(cluster: Cluster, timeout: float) -> float:
    """Wait until no run is pending or running and no thread busy; return the seconds it took."""
    began = time.monotonic()
    deadline = began + timeout
    with cluster.db() as conn:
        while True:
            active = conn.execute(
                "SELECT (SELECT count(*) FROM agent_server.runs WHERE status IN ('pending', 'running')) "
                "+ (SELECT count(*) FROM agent_server.threads WHERE status = 'busy')"
            ).fetchone()
            if active is not None and active[0] == 0:
                return time.monotonic() - began
            if time.monotonic() > deadline:
                rows = conn.execute(
                    "SELECT run_id, thread_id, status, owner, attempt, lease_until, error FROM agent_server.runs "
                    "WHERE status IN ('pending', 'running')"
                ).fetchall()
                threads = conn.execute("SELECT thread_id, status FROM agent_server.threads WHERE status = 'busy'")
                pytest.fail(
                    f"not settled within {timeout} s: runs {rows}, busy threads {threads.fetchall()}\n{cluster.logs()}"
                )
            time.sleep(0.2)


def check_threads(cluster: Cluster, acknowledged: dict[str, list[tuple[str, str]]]) -> None:
    """Every acknowledged run succeeded; each thread holds each of its runs' inputs exactly once, in
    the order of its runs, and nothing else. `acknowledged`: thread -> [(run id, label)]."""
    live = [server for server in cluster.servers if server.process is not None and server.process.poll() is None]
    client = httpx.Client(base_url=live[0].url, timeout=10)
    with cluster.db() as conn, client:
        for thread_id, runs in acknowledged.items():
            stored = thread_runs(conn, thread_id)
            statuses = {run_id: status for run_id, status, _ in stored}
            failed = {run_id: statuses.get(run_id) for run_id, _ in runs if statuses.get(run_id) != "success"}
            assert not failed, f"lost runs on {thread_id}: {failed}\n{cluster.logs()}"
            # Runs whose creation the client never heard back about may exist too: they count as well.
            assert all(status == "success" for _, status, _ in stored), stored
            thread = client.get(f"/threads/{thread_id}").json()
            assert thread["status"] == "idle", thread
            steps = thread["values"]["steps"]
            assert turns(steps) == [label for _, _, label in stored], f"{thread_id}: {steps}\n{cluster.logs()}"
            state = client.get(f"/threads/{thread_id}/state").json()
            assert state["values"]["steps"] == steps and state["next"] == []


def wait_for_input(url: str, thread_id: str, label: str, timeout: float = 10.0) -> None:
    """Wait until a running `slow` run's input `label` is checkpointed (its node now sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        state = httpx.get(f"{url}/threads/{thread_id}/state", timeout=10).json()
        if (state.get("values") or {}).get("steps", [None])[-1] == label:
            return
        assert time.monotonic() < deadline, state
        time.sleep(0.05)


def read_sse(response: httpx.Response) -> Iterator[tuple[str | None, str, Any]]:
    """(id, event, data) of a server-sent event stream, heartbeats skipped."""
    event_id, event, data = None, "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                yield event_id, event, json.loads("\n".join(data))
            event_id, event, data = None, "message", []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def stream_events(url: str, path: str, last_event_id: str | None = None, limit: int | None = None) -> list:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    events = []
    with httpx.stream("GET", f"{url}{path}", headers=headers, timeout=30) as response:
        assert response.status_code == 200, response.read()
        for item in read_sse(response):
            events.append(item)
            if limit is not None and len(events) >= limit:
                break
    return events


@pytest.mark.timeout(90)
def test_runs_of_one_thread_from_every_process_keep_every_turn_in_order(cluster):
    clients = [get_sync_client(url=server.url, timeout=60) for server in cluster.servers]
    thread_id = clients[0].threads.create()["thread_id"]
    labels = [f"turn {n}" for n in range(12)]

    def wait(n: int) -> Any:
        client = clients[n % len(clients)]
        config = {"configurable": {"delay": 0.1}}
        return client.runs.wait(thread_id, "slow", input={"steps": [labels[n]]}, config=config)

    with concurrent.futures.ThreadPoolExecutor(len(labels)) as pool:
        results = list(pool.map(wait, range(len(labels))))
    for n, values in enumerate(results):
        assert labels[n] in values["steps"], values  # each wait answers with its own run's outcome
    thread = clients[1].threads.get(thread_id)
    assert thread["status"] == "idle"
    inputs = turns(thread["values"]["steps"])
    assert sorted(inputs) == sorted(labels), inputs
    with cluster.db() as conn:
        stored = thread_runs(conn, thread_id)
    assert [label for _, _, label in stored] == inputs  # in the order they were queued
    assert {status for _, status, _ in stored} == {"success"}
    # Each in one attempt: no process lost its lease on the way.
    with cluster.db() as conn:
        attempts = conn.execute("SELECT max(attempt) FROM agent_server.runs WHERE thread_id = %s", (thread_id,))
        assert attempts.fetchone() == (1,)
    assert len(clients[2].runs.list(thread_id, limit=20)) == 12


@pytest.mark.timeout(120)
def test_any_process_answers_about_a_run_another_executes(cluster):
    a, b, c = (server.url for server in cluster.servers)
    client_a, client_b = get_sync_client(url=a, timeout=30), get_sync_client(url=b, timeout=30)
    thread_id = client_a.threads.create()["thread_id"]
    run = client_a.runs.create(thread_id, "slow", input={"steps": ["first"]}, config={"configurable": {"delay": 1.5}})
    run_id = run["run_id"]
    assert run["status"] == "running"  # started at once on A

    assert client_b.runs.get(thread_id, run_id)["status"] == "running"
    assert [r["run_id"] for r in client_b.runs.list(thread_id)] == [run_id]
    assert client_b.threads.get(thread_id)["status"] == "busy"
    # A stream from B, read in part and resumed after the first event from C, then joined from B.
    path = f"/threads/{thread_id}/runs/{run_id}/stream"
    first = stream_events(b, path, limit=1)
    assert first[0][1] == "metadata" and first[0][2]["run_id"] == run_id
    values = client_b.runs.join(thread_id, run_id)
    assert values == {"steps": ["first", "step 2"]}  # the final values, not what B knew before
    whole = stream_events(b, path)
    assert [event for _, event, _ in whole] == ["metadata", "values", "values"], whole
    assert whole[-1][2] == values
    assert stream_events(c, path) == whole  # C never followed it: the stored events
    assert stream_events(c, path, last_event_id=whole[0][0]) == whole[1:]
    assert stream_events(b, path, last_event_id=whole[1][0]) == whole[2:]
    assert client_b.runs.get(thread_id, run_id)["status"] == "success"
    assert client_b.threads.get(thread_id)["status"] == "idle"

    # The SDK's runs.stream on A, and its join_stream of the same run from C: the same events.
    client_c = get_sync_client(url=c, timeout=30)
    streamed = client_a.runs.stream(
        thread_id, "slow", input={"steps": ["second"]}, config={"configurable": {"delay": 1}}, stream_mode="values"
    )
    first_part = next(streamed)
    assert first_part.event == "metadata"
    second_id = first_part.data["run_id"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        joined = pool.submit(lambda: list(client_c.runs.join_stream(thread_id, second_id, stream_mode=["values"])))
        parts = [first_part, *streamed]
        assert [part.event for part in parts] == ["metadata", "values", "values"], parts
        assert parts[-1].data == {"steps": ["first", "step 2", "second", "step 4"]}
        assert [(part.event, part.data) for part in joined.result(timeout=20)] == [
            (part.event, part.data) for part in parts
        ]
    resumed = stream_events(b, f"/threads/{thread_id}/runs/{second_id}/stream", last_event_id="1")
    assert [(event, data) for _, event, data in resumed] == [("values", parts[-1].data)]

    # A thread stream on B sees a run created on A, from start to end.
    seen: list[tuple[str | None, str, Any]] = []
    started = threading.Event()

    def follow() -> None:
        with httpx.stream("GET", f"{b}/threads/{thread_id}/stream", timeout=30) as response:
            started.set()
            for item in read_sse(response):
                seen.append(item)
                if item[1] == "metadata" and item[2].get("status") == "run_done":
                    return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert started.wait(10)
    time.sleep(0.3)
    third = client_a.runs.create(thread_id, "slow", input={"steps": ["third"]}, config={"configurable": {"delay": 1.5}})
    follower.join(20)
    assert not follower.is_alive(), seen
    events = [event for _, event, _ in seen]
    assert events[0] == "metadata" and events[-1] == "metadata" and "values" in events, seen
    assert all(event_id.startswith(third["run_id"] + ":") for event_id, _, _ in seen if event_id), seen
    assert seen[-2][2]["steps"][-2:] == ["third", "step 6"], seen
    client_b.runs.join(thread_id, third["run_id"])


@pytest.mark.timeout(120)
def test_a_stream_from_any_process_at_any_moment_of_a_run_gets_every_event_or_a_404(cluster):
    """Streams opened from random processes at random moments around a run's end: each gets the
    run's events through its final values, or (the run ended before anyone elsewhere followed it,
    its events never stored) a 404. Never a stream cut short, never an empty one."""
    rng = random.Random()
    urls = [server.url for server in cluster.servers]
    threads = [new_thread(urls[0]) for _ in range(3)]
    problems: list[Any] = []
    outcomes: list[str] = []

    def drive(thread_id: str) -> None:
        for n in range(12):
            label = f"{thread_id[:8]} {n}"
            created = httpx.post(f"{rng.choice(urls)}/threads/{thread_id}/runs", json=slow(label, 0.3), timeout=10)
            run_id = created.json()["run_id"]
            time.sleep(rng.uniform(0.15, 0.45))  # about when the run ends
            url = rng.choice(urls)
            with httpx.stream("GET", f"{url}/threads/{thread_id}/runs/{run_id}/stream", timeout=30) as response:
                if response.status_code == 404:
                    outcomes.append("404")
                    continue
                events = list(read_sse(response))
            outcomes.append("events")
            if [event for _, event, _ in events] != ["metadata", "values", "values"]:
                problems.append((label, url, events))
            elif events[-1][2]["steps"][-2:] != [label, f"step {2 * n + 2}"]:
                problems.append((label, url, events))

    with concurrent.futures.ThreadPoolExecutor(len(threads)) as pool:
        list(pool.map(drive, threads))
    assert not problems, problems
    assert outcomes.count("events") >= 6, outcomes  # enough of them caught the run in progress


@pytest.mark.timeout(120)
def test_cancel_from_another_process_interrupts_or_rolls_back(cluster):
    a, b, _ = (server.url for server in cluster.servers)
    client_a, client_b = get_sync_client(url=a, timeout=30), get_sync_client(url=b, timeout=30)
    thread_id = client_a.threads.create()["thread_id"]
    kept = client_a.runs.wait(thread_id, "slow", input={"steps": ["kept"]}, config={"configurable": {"delay": 0}})
    assert kept == {"steps": ["kept", "step 2"]}

    # Interrupt: the run ends interrupted, what it wrote stays, the thread is idle again.
    run = client_a.runs.create(thread_id, "slow", input={"steps": ["cut"]}, config={"configurable": {"delay": 30}})
    wait_for_input(b, thread_id, "cut")
    began = time.monotonic()
    client_b.runs.cancel(thread_id, run["run_id"], wait=True, action="interrupt")
    assert time.monotonic() - began < 5
    assert client_b.runs.get(thread_id, run["run_id"])["status"] == "interrupted"
    assert client_a.runs.get(thread_id, run["run_id"])["status"] == "interrupted"
    assert client_b.threads.get(thread_id)["status"] == "idle"
    assert client_a.runs.join(thread_id, run["run_id"])["__error__"]["error"] == "CancelledError"
    assert client_b.threads.get_state(thread_id)["values"]["steps"] == ["kept", "step 2", "cut"]

    # Rollback: the run is gone, and with it every checkpoint it wrote.
    run = client_a.runs.create(thread_id, "slow", input={"steps": ["undone"]}, config={"configurable": {"delay": 30}})
    wait_for_input(b, thread_id, "undone")
    client_b.runs.cancel(thread_id, run["run_id"], wait=True, action="rollback")
    with pytest.raises(httpx.HTTPStatusError) as gone:
        client_a.runs.get(thread_id, run["run_id"])
    assert gone.value.response.status_code == 404
    assert client_b.threads.get(thread_id)["status"] == "idle"
    assert client_b.threads.get_state(thread_id)["values"]["steps"] == ["kept", "step 2", "cut"]
    history = client_a.threads.get_history(thread_id, limit=50)
    assert all(state["metadata"].get("run_id") != run["run_id"] for state in history)

    # A run queued behind it on A, cancelled from B before any process took it.
    blocker = client_a.runs.create(thread_id, "slow", input={"steps": ["b"]}, config={"configurable": {"delay": 30}})
    queued = client_a.runs.create(thread_id, "slow", input={"steps": ["q"]}, config={"configurable": {"delay": 0}})
    assert queued["status"] == "pending"
    client_b.runs.cancel(thread_id, queued["run_id"], action="rollback")
    with pytest.raises(httpx.HTTPStatusError):
        client_a.runs.get(thread_id, queued["run_id"])
    client_b.runs.cancel(thread_id, blocker["run_id"], wait=True)
    assert client_a.threads.get(thread_id)["status"] == "idle"
    after = client_b.runs.wait(thread_id, "slow", input={"steps": ["after"]}, config={"configurable": {"delay": 0}})
    assert after["steps"] == ["kept", "step 2", "cut", "b", "after", "step 6"]

    # multitask_strategy from B replaces a run A executes: interrupt keeps its input, rollback does not.
    for strategy, expected in (("interrupt", ["old interrupt"]), ("rollback", [])):
        old = client_a.runs.create(
            thread_id, "slow", input={"steps": [f"old {strategy}"]}, config={"configurable": {"delay": 30}}
        )
        wait_for_input(b, thread_id, f"old {strategy}")
        before = client_b.threads.get_state(thread_id)["values"]["steps"][:-1]
        new = client_b.runs.wait(
            thread_id,
            "slow",
            input={"steps": [f"new {strategy}"]},
            config={"configurable": {"delay": 0}},
            multitask_strategy=strategy,
        )
        assert new["steps"] == [*before, *expected, f"new {strategy}", f"step {len(before) + len(expected) + 2}"]
        if strategy == "interrupt":
            assert client_a.runs.get(thread_id, old["run_id"])["status"] == "interrupted"
        else:
            with pytest.raises(httpx.HTTPStatusError):
                client_a.runs.get(thread_id, old["run_id"])
        assert client_a.threads.get(thread_id)["status"] == "idle"


@pytest.mark.timeout(120)
def test_rollback_of_a_run_whose_process_was_killed(cluster_database):
    """A run cut short by a SIGKILL holds the checkpoints it wrote. Rolled back from another process
    while its dead owner's lease still runs, or once it waits in the queue again, they go with it."""
    cluster = Cluster(cluster_database, 3, {"RUNS_MAX_CONCURRENCY": "1"}).start()
    try:
        b, c = cluster.servers[1].url, cluster.servers[2].url
        client_b = get_sync_client(url=b, timeout=30)
        threads = [new_thread(b) for _ in range(2)]
        for thread_id in threads:
            client_b.runs.wait(thread_id, "slow", input={"steps": ["kept"]}, config={"configurable": {"delay": 0}})

        def cut_short(thread_id: str) -> str:
            """A run A executes when A is killed."""
            response = httpx.post(f"{cluster.servers[0].url}/threads/{thread_id}/runs", json=slow("undone", 30))
            assert response.status_code == 200 and response.json()["status"] == "running", response.text
            wait_for_input(b, thread_id, "undone")  # it holds a checkpoint
            cluster.kill(0)
            return response.json()["run_id"]

        # Cancelled while the dead process's lease runs: the process sweeping it rolls it back.
        lapsing = cut_short(threads[0])
        client_b.runs.cancel(threads[0], lapsing, action="rollback")
        # Swept back to the queue while B and C have no free slot, then cancelled there.
        cluster.replace(0)
        waiting = cut_short(threads[1])
        blockers = []
        for url in (b, c):
            thread_id = new_thread(url)
            blocker = httpx.post(f"{url}/threads/{thread_id}/runs", json=slow("blocker", 30)).json()
            assert blocker["status"] == "running", blocker
            blockers.append((thread_id, blocker["run_id"]))
        with cluster.db() as conn:
            deadline = time.monotonic() + LEASE + 5
            query = "SELECT status FROM agent_server.runs WHERE run_id = %s"
            while conn.execute(query, (waiting,)).fetchone() != ("pending",):
                assert time.monotonic() < deadline, cluster.logs()
                time.sleep(0.05)
        client_b.runs.cancel(threads[1], waiting, action="rollback")
        for thread_id, run_id in blockers:
            client_b.runs.cancel(thread_id, run_id, wait=True)
        wait_settled(cluster, LEASE + 10)
        for thread_id, run_id in zip(threads, [lapsing, waiting], strict=True):
            with pytest.raises(httpx.HTTPStatusError) as gone:
                client_b.runs.get(thread_id, run_id)
            assert gone.value.response.status_code == 404
            assert client_b.threads.get(thread_id)["status"] == "idle"
            assert client_b.threads.get_state(thread_id)["values"]["steps"] == ["kept", "step 2"], cluster.logs()
            history = client_b.threads.get_history(thread_id, limit=50)
            assert all(state["metadata"].get("run_id") != run_id for state in history)
            after = client_b.runs.wait(thread_id, "slow", input={"steps": ["after"]})
            assert after == {"steps": ["kept", "step 2", "after", "step 4"]}
    finally:
        cluster.stop()


@pytest.mark.timeout(120)
def test_sigkill_mid_load_loses_no_run_and_duplicates_no_turn(cluster):
    a = cluster.servers[0].url
    threads = [new_thread(a) for _ in range(4)]
    acknowledged: dict[str, list[tuple[str, str]]] = {thread_id: [] for thread_id in threads}
    with httpx.Client(base_url=a, timeout=10) as http:
        for n in range(3):
            for thread_id in threads:
                label = f"{thread_id[:8]} {n}"
                response = http.post(f"/threads/{thread_id}/runs", json=slow(label, 1))
                assert response.status_code == 200, response.text
                acknowledged[thread_id].append((response.json()["run_id"], label))
    time.sleep(0.3)  # the first run of each thread executes on A now
    cluster.kill(0)
    killed_at = time.monotonic()
    # Three runs of 1 s per thread, one after another, after the lease lapsed.
    took = wait_settled(cluster, LEASE + 15)
    check_threads(cluster, acknowledged)
    with cluster.db() as conn:
        resumed = conn.execute("SELECT count(*) FROM agent_server.runs WHERE attempt > 1").fetchone()
    assert resumed is not None and resumed[0] >= 1  # the runs A executed were taken over
    assert time.monotonic() - killed_at < LEASE + 15, took


@pytest.mark.timeout(120)
def test_every_process_killed_and_restarted_completes_every_run(cluster):
    urls = [server.url for server in cluster.servers]
    threads = [new_thread(urls[0]) for _ in range(4)]
    acknowledged: dict[str, list[tuple[str, str]]] = {thread_id: [] for thread_id in threads}
    for n in range(2):
        for i, thread_id in enumerate(threads):
            label = f"{thread_id[:8]} {n}"
            response = httpx.post(f"{urls[(n + i) % 3]}/threads/{thread_id}/runs", json=slow(label, 1), timeout=10)
            assert response.status_code == 200, response.text
            acknowledged[thread_id].append((response.json()["run_id"], label))
    time.sleep(0.4)
    for index in range(3):
        cluster.kill(index)
    for index in range(3):
        cluster.replace(index, wait=False)
    for server in cluster.servers:
        server.wait_ready()
    wait_settled(cluster, LEASE + 20)
    check_threads(cluster, acknowledged)


@pytest.mark.timeout(180)
def test_chaos_kills_lose_nothing_duplicate_nothing_and_leave_nothing_stuck(cluster_database):
    cluster = Cluster(cluster_database, 3, {"RUNS_MAX_ATTEMPTS": "20"}).start()
    try:
        _chaos(cluster, seconds=35)
    finally:
        cluster.stop()


def _chaos(cluster: Cluster, seconds: float) -> None:
    rng = random.Random()
    threads = [new_thread(cluster.servers[0].url) for _ in range(5)]
    acknowledged: dict[str, list[tuple[str, str]]] = {thread_id: [] for thread_id in threads}
    refused = 0
    unexpected: list[str] = []  # answers other than 200 (an exception in the loader would go unseen)
    stop = threading.Event()
    lock = threading.Lock()

    def load() -> None:
        nonlocal refused
        n = 0
        while not stop.is_set():
            thread_id = threads[n % len(threads)]
            label = f"{thread_id[:8]} {n}"
            n += 1
            url = rng.choice(cluster.servers).url
            try:
                response = httpx.post(f"{url}/threads/{thread_id}/runs", json=slow(label, 0.3), timeout=10)
            except httpx.TransportError:
                refused += 1  # a killed or starting process: not acknowledged
                continue
            if response.status_code == 200:
                with lock:
                    acknowledged[thread_id].append((response.json()["run_id"], label))
            else:
                unexpected.append(f"{response.status_code} {response.text}")
            time.sleep(0.2)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    kills = 0
    ends = time.monotonic() + seconds
    try:
        while time.monotonic() < ends:
            time.sleep(rng.uniform(2.0, 4.0))
            index = rng.randrange(len(cluster.servers))
            cluster.kill(index)
            kills += 1
            cluster.replace(index, wait=False)
    finally:
        stop.set()
        loader.join(15)
    for server in cluster.servers:
        server.wait_ready()
    took = wait_settled(cluster, 60)
    total = sum(len(runs) for runs in acknowledged.values())
    with cluster.db() as conn:
        resumed = conn.execute("SELECT count(*) FROM agent_server.runs WHERE attempt > 1").fetchone()
    print(
        f"chaos: {kills} kills, {total} runs acknowledged ({resumed[0] if resumed else 0} taken over), "
        f"{refused} refused, "
        f"settled {took:.1f} s after"
    )
    assert not unexpected, unexpected
    assert kills >= 8 and total >= 60, (kills, total)
    assert resumed is not None and resumed[0] >= 1  # the kills did land on runs
    # Any process joins any of those runs: the thread's values, each run's turn in them.
    for thread_id, runs in acknowledged.items():
        for run_id, label in rng.sample(runs, min(3, len(runs))):
            values = httpx.get(f"{rng.choice(cluster.servers).url}/threads/{thread_id}/runs/{run_id}/join").json()
            assert label in values["steps"], (label, values)
    check_threads(cluster, acknowledged)
