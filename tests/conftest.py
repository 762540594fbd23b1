"""Shared fixtures: a throwaway Postgres database per session and a real server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from src.services.database import APPLICATION_NAME

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIG = ROOT / "tests" / "graphs" / "config.yml"
ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres?sslmode=disable")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(name: str, user: str = "postgres", password: str | None = None) -> str:
    auth = f"{user}:{password}" if password else user
    return f"postgresql://{auth}@127.0.0.1:5432/{name}"


def admin_connect() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        # Never skip: the Postgres tests are part of the suite and must run.
        pytest.fail(
            f"PostgreSQL is not reachable at {ADMIN_URL}: {exc}. Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`",
            pytrace=False,
        )


def create_database(prefix: str = "agent_server_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin_connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(name: str) -> None:
    with admin_connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def connections_after_close(database: str, timeout: float = 3.0) -> int:
    """Server connections left once closed ones are gone: a backend exits a moment after its client."""
    deadline = time.monotonic() + timeout
    while (count := server_connections(database)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def server_connections(database: str) -> int:
    with admin_connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (database, APPLICATION_NAME),
        ).fetchone()
    return row[0]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """Name of a database created for this test session and dropped after it."""
    name = create_database()
    yield name
    drop_database(name)


@pytest.fixture(scope="session")
def pg_url(pg_database: str) -> str:
    return database_url(pg_database)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A new empty database for one test (schema set-up from scratch), dropped after."""
    name = create_database("agent_server_fresh")
    yield name
    drop_database(name)


class ServerProcess:
    """The real server, started as `python -m src.web` on a free port.

    Its output (logs, one access-log line per request) is read continuously by a thread,
    so a busy server never blocks on a full pipe; `output` is everything so far.
    """

    def __init__(self, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONFIG_FILE", "PORT", "HOST")}
        self.env = {**base, "PORT": str(self.port), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.args = args or []
        self.process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    def start(self, wait: bool = True, timeout: float = 30.0) -> ServerProcess:
        self._lines = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "src.web", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def _drained(self, timeout: float = 5.0) -> None:
        if self._reader is not None:
            self._reader.join(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._drained()
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.output}")
            try:
                response = httpx.get(f"{self.url}/ok", timeout=1.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"server at {self.url} not ready within {timeout} s ({last}):\n{self.output}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send `signum` and wait; return the exit code (killing the process if it hangs)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self._drained()
                return -999
        self._drained()
        return self.process.returncode

    def run_to_exit(self, timeout: float = 30.0) -> tuple[int, str, float]:
        """Start a server expected to exit by itself: (exit code, output, seconds)."""
        began = time.monotonic()
        self.start(wait=False)
        assert self.process is not None
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self._drained()
            raise AssertionError(f"server did not exit within {timeout} s:\n{self.output}") from None
        self._drained()
        return self.process.returncode, self.output, time.monotonic() - began


@pytest.fixture
def server_factory() -> Iterator[type[ServerProcess]]:
    started: list[ServerProcess] = []

    class Tracked(ServerProcess):
        def start(self, wait: bool = True, timeout: float = 30.0) -> ServerProcess:
            started.append(self)
            return super().start(wait, timeout)

    yield Tracked
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.stop()


@pytest.fixture(scope="module", params=["memory", "postgres"])
def api_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A real server with the test graphs, once on memory and once on Postgres (shared per module)."""
    env = {"CONFIG_FILE": str(TEST_CONFIG), "WEBHOOKS_ALLOW_LOOPBACK": "true", "RUNS_MAX_CONCURRENCY": "4"}
    if request.param == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("pg_url")
    server = ServerProcess(env=env).start()
    yield server
    code = server.stop()
    assert code == 0, f"server exited with {code}:\n{server.output}"
