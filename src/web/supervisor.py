"""`--workers N`: N server processes on one port, started and kept by one parent process.

Each worker is a whole server (`python -m src.web --worker-of <parent pid>`): its own
container, pool and run slots (`runs.max_concurrency` each); Postgres coordinates them as it
does separate servers. They bind the same address with SO_REUSEPORT (Robyn's socket sets it)
and the kernel spreads connections over them.

The parent imports neither Robyn nor the container. It checks the configuration and the
port, enters the shared metrics directory (src/web/metrics_dir.py), starts the workers,
forwards SIGTERM/SIGINT to them and waits for them to stop, and replaces one that dies. A
worker tells the parent it has started through a pipe: one byte once its start-up handler is
done. The first worker starts alone (it applies the migrations), the others once it is
ready. A worker that exits before it is ready failed to start: while the server starts, that
stops the whole server with the worker's exit code (a config error stays exit 2, one line); later,
its replacement is retried with a growing delay (the database may be down for a while). A
worker whose parent is gone (SIGKILLed) stops itself, handing its runs back to the queue.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from src.web.preflight import CONFIG_ERROR_EXIT, RUNTIME_ERROR_EXIT

logger = logging.getLogger("agent_server.supervisor")
# A worker's own shutdown gives up after 4 s (src/web/app.py); this leaves it room to exit.
STOP_GRACE_SECONDS = 10.0
# A replacement that keeps failing waits 0.5, 1, 2, ... up to 30 s between attempts; one
# that has served this long since its start counts as healthy again.
FIRST_RETRY_SECONDS = 0.5
LAST_RETRY_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 30.0
TICK_SECONDS = 0.2
PARENT_CHECK_SECONDS = 1.0


@dataclass
class Worker:
    slot: int
    process: subprocess.Popen[bytes]
    ready_pipe: int | None  # the read end, until the worker says it is ready or dies
    started: float = field(default_factory=time.monotonic)
    ready: bool = False


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


class Supervisor:
    """Starts `count` workers from `command` (plus its --worker-of/--ready-fd) and keeps them."""

    def __init__(self, command: Sequence[str], count: int, environ: Mapping[str, str]) -> None:
        self._command = list(command)
        self._count = count
        self._environ = dict(environ)
        self._workers: dict[int, Worker] = {}
        self._retry_at: dict[int, float] = {}  # slot -> when to start its replacement
        self._retry_delay: dict[int, float] = {}
        self._stop_signal: int | None = None
        self._serving = False

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (exit 0) or until a worker fails to start (its exit code)."""
        previous = {signum: signal.signal(signum, self._on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            # The first worker alone: it applies the migrations, and a configuration that
            # fails in it (a graph that does not import) is told once, in its one line.
            self._start(0)
            while self._stop_signal is None:
                failed = self._tick()
                if failed is not None:
                    self._stop_all()
                    return failed
            logger.info("received %s: stopping %d workers", signal.Signals(self._stop_signal).name, self._count)
            return self._stop_all()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_signal = signum

    def _start(self, slot: int) -> None:
        read_end, write_end = os.pipe()
        try:
            process = subprocess.Popen(
                [*self._command, "--worker-of", str(os.getpid()), "--ready-fd", str(write_end)],
                env=self._environ,
                pass_fds=(write_end,),
            )
        except OSError:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._workers[slot] = Worker(slot, process, read_end)
        logger.info("worker %d: started (pid %d)", slot, process.pid)

    def _tick(self) -> int | None:
        """Wait a little for news from the workers; the exit code to stop with when one failed to start."""
        pipes = {worker.ready_pipe: worker for worker in self._workers.values() if worker.ready_pipe is not None}
        readable, _, _ = select.select(list(pipes), [], [], TICK_SECONDS)
        for pipe in readable:
            self._read_ready(pipes[pipe])
        now = time.monotonic()
        for slot, worker in list(self._workers.items()):
            returncode = worker.process.poll()
            if returncode is None:
                continue
            self._close_pipe(worker)
            del self._workers[slot]
            if not self._serving:
                if returncode == CONFIG_ERROR_EXIT:
                    return CONFIG_ERROR_EXIT  # the worker's config error line says it all
                logger.error("worker %d failed to start (%s): stopping", slot, describe_exit(returncode))
                return RUNTIME_ERROR_EXIT
            self._schedule_replacement(worker, returncode, now)
        for slot, due in list(self._retry_at.items()):
            if now >= due:
                del self._retry_at[slot]
                self._start(slot)
        if not self._serving and len(self._workers) == 1 and 0 in self._workers and self._workers[0].ready:
            for slot in range(1, self._count):
                self._start(slot)
        if not self._serving and len(self._workers) == self._count and all(w.ready for w in self._workers.values()):
            self._serving = True
            pids = ", ".join(str(worker.process.pid) for worker in self._workers.values())
            logger.info("%d workers serving (pids %s)", self._count, pids)
        return None

    def _read_ready(self, worker: Worker) -> None:
        assert worker.ready_pipe is not None
        if os.read(worker.ready_pipe, 1):
            worker.ready = True
            if self._serving:
                logger.info("worker %d: serving again (pid %d)", worker.slot, worker.process.pid)
        self._close_pipe(worker)  # ready, or the end of the pipe: the worker died first

    def _close_pipe(self, worker: Worker) -> None:
        if worker.ready_pipe is not None:
            os.close(worker.ready_pipe)
            worker.ready_pipe = None

    def _schedule_replacement(self, worker: Worker, returncode: int, now: float) -> None:
        healthy = worker.ready and now - worker.started >= HEALTHY_AFTER_SECONDS
        if healthy or worker.slot not in self._retry_delay:
            delay = 0.0 if worker.ready else FIRST_RETRY_SECONDS
        else:
            delay = min(LAST_RETRY_SECONDS, max(FIRST_RETRY_SECONDS, self._retry_delay[worker.slot] * 2))
        self._retry_delay[worker.slot] = delay
        self._retry_at[worker.slot] = now + delay
        logger.warning(
            "worker %d (pid %d) %s %s; a replacement starts in %.1f s",
            worker.slot,
            worker.process.pid,
            "exited" if worker.ready else "failed to start",
            f"({describe_exit(returncode)})",
            delay,
        )

    def _stop_all(self) -> int:
        """SIGTERM to every worker, then wait; SIGKILL what is left after the grace period."""
        self._retry_at.clear()
        for worker in self._workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        clean = True
        for worker in self._workers.values():
            try:
                returncode = worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("worker %d (pid %d) did not stop in time: killed", worker.slot, worker.process.pid)
                worker.process.kill()
                returncode = worker.process.wait()
            self._close_pipe(worker)
            clean = clean and returncode == 0
        self._workers.clear()
        return 0 if clean else RUNTIME_ERROR_EXIT


class SupervisorLink:
    """A worker's side of the link: says when it is ready, and stops when its parent is gone."""

    def __init__(self, parent_pid: int, ready_fd: int) -> None:
        self._parent_pid = parent_pid
        self._ready_fd = ready_fd

    def watch_parent(self) -> None:
        """SIGTERM to this process once the parent is gone: it stops as on any SIGTERM."""
        threading.Thread(target=self._watch, name="watch the supervisor", daemon=True).start()

    def _watch(self) -> None:
        while os.getppid() == self._parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        logger.warning("the supervising process (pid %d) is gone: stopping", self._parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    def ready(self) -> None:
        try:
            os.write(self._ready_fd, b"1")
        finally:
            os.close(self._ready_fd)


def worker_command(config_files: Sequence[str] | None, host: str, port: int, workers: int) -> list[str]:
    """The command line of one worker, before the supervisor adds --worker-of and --ready-fd."""
    command = [sys.executable, "-m", "src.web", "--host", host, "--port", str(port), "--workers", str(workers)]
    for config_file in config_files or ():
        command += ["--config", config_file]
    return command


def supervise(settings: Mapping[str, Any], config_files: Sequence[str] | None) -> int:
    """Run `server.workers` workers until stopped; the exit code."""
    server = settings["server"]
    logger.info(
        "starting %d workers on http://%s:%s (each with its own pool and %d run slots)",
        server["workers"],
        server["host"],
        server["port"],
        settings["runs"]["max_concurrency"],
    )
    supervisor = Supervisor(
        worker_command(config_files, server["host"], server["port"], server["workers"]), server["workers"], os.environ
    )
    return supervisor.run()
