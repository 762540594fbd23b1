"""GET /metrics, read with prometheus-client's own parser: HTTP requests by route template, runs,
open streams, the pool, cron firings; and the figures of two processes sharing a metrics directory."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from src.web.metrics_dir import shared_metrics_dir
from tests.conftest import TEST_CONFIG, ServerProcess

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
WAIT = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0}}}


def scrape(url: str) -> tuple[Samples, dict[str, str]]:
    """Every sample by (name, sorted labels), and each family's type."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    types = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module", params=["memory", "postgres"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    env = {"CONFIG_FILE": str(TEST_CONFIG), "CRONS_POLL_SECONDS": "0.2"}
    if request.param == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("pg_url")
    process = ServerProcess(env=env).start()
    yield process
    assert process.stop() == 0, process.output


def test_requests_runs_and_streams_are_counted(server: ServerProcess):
    before, _ = scrape(server.url)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        thread = client.post("/threads", json={}).json()["thread_id"]
        for _ in range(3):
            assert client.post(f"/threads/{thread}/runs/wait", json=WAIT).status_code == 200
        failing = {**WAIT, "config": {"configurable": {"delay": 0, "fail": "on purpose"}}}
        client.post(f"/threads/{thread}/runs/wait", json=failing)
        assert client.get("/nowhere").status_code == 404
        assert client.post("/threads/search", json={"limit": "x"}).status_code == 422
    samples, types = scrape(server.url)
    wait_route = {"route": "/threads/{thread_id}/runs/wait", "method": "POST"}
    requests = "agent_server_http_requests_total"
    assert (
        value(samples, requests, status="200", **wait_route) - value(before, requests, status="200", **wait_route) == 4
    )
    assert value(samples, requests, route="unmatched", method="GET", status="404") >= 1
    assert value(samples, requests, route="/threads/search", method="POST", status="422") >= 1
    duration = "agent_server_http_request_duration_seconds_count"
    assert value(samples, duration, **wait_route) - value(before, duration, **wait_route) == 4
    assert types["agent_server_http_request_duration_seconds"] == "histogram"
    created = "agent_server_runs_created_total"
    assert value(samples, created) - value(before, created) == 4
    finished = "agent_server_runs_finished_total"
    assert value(samples, finished, status="success") - value(before, finished, status="success") == 3
    assert value(samples, finished, status="error") - value(before, finished, status="error") == 1
    assert value(samples, "agent_server_run_duration_seconds_count", status="success") >= 3
    assert value(samples, "agent_server_runs", status="pending") == 0
    assert value(samples, "agent_server_runs", status="running") == 0
    if "DATABASE_URL" in server.env:
        assert value(samples, "agent_server_db_pool_size") >= 1
        assert ("agent_server_db_pool_waiting", ()) in samples


def test_open_streams_and_running_runs(server: ServerProcess):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        thread = client.post("/threads", json={}).json()["thread_id"]
        opened = threading.Event()

        def follow() -> None:
            with client.stream("GET", f"/threads/{thread}/stream") as stream:
                opened.set()
                for line in stream.iter_lines():
                    if "run_done" in line:
                        return

        follower = threading.Thread(target=follow)
        follower.start()
        assert opened.wait(10)
        slow = {**WAIT, "config": {"configurable": {"delay": 1.5}}}
        assert client.post(f"/threads/{thread}/runs", json=slow).status_code == 200
        time.sleep(0.3)
        samples, _ = scrape(server.url)
        assert value(samples, "agent_server_sse_streams_open") == 1
        assert value(samples, "agent_server_runs", status="running") == 1
        follower.join(10)
    for _ in range(50):
        samples, _ = scrape(server.url)
        if value(samples, "agent_server_sse_streams_open") == 0:
            break
        time.sleep(0.1)
    assert value(samples, "agent_server_sse_streams_open") == 0
    assert value(samples, "agent_server_runs", status="running") == 0


def test_cron_firings_are_counted(server: ServerProcess):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        thread = client.post("/threads", json={}).json()["thread_id"]
        cron = client.post(f"/threads/{thread}/runs/crons", json={**WAIT, "schedule": "* * * * * *"}).json()
        for _ in range(50):
            samples, _ = scrape(server.url)
            if value(samples, "agent_server_cron_firings_total", result="created") >= 2:
                break
            time.sleep(0.1)
        assert client.delete(f"/runs/crons/{cron['cron_id']}").status_code == 204
    assert value(samples, "agent_server_cron_firings_total", result="created") >= 2


def test_two_processes_sharing_a_metrics_directory_report_together(pg_url: str, server_factory):
    environ = dict(os.environ)
    with shared_metrics_dir(environ) as directory:
        env = {"CONFIG_FILE": str(TEST_CONFIG), "DATABASE_URL": pg_url, "PROMETHEUS_MULTIPROC_DIR": directory}
        first, second = server_factory(env=env).start(), server_factory(env=env).start()
        for process, count in ((first, 2), (second, 3)):
            with httpx.Client(base_url=process.url, timeout=30) as client:
                for _ in range(count):
                    assert client.post("/runs/wait", json=WAIT).status_code == 200
        time.sleep(1.2)  # each process samples its gauges every second
        for process in (first, second):
            samples, _ = scrape(process.url)
            assert value(samples, "agent_server_runs_created_total") == 5
            assert (
                value(samples, "agent_server_http_requests_total", route="/runs/wait", method="POST", status="200") == 5
            )
            assert value(samples, "agent_server_db_pool_size") >= 2  # both pools, at least one connection each
        both_pools = value(samples, "agent_server_db_pool_size")
        assert first.stop() == 0
        # A stopped process's counts stay; its live gauges (its pool) no longer count.
        samples, _ = scrape(second.url)
        assert value(samples, "agent_server_runs_created_total") == 5
        assert 1 <= value(samples, "agent_server_db_pool_size") < both_pools
    assert not os.path.exists(directory)
    assert "PROMETHEUS_MULTIPROC_DIR" not in environ
