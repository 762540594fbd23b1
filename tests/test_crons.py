"""Crons (client.crons): schedules, the endpoints' checks, firing on time with an injectable clock
on memory and on Postgres, no burst after downtime, one run per firing across several
schedulers and across two server processes, the Python SDK end to end, and, with auth, runs
executing as the cron's creator wherever they fire (the auth matrix, tests/test_auth_matrix.py,
covers every cron route for two users)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from langgraph_sdk import get_client

from src.containers import Container, provide
from src.services.crons.schedule import check_schedule, next_run
from src.services.crons.scheduler import CronScheduler
from src.services.crons.wakeup import CronWakeup
from src.services.errors import InvalidRequest
from src.settings import load_settings
from src.web.requests.runs import parse_run_request
from tests.conftest import TEST_CONFIG, database_url
from tests.inprocess import ApiError, InProcessApi
from tests.test_auth_module import AUTH_CONFIG

START = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)  # a Monday
FAST = {"configurable": {"delay": 0}}


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


def test_schedules_are_read_by_croniter_in_utc_or_the_given_zone():
    assert next_run("*/5 * * * *", START) == START + timedelta(minutes=5)
    # 9:00 in New York is 14:00 UTC in winter, 13:00 UTC in summer.
    assert next_run("0 9 * * *", START, "America/New_York") == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    assert next_run("0 9 * * *", datetime(2026, 7, 1, tzinfo=UTC), "America/New_York") == datetime(
        2026, 7, 1, 13, 0, tzinfo=UTC
    )
    assert next_run("* * * * * */10", START) == START + timedelta(seconds=10)  # croniter's seconds field
    assert next_run("@hourly", START) == START + timedelta(hours=1)
    assert check_schedule(" 0 9 * * 1-5 ") == "0 9 * * 1-5"
    for bad, reason in (("* * * *", "has 4 fields"), ("61 * * * *", "not a valid cron schedule"), ("", "0 fields")):
        with pytest.raises(InvalidRequest, match=reason):
            check_schedule(bad)


def make_container(url: str | None, clock: FakeClock, config: Path = TEST_CONFIG, **settings: str) -> Container:
    """A container whose scheduler reads `clock` and steps only when a test says so (no task)."""
    container = Container()
    env = {"CRONS_POLL_SECONDS": "3600", **({"DATABASE_URL": url} if url else {}), **settings}
    container.config.from_dict(load_settings(config, environ=env))
    container.cron_clock.override(providers.Object(clock))
    container.cron_scheduler.override(
        providers.Singleton(
            CronScheduler,
            crons=container.cron_repository,
            runs=container.run_service,
            parse_run=providers.Object(parse_run_request),
            clock=container.cron_clock,
            wakeup=container.cron_wakeup,
            poll_seconds=3600.0,
            metrics=container.metrics,
        )
    )
    return container


class Crons:
    """The in-process API and the scheduler of one container."""

    def __init__(self, api: InProcessApi, clock: FakeClock, headers: dict[str, str] | None = None) -> None:
        self.api = api
        self.clock = clock
        self.headers = headers  # a user's credentials, with auth

    async def step(self) -> list[str | None]:
        scheduler = await provide(self.api.container.cron_scheduler)
        return await scheduler.step()

    async def thread(self) -> str:
        return (await self.api.call("POST", "/threads", {}, headers=self.headers))["thread_id"]

    async def create(self, thread_id: str | None = None, **body: Any) -> dict[str, Any]:
        path = "/runs/crons" if thread_id is None else f"/threads/{thread_id}/runs/crons"
        return await self.api.call(
            "POST", path, {"assistant_id": "slow", "config": FAST, "input": {"steps": []}, **body}, headers=self.headers
        )

    async def runs(self, thread_id: str) -> list[dict[str, Any]]:
        return await self.api.call("GET", f"/threads/{thread_id}/runs", query={"limit": "100"}, headers=self.headers)

    async def error(self, method: str, path: str, body: Any = None) -> tuple[int, str]:
        with pytest.raises(ApiError) as caught:
            await self.api.call(method, path, body)
        return caught.value.status, caught.value.detail


@pytest.fixture(params=["memory", "postgres"])
async def crons(request: pytest.FixtureRequest) -> AsyncIterator[Crons]:
    url = database_url(request.getfixturevalue("fresh_database")) if request.param == "postgres" else None
    clock = FakeClock()
    api = await InProcessApi(make_container(url, clock)).start()
    yield Crons(api, clock)
    await api.stop()


async def wait_runs_done(crons: Crons, thread_id: str) -> list[dict[str, Any]]:
    for _ in range(200):
        runs = await crons.runs(thread_id)
        if all(run["status"] not in ("pending", "running") for run in runs):
            return runs
        await asyncio.sleep(0.02)
    raise AssertionError(f"runs of {thread_id} still going: {runs}")


async def test_a_cron_fires_at_its_time_once_and_resumes_without_a_burst(crons: Crons):
    thread = await crons.thread()
    cron = await crons.create(thread, schedule="*/5 * * * *", input={"steps": []}, metadata={"job": "report"})
    assert cron["next_run_date"] == "2026-01-05T12:05:00+00:00"
    assert cron["thread_id"] == thread and cron["on_run_completed"] is None and cron["enabled"] is True
    assert cron["payload"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    crons.clock.advance(minutes=4, seconds=59)
    assert await crons.step() == []
    crons.clock.advance(seconds=1)
    (run_id,) = await crons.step()
    assert run_id is not None
    (run,) = await wait_runs_done(crons, thread)
    assert run["run_id"] == run_id and run["status"] == "success"
    assert run["metadata"]["job"] == "report"
    assert run["kwargs"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    # Down for an hour: eleven firings were missed; one run now, then the schedule from here.
    crons.clock.advance(hours=1, seconds=30)
    assert len(await crons.step()) == 1
    assert await crons.step() == []
    current = await crons.api.call("GET", f"/runs/crons/{cron['cron_id']}")
    assert current["next_run_date"] == "2026-01-05T13:10:00+00:00"
    assert len(await wait_runs_done(crons, thread)) == 2


async def test_delete_disable_and_end_time_stop_firing(crons: Crons):
    thread = await crons.thread()
    deleted = await crons.create(thread, schedule="* * * * *")
    disabled = await crons.create(thread, schedule="* * * * *", enabled=False)
    ended = await crons.create(thread, schedule="* * * * *", end_time="2026-01-05T12:00:30")
    await crons.api.call("DELETE", f"/runs/crons/{deleted['cron_id']}")
    assert await crons.error("GET", f"/runs/crons/{deleted['cron_id']}") == (
        404,
        f"Cron {deleted['cron_id']!r} not found",
    )
    crons.clock.advance(minutes=1)
    assert await crons.step() == []
    # Enabled again, and its end cleared: each fires once, for the minute they were due.
    await crons.api.call("PATCH", f"/runs/crons/{disabled['cron_id']}", {"enabled": True})
    await crons.api.call("PATCH", f"/runs/crons/{ended['cron_id']}", {"end_time": None})
    assert len(await crons.step()) == 2
    assert len(await wait_runs_done(crons, thread)) == 2


async def test_stateless_crons_delete_or_keep_their_threads(crons: Crons):
    await crons.create(schedule="0 * * * *", input={"steps": []}, metadata={"kind": "gone"})
    kept = await crons.create(schedule="0 * * * *", on_run_completed="keep", metadata={"kind": "kept"})
    assert kept["thread_id"] is None and kept["on_run_completed"] == "keep"
    crons.clock.advance(hours=1)
    assert len(await crons.step()) == 2
    for _ in range(200):
        threads = await crons.api.call("POST", "/threads/search", {"metadata": {"stateless": True}})
        if len(threads) == 1 and threads[0]["status"] == "idle":
            break
        await asyncio.sleep(0.02)
    (thread,) = threads  # the 'delete' cron's thread went after its run; the 'keep' one stays
    (run,) = await crons.runs(thread["thread_id"])
    assert run["metadata"]["kind"] == "kept"


async def test_patch_search_and_count(crons: Crons):
    thread = await crons.thread()
    first = await crons.create(thread, schedule="0 9 * * *", metadata={"team": "a"})
    second = await crons.create(schedule="30 8 * * *", metadata={"team": "b"}, timezone="Europe/Paris")
    assert second["next_run_date"] == "2026-01-06T07:30:00+00:00"  # 08:30 in Paris, in winter
    patched = await crons.api.call(
        "PATCH",
        f"/runs/crons/{first['cron_id']}",
        {"schedule": "0 18 * * *", "metadata": {"owner": "ada"}, "input": {"steps": ["x"]}},
    )
    assert patched["schedule"] == "0 18 * * *" and patched["next_run_date"] == "2026-01-05T18:00:00+00:00"
    assert patched["metadata"] == {"team": "a", "owner": "ada"}
    assert (
        patched["payload"]["input"] == {"steps": ["x"]} and patched["payload"]["assistant_id"] == first["assistant_id"]
    )
    assert patched["payload"]["config"]["configurable"]["cron_id"] == first["cron_id"]

    response = await crons.api.respond("POST", "/runs/crons/search", {"limit": 1, "sort_by": "next_run_date"})
    assert response.headers.get("x-pagination-next") == "1"
    found = await crons.api.call("POST", "/runs/crons/search", {"sort_by": "next_run_date", "sort_order": "asc"})
    assert [c["cron_id"] for c in found] == [first["cron_id"], second["cron_id"]]  # today 18:00, tomorrow 07:30
    by_thread = await crons.api.call("POST", "/runs/crons/search", {"thread_id": thread, "select": ["cron_id"]})
    assert by_thread == [{"cron_id": first["cron_id"]}]
    assert await crons.api.call("POST", "/runs/crons/search", {"metadata": {"team": "b"}}) == [
        await crons.api.call("GET", f"/runs/crons/{second['cron_id']}")
    ]
    assert await crons.api.call("POST", "/runs/crons/count", {}) == 2
    assert await crons.api.call("POST", "/runs/crons/count", {"assistant_id": "slow"}) == 2  # a graph id works
    assert await crons.api.call("POST", "/runs/crons/count", {"assistant_id": first["assistant_id"]}) == 2
    assert await crons.api.call("POST", "/runs/crons/count", {"assistant_id": "agent"}) == 0
    assert await crons.api.call("POST", "/runs/crons/count", {"metadata": {"owner": "ada"}}) == 1
    # A thread's crons go with it.
    await crons.api.call("DELETE", f"/threads/{thread}")
    assert await crons.api.call("POST", "/runs/crons/count", {}) == 1


async def test_bad_cron_requests_are_4xx_naming_the_field(crons: Crons):
    thread = await crons.thread()
    missing = "00000000-0000-0000-0000-000000000001"
    cases = [
        ("POST", "/runs/crons", {"assistant_id": "slow"}, 422, "schedule is required"),
        ("POST", "/runs/crons", {"assistant_id": "slow", "schedule": "* * *"}, 422, "has 3 fields"),
        (
            "POST",
            "/runs/crons",
            {"assistant_id": "slow", "schedule": "* * * * *", "timezone": "Mars/Base"},
            422,
            "IANA",
        ),
        ("POST", "/runs/crons", {"assistant_id": "slow", "schedule": "* * * * *", "end_time": "soon"}, 422, "end_time"),
        ("POST", "/runs/crons", {"assistant_id": "slow", "schedule": "* * * * *", "colour": 1}, 422, "unknown field"),
        (
            "POST",
            "/runs/crons",
            {"assistant_id": "slow", "schedule": "* * * * *", "stream_mode": "x"},
            422,
            "stream_mode",
        ),
        (
            "POST",
            "/runs/crons",
            {"assistant_id": "nobody", "schedule": "* * * * *"},
            404,
            "Assistant 'nobody' not found",
        ),
        ("POST", f"/threads/{missing}/runs/crons", {"assistant_id": "slow", "schedule": "* * * * *"}, 404, "not found"),
        (
            "POST",
            f"/threads/{thread}/runs/crons",
            {"assistant_id": "slow", "schedule": "* * * * *", "on_run_completed": "keep"},
            422,
            "stateless crons",
        ),
        ("PATCH", f"/runs/crons/{missing}", {}, 422, "nothing to update"),
        ("PATCH", f"/runs/crons/{missing}", {"enabled": True}, 404, "not found"),
        ("PATCH", f"/runs/crons/{missing}", {"assistant_id": "agent"}, 422, "unknown field 'assistant_id'"),
        ("DELETE", f"/runs/crons/{missing}", None, 404, "not found"),
        ("GET", "/runs/crons/nope", None, 422, "cron_id must be a UUID"),
        ("POST", "/runs/crons/search", {"limit": 0}, 422, "limit must be between 1 and 1000"),
        ("POST", "/runs/crons/search", {"sort_by": "schedule"}, 422, "sort_by must be one of"),
        ("POST", "/runs/crons/search", {"select": ["colour"]}, 422, "unknown field 'colour'"),
    ]
    for method, path, body, status, detail in cases:
        got_status, got_detail = await crons.error(method, path, body)
        assert (got_status, detail in got_detail) == (status, True), (method, path, body, got_detail)
    assert await crons.api.call("POST", "/runs/crons/count", {}) == 0


async def test_one_run_per_firing_with_two_schedulers_on_one_database(fresh_database):
    """Two containers (as two processes would) on one database, stepping at the same moment."""
    url = database_url(fresh_database)
    clock = FakeClock()
    first = await InProcessApi(make_container(url, clock)).start()
    second = await InProcessApi(make_container(url, clock)).start()
    try:
        a, b = Crons(first, clock), Crons(second, clock)
        thread = await a.thread()
        for _ in range(5):
            await a.create(thread, schedule="* * * * *")
        for minute in range(3):
            clock.advance(minutes=1)
            fired = await asyncio.gather(a.step(), b.step(), a.step(), b.step())
            assert sum(len(each) for each in fired) == 5, (minute, fired)
        assert len(await wait_runs_done(a, thread)) == 15
    finally:
        await first.stop()
        await second.stop()


def test_one_firing_across_two_server_processes(fresh_database, server_factory):
    """Two real servers on one database, a cron due every second: each second one run."""
    env = {"CONFIG_FILE": str(TEST_CONFIG), "DATABASE_URL": database_url(fresh_database), "CRONS_POLL_SECONDS": "0.2"}
    first, second = server_factory(env=env).start(), server_factory(env=env).start()
    with httpx.Client(base_url=first.url, timeout=10) as client:
        thread = client.post("/threads", json={}).json()["thread_id"]
        cron = client.post(
            f"/threads/{thread}/runs/crons",
            json={"assistant_id": "slow", "schedule": "* * * * * *", "config": FAST},
        ).json()
        time.sleep(4.2)
        assert client.delete(f"/runs/crons/{cron['cron_id']}").status_code == 204
        time.sleep(1.5)  # the last firing's run settles; none follow
        runs = client.get(f"/threads/{thread}/runs", params={"limit": 100}).json()
    stamps = sorted(datetime.fromisoformat(run["created_at"]) for run in runs)
    assert 3 <= len(stamps) <= 6, stamps
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) > 0.5, f"two runs for one firing: {stamps}"
    fired_lines = [
        line
        for server in (first, second)
        for line in server.output.splitlines()
        if f"cron {cron['cron_id']} fired" in line
    ]
    assert len(fired_lines) == len(stamps)
    with httpx.Client(base_url=second.url, timeout=10) as client:
        assert len(client.get(f"/threads/{thread}/runs", params={"limit": 100}).json()) == len(stamps)


async def test_the_python_sdk_drives_crons_end_to_end(server_factory):
    server = server_factory(env={"CONFIG_FILE": str(TEST_CONFIG), "CRONS_POLL_SECONDS": "0.5"}).start()
    client = get_client(url=server.url)
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(
        thread["thread_id"], "slow", schedule="* * * * * *", input={"steps": []}, config=FAST, metadata={"n": 1}
    )
    stateless = await client.crons.create(
        "slow", schedule="0 0 1 1 *", input={"steps": []}, on_run_completed="keep", end_time=START + timedelta(days=400)
    )
    assert stateless["end_time"] == "2027-02-09T12:00:00+00:00"
    assert len(await client.crons.search()) == 2
    assert [c["cron_id"] for c in await client.crons.search(thread_id=thread["thread_id"])] == [cron["cron_id"]]
    assert await client.crons.count(metadata={"n": 1}) == 1
    updated = await client.crons.update(stateless["cron_id"], enabled=False, end_time=None)
    assert updated["enabled"] is False and updated["end_time"] is None
    for _ in range(60):
        runs = await client.runs.list(thread["thread_id"])
        if len(runs) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(runs) >= 2 and runs[0]["metadata"]["n"] == 1
    await client.crons.delete(cron["cron_id"])
    await client.crons.delete(stateless["cron_id"])
    assert await client.crons.count() == 0
    info = httpx.get(f"{server.url}/info").json()
    assert info["flags"]["crons"] is True


ALICE = {"Authorization": "Bearer alice-token"}  # tests/auth/matrix_auth.py's users
BOB = {"Authorization": "Bearer bob-token"}


@pytest.mark.parametrize("backend", ["memory", "postgres"])
async def test_a_crons_runs_execute_as_its_creator_wherever_they_fire(backend: str, request: pytest.FixtureRequest):
    """With auth, alice makes a thread cron and a stateless one; on Postgres another container sharing the
    database (as another process would) fires them, from the caller stored with each cron."""
    url = database_url(request.getfixturevalue("fresh_database")) if backend == "postgres" else None
    clock = FakeClock()
    first = await InProcessApi(make_container(url, clock, AUTH_CONFIG, AUTH_PATH="./matrix_auth.py:auth")).start()
    second = first
    if url is not None:
        second = await InProcessApi(make_container(url, clock, AUTH_CONFIG, AUTH_PATH="./matrix_auth.py:auth")).start()
    try:
        alice, firing = Crons(first, clock, ALICE), Crons(second, clock)
        thread = await alice.thread()
        body = {"assistant_id": "whoami", "schedule": "*/5 * * * *", "input": {}, "config": {}}
        cron = await alice.create(thread, **body)
        await alice.create(**body, on_run_completed="keep", metadata={"job": "nightly"})
        assert cron["user_id"] == "alice" and "caller" not in cron
        clock.advance(minutes=5)
        fired = await firing.step()
        assert len(fired) == 2 and all(fired)
        (run,) = await wait_runs_done(alice, thread)
        assert run["status"] == "success" and run["metadata"]["owner"] == "alice"
        state = await first.call("GET", f"/threads/{thread}/state", headers=ALICE)
        assert state["values"]["user_id"] == state["values"]["server_user"] == "alice"
        assert state["values"]["permissions"] == ["threads:delete"] and state["values"]["user"]["team"] == "red"
        # the stateless cron's (kept) thread is alice's, as a stateless run's is
        for _ in range(200):
            (kept,) = await first.call("POST", "/threads/search", {"metadata": {"job": "nightly"}}, headers=ALICE)
            if kept["status"] == "idle":
                break
            await asyncio.sleep(0.02)
        assert kept["metadata"]["owner"] == "alice" and kept["values"]["user_id"] == "alice"
        assert await first.call("POST", "/threads/search", {"metadata": {"job": "nightly"}}, headers=BOB) == []
    finally:
        await first.stop()
        if second is not first:
            await second.stop()


async def test_a_cron_cannot_name_its_caller(crons: Crons):
    """Without auth too, as for runs: the caller keys are the server's; one stored before is dropped."""
    thread = await crons.thread()
    forged = {"configurable": {"langgraph_auth_user_id": "admin"}}
    status, detail = await crons.error(
        "POST", "/runs/crons", {"assistant_id": "slow", "schedule": "* * * * *", "config": forged}
    )
    assert status == 422 and "langgraph_auth_user_id is reserved" in detail
    cron = await crons.create(thread, schedule="* * * * *")
    status, detail = await crons.error("PATCH", f"/runs/crons/{cron['cron_id']}", {"config": forged})
    assert status == 422 and "reserved" in detail
    scheduler = await provide(crons.api.container.cron_scheduler)
    stored = {**cron, "caller": None, "payload": {**cron["payload"], "config": forged}}
    assert scheduler.run_body(stored)["config"] == {"configurable": {}}


async def test_the_scheduler_stops_when_cancelled_as_it_is_woken():
    """A shutdown right after a cron was created (the scheduler woken, not yet running) stops it: the
    wakeup's wait never swallows the cancel (asyncio.wait_for on Python 3.11 did)."""
    cancelled = 0
    for yields in range(4):
        wakeup = CronWakeup()
        waiting = asyncio.create_task(wakeup.wait(60))
        await asyncio.sleep(0)
        wakeup.notify()
        for _ in range(yields):
            await asyncio.sleep(0)
        if waiting.done():
            continue
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, 1)
        cancelled += 1
    assert cancelled >= 1
