"""GET /metrics: the server's figures in Prometheus text format (prometheus-client).

`Metrics` holds the counters, histograms and gauges, in a registry of its own (one per
container). The request pipeline counts HTTP requests by route template, the run service
reports runs created and finished (RunObserver), the cron scheduler its firings, and the
pool's figures and the open SSE streams are sampled when scraped. Pending and running runs
are counted where run records live at each scrape, so on Postgres they cover every server.

Several processes (`--workers N`): prometheus-client's multiprocess mode. The parent sets
PROMETHEUS_MULTIPROC_DIR to a fresh directory before any process imports prometheus_client
(see src/web/metrics_dir.py); each process then writes its values there, a scrape of any of
them adds up all, and the gauges (pool, streams) count live processes only. Each process
also samples its own gauges every second then, so a scrape of another one sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from src.services.database import Pool, one_line
from src.services.runs.stats import RunCounter

logger = logging.getLogger(__name__)

# Seconds: from a fast read to a slow `runs/wait` or a long stream's first byte.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds from a run's creation to its end: queueing included, up to long agent runs.
RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
# How often each process writes its gauges when several processes share the figures.
SAMPLE_SECONDS = 1.0
# The classic text format, which every Prometheus version reads (the metric names need no escaping).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Gauges of every live process add up; a stopped process's drop out (multiprocess mode).
LIVE_SUM: dict[str, Any] = {"multiprocess_mode": "livesum"}


class _Families:
    """Metric families computed for one scrape (a prometheus-client collector)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


class Metrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        # No `<name>_created` timestamp series next to every counter and histogram: they double
        # the scrape and Prometheus does not use them (multiprocess mode never writes them).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        registry = self.registry
        self.http_requests = Counter(
            "agent_server_http_requests",
            "HTTP requests answered, by route template (unmatched: no route), method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "agent_server_http_request_duration_seconds",
            "Seconds from a request to its response (to the first byte of a stream)",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.runs_created = Counter("agent_server_runs_created", "Runs created", registry=registry)
        self.runs_finished = Counter(
            "agent_server_runs_finished", "Runs finished, by status", ["status"], registry=registry
        )
        self.run_duration = Histogram(
            "agent_server_run_duration_seconds",
            "Seconds from a run's creation to its end (waiting included), by status",
            ["status"],
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self.cron_firings = Counter(
            "agent_server_cron_firings",
            "Cron firings, by result: created (a run), refused (e.g. busy thread), failed",
            ["result"],
            registry=registry,
        )
        self.sse_streams = Gauge(
            "agent_server_sse_streams_open", "Server-sent event streams being served", **LIVE_SUM, registry=registry
        )
        # The pool's gauges exist once there is a pool to sample (none on in-memory persistence).
        self._pool_gauges: tuple[Gauge, Gauge, Gauge] | None = None
        self._run_started: dict[str, float] = {}
        # The bodies of the streaming responses handed out: open until their generator ends.
        self._streams: weakref.WeakSet[Any] = weakref.WeakSet()

    # Reported by the pipeline, the run service and the scheduler --------------------------

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_duration.labels(route, method).observe(seconds)

    def stream_opened(self, body: Any) -> None:
        """A streaming response's body (an async generator): open until it has ended."""
        self._streams.add(body)

    def run_created(self, run_id: str) -> None:
        self.runs_created.inc()
        self._run_started[run_id] = time.monotonic()

    def run_finished(self, run_id: str, status: str) -> None:
        self.runs_finished.labels(status).inc()
        started = self._run_started.pop(run_id, None)
        if started is not None:
            self.run_duration.labels(status).observe(time.monotonic() - started)

    def cron_fired(self, result: str) -> None:
        self.cron_firings.labels(result).inc()

    # Scraping ---------------------------------------------------------------------------

    def open_streams(self) -> int:
        """Streams being served: a body that has ended (finished, closed, dropped by Robyn) has no
        frame; one whose client went away is left parked at a `yield` (Robyn stops pulling) until
        src/web/sse.py closes it, while a served one is awaiting its next event (`ag_running`)
        nearly all the time: Robyn pulls again as soon as it has sent a chunk."""
        return sum(
            1
            for body in list(self._streams)
            if getattr(body, "ag_frame", None) is not None and getattr(body, "ag_running", False)
        )

    def _pool_gauges_made(self) -> tuple[Gauge, Gauge, Gauge]:
        if self._pool_gauges is None:
            self._pool_gauges = (
                Gauge("agent_server_db_pool_size", "Database connections open", **LIVE_SUM, registry=self.registry),
                Gauge(
                    "agent_server_db_pool_idle",
                    "Database connections idle in the pool",
                    **LIVE_SUM,
                    registry=self.registry,
                ),
                Gauge(
                    "agent_server_db_pool_waiting",
                    "Requests waiting for a database connection",
                    **LIVE_SUM,
                    registry=self.registry,
                ),
            )
        return self._pool_gauges

    def sample(self, pool: Pool | None) -> None:
        """Write this process's gauges: open streams and the pool's figures."""
        self.sse_streams.set(self.open_streams())
        if pool is not None:
            stats = pool.get_stats()
            size, idle, waiting = self._pool_gauges_made()
            size.set(stats.get("pool_size", 0))
            idle.set(stats.get("pool_available", 0))
            waiting.set(stats.get("requests_waiting", 0))

    def exposition(self, active_runs: dict[str, int] | None) -> bytes:
        """The Prometheus text of every figure: this registry's, or every process's in
        multiprocess mode, plus the pending and running runs counted for this scrape."""
        registry = CollectorRegistry()
        if self.multiprocess_dir:
            MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        else:
            registry.register(self.registry)
        if active_runs is not None:
            runs = GaugeMetricFamily("agent_server_runs", "Runs pending and running, by status", labels=["status"])
            for status, count in sorted(active_runs.items()):
                runs.add_metric([status], count)
            registry.register(_Families([runs]))
        return bytes(generate_latest(registry))

    def process_stopped(self) -> None:
        """In multiprocess mode, this process's live gauges no longer count."""
        if self.multiprocess_dir:
            mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


class MetricsService:
    """What GET /metrics answers."""

    def __init__(self, metrics: Metrics, runs: RunCounter, pool: Pool | None) -> None:
        self._metrics = metrics
        self._runs = runs
        self._pool = pool

    def sample(self) -> None:
        self._metrics.sample(self._pool)

    async def scrape(self) -> bytes:
        self.sample()
        try:
            active: dict[str, int] | None = await self._runs.active_runs()
        except Exception as exc:  # the database is away: every other figure still answers
            logger.warning("metrics: runs not counted: %s", one_line(exc))
            active = None
        return self._metrics.exposition(active)


def init_metrics(multiprocess_dir: str | None) -> Iterator[Metrics]:
    """Resource (synchronous: the request pipeline, built before the server starts, needs it):
    the metrics; in multiprocess mode, this process's gauges are dropped at shutdown."""
    metrics = Metrics(multiprocess_dir)
    try:
        yield metrics
    finally:
        metrics.process_stopped()


async def _sample_every(service: MetricsService, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        service.sample()


async def init_metrics_service(metrics: Metrics, runs: RunCounter, pool: Pool | None) -> AsyncIterator[MetricsService]:
    """Resource: the scrape service; with several processes, each samples its gauges every second."""
    service = MetricsService(metrics, runs, pool)
    sampler = asyncio.create_task(_sample_every(service, SAMPLE_SECONDS)) if metrics.multiprocess_dir else None
    try:
        yield service
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
