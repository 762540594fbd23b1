"""End to end: the real server in a subprocess, over HTTP."""

import concurrent.futures
import signal
import time
import uuid

import httpx
import psycopg
import pytest

from tests.conftest import TEST_CONFIG, ServerProcess, connections_after_close, free_port

PASSWORD = "s3cret-pw"


def dsn(form: str, port: int | str, database: str) -> str:
    """A connection string to 127.0.0.1 carrying PASSWORD in one of the ways libpq takes it."""
    return {
        "url password": f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/{database}",
        "query password": f"postgresql://postgres@127.0.0.1:{port}/{database}?password={PASSWORD}",
        "key/value password": f"host=127.0.0.1 port={port} user=postgres dbname={database} password={PASSWORD}",
        "quoted key/value password": (
            f"host=127.0.0.1 port={port} user=postgres password='{PASSWORD} with blanks' dbname={database}"
        ),
    }[form]


DSN_FORMS = ["url password", "query password", "key/value password", "quoted key/value password"]


def user(text: str, user_id: str = "u1") -> dict:
    return {
        "assistant_id": "agent",
        "input": {"messages": [{"role": "user", "content": text}]},
        "config": {"configurable": {"user_id": user_id}},
    }


def new_thread(client: httpx.Client) -> str:
    response = client.post("/threads", json={})
    assert response.status_code == 200, response.text
    return response.json()["thread_id"]


def reply(client: httpx.Client, thread_id: str, text: str, user_id: str = "u1") -> str:
    response = client.post(f"/threads/{thread_id}/runs/wait", json=user(text, user_id))
    assert response.status_code == 200, response.text
    return response.json()["messages"][-1]["content"]


@pytest.fixture(scope="module")
def memory_server():
    server = ServerProcess(env={"CONFIG_FILE": str(TEST_CONFIG)}).start()
    yield server
    assert server.stop() == 0


@pytest.fixture
def client(memory_server):
    with httpx.Client(base_url=memory_server.url, timeout=30) as http:
        yield http


def test_ok_health_info(client):
    assert client.get("/ok").json() == {"ok": True}
    assert client.get("/health").json() == {"status": "ok", "persistence": "memory"}
    info = client.get("/info").json()
    assert info["persistence"]["backend"] == "memory"
    assert info["graphs"] == ["agent", "approval", "factory", "slow"]


def test_multi_turn_memory_and_thread_isolation(client):
    first, second = new_thread(client), new_thread(client)
    assert reply(client, first, "Hello, my name is Ada") == "Nice to meet you, Ada!"
    assert reply(client, first, "What is my name?") == "Your name is Ada."
    assert reply(client, second, "What is my name?") == "I don't know your name yet."
    thread = client.get(f"/threads/{first}").json()
    assert thread["status"] == "idle"
    assert thread["metadata"]["graph_id"] == "agent"
    assert [m["type"] for m in thread["values"]["messages"]] == ["human", "ai", "human", "ai"]
    state = client.get(f"/threads/{first}/state").json()
    assert state["values"]["messages"][-1]["content"] == "Your name is Ada."
    assert state["next"] == [] and state["checkpoint"]["thread_id"] == first
    assert state["checkpoint"]["checkpoint_id"]


def test_long_term_memory_crosses_threads_for_the_same_user_only(client):
    fact_owner = f"user-{uuid.uuid4()}"
    assert reply(client, new_thread(client), "remember that I like tea", fact_owner) == "I'll remember that I like tea."
    recalled = reply(client, new_thread(client), "what do you remember about me?", fact_owner)
    assert recalled == "Here is what I remember: I like tea."
    stranger = reply(client, new_thread(client), "what do you remember about me?", f"user-{uuid.uuid4()}")
    assert stranger == "I don't remember anything about you yet."


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("POST", "/threads", "{not json", 400, "request body is not valid JSON"),
        ("POST", "/threads", '{"metadata": 5}', 422, "metadata must be an object"),
        ("POST", "/threads", '{"thread_id": "abc"}', 422, "thread_id must be a UUID"),
        ("POST", "/threads", "[1, 2]", 422, "request body must be a JSON object"),
        ("GET", "/threads/not-a-uuid", None, 422, "thread_id must be a UUID"),
        ("GET", f"/threads/{uuid.UUID(int=0)}", None, 404, "not found"),
        ("GET", f"/threads/{uuid.UUID(int=0)}/state", None, 404, "not found"),
        ("POST", f"/threads/{uuid.UUID(int=0)}/runs/wait", '{"assistant_id": "agent"}', 404, "not found"),
        ("POST", "/threads/THREAD/runs/wait", "", 400, "request body is empty"),
        ("POST", "/threads/THREAD/runs/wait", '{"assistant_id": "nope"}', 404, "Assistant 'nope' not found"),
        ("POST", "/threads/THREAD/runs/wait", '{"assistant_id": 7}', 422, "assistant_id is required"),
        ("POST", "/threads/THREAD/runs/wait", '{"assistant_id": "agent", "input": "hi"}', 422, "input must be"),
        ("POST", "/threads/THREAD/runs/wait", '{"assistant_id": "agent", "config": []}', 422, "config must be"),
        (
            "POST",
            "/threads/THREAD/runs/wait",
            '{"assistant_id": "agent", "webhook": "http://127.0.0.1:9/hook"}',
            422,
            "points at this host",
        ),
        (
            "POST",
            "/threads/THREAD/runs",
            '{"assistant_id": "agent", "webhook": "http://0x7f.1:9/hook"}',
            422,
            "points at this host (0x7f.1 is 127.0.0.1, loopback)",
        ),
        (
            "POST",
            "/runs/wait",
            '{"assistant_id": "agent", "webhook": "http://169.254.169.254/latest/meta-data"}',
            422,
            "points at an internal address (169.254.169.254 is link-local)",
        ),
    ],
)
def test_bad_input_gets_a_4xx_with_detail(client, method, path, body, status, detail):
    path = path.replace("THREAD", new_thread(client))
    response = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]


def test_same_thread_runs_never_interleave(client):
    thread_id = new_thread(client)
    slow = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0.5}}}
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        first = pool.submit(client.post, f"/threads/{thread_id}/runs/wait", json=slow)
        time.sleep(0.2)
        rejected = client.post(f"/threads/{thread_id}/runs/wait", json={**slow, "multitask_strategy": "reject"})
        queued = pool.submit(
            client.post, f"/threads/{thread_id}/runs/wait", json={**slow, "multitask_strategy": "enqueue"}
        )
        assert rejected.status_code == 409 and "multitask_strategy" in rejected.json()["detail"]
        assert first.result().json()["steps"] == ["step 1"]
        assert queued.result().json()["steps"] == ["step 1", "step 2"]


def test_factory_graph_from_config_file(client):
    thread_id = new_thread(client)
    body = {"assistant_id": "factory", "input": {"steps": []}, "config": {"configurable": {"delay": 0}}}
    assert client.post(f"/threads/{thread_id}/runs/wait", json=body).json() == {"steps": ["step 1"]}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_the_server_cleanly(server_factory, signum):
    server = server_factory().start()
    began = time.monotonic()
    assert server.stop(signum) == 0
    assert time.monotonic() - began < 5
    assert f"received {signal.Signals(signum).name}: shutting down" in server.output
    assert "stopped" in server.output


def test_startup_logs_say_what_happened(server_factory):
    server = server_factory().start()
    server.stop()
    for expected in (
        "config file: ",
        "persistence backend: memory",
        "graphs loaded: agent",
        f"listening on http://127.0.0.1:{server.port} (start-up took",
    ):
        assert expected in server.output


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({"DATABASE_POOL_MAX_SIZE": "abc"}, [], "DATABASE_POOL_MAX_SIZE='abc' is invalid: expected an integer >= 1"),
        ({"DATABASE_POOL_TIMEOUT": "-1"}, [], "DATABASE_POOL_TIMEOUT='-1' is invalid"),
        ({"DATABASE_POOL_MIN_SIZE": "9", "DATABASE_POOL_MAX_SIZE": "3"}, [], "pool_min_size=9 is greater than"),
        ({"DATABASE_URL": f"http://app:{PASSWORD}@db/x"}, [], "DATABASE_URL='http://app:***@db/x' is invalid"),
        ({}, ["--config", "/nonexistent/agent.yml"], "cannot be read"),
        ({"WEBHOOKS_ALLOWED_HOSTS": "10.1"}, [], "WEBHOOKS_ALLOWED_HOSTS='10.1' is invalid: '10.1' is not a host name"),
        ({"DATABASE_URL": dsn("url password", "abc", "x")}, [], "DATABASE_URL='postgresql://postgres:***@127.0"),
        ({"DATABASE_URL": dsn("query password", "abc", "x")}, [], "/x?password=***' is invalid: port 'abc'"),
        ({"DATABASE_URL": dsn("key/value password", "abc", "x")}, [], "password=***' is invalid: port 'abc'"),
        ({"DATABASE_URL": dsn("quoted key/value password", "abc", "x")}, [], "password=*** dbname=x' is invalid"),
        ({"DATABASE_URL": f"host=db password={PASSWORD} with blanks"}, [], "DATABASE_URL is invalid (value not shown"),
        ({"DATABASE_URL": f"postgresql://db/x?password={PASSWORD}&colour=red"}, [], "invalid URI query parameter"),
        ({}, ["--port", "http"], "--port='http' is invalid"),
    ],
)
def test_bad_config_exits_2_with_one_line(server_factory, env, args, expected):
    code, output, _ = server_factory(env=env, args=args).run_to_exit()
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], output
    assert PASSWORD not in output and "Traceback" not in output


def test_graph_that_does_not_import_exits_2(server_factory, tmp_path):
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    config = tmp_path / "config.yml"
    config.write_text("graphs:\n  broken: ./broken.py:graph\n")
    code, output, _ = server_factory(args=["--config", str(config)]).run_to_exit()
    assert code == 2
    assert output.strip().splitlines() == [
        "agent-server: config error: graphs.broken='./broken.py:graph' does not import: "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'"
    ]


def test_port_in_use_is_a_clear_error(server_factory, memory_server):
    code, output, _ = server_factory(args=["--port", str(memory_server.port)]).run_to_exit()
    assert code == 2 and "is already in use" in output


@pytest.mark.parametrize("form", DSN_FORMS)
def test_unreachable_database_stops_the_server_with_postgres_reason(server_factory, form):
    url = dsn(form, free_port(), "x")
    code, output, _ = server_factory(env={"DATABASE_URL": url}).run_to_exit()
    assert code == 1, output
    failure = [line for line in output.splitlines() if "start-up failed" in line]
    assert len(failure) == 1 and "Connection refused" in failure[0], output
    assert "password=***" in failure[0] or "postgres:***@" in failure[0], output
    assert PASSWORD not in output and "Traceback" not in output and "panic" not in output


@pytest.mark.postgres
@pytest.mark.parametrize("form", DSN_FORMS)
def test_no_password_in_health_info_or_logs(server_factory, pg_database, form):
    server = server_factory(env={"DATABASE_URL": dsn(form, 5432, pg_database), "LOG_LEVEL": "DEBUG"}).start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        health, info = http.get("/health"), http.get("/info")
    assert health.status_code == 200 and health.json()["persistence"] == "postgres"
    assert info.status_code == 200 and info.json()["persistence"]["backend"] == "postgres"
    assert server.stop() == 0
    assert f"persistence backend: postgres (127.0.0.1:5432/{pg_database})" in server.output
    for text in (health.text, info.text, server.output):
        assert PASSWORD not in text


@pytest.mark.postgres
def test_postgres_server_keeps_state_across_restart_and_leaves_no_connection(server_factory, pg_url, pg_database):
    env = {"DATABASE_URL": pg_url.replace("postgres@", f"postgres:{PASSWORD}@"), "CONFIG_FILE": str(TEST_CONFIG)}
    server = server_factory(env=env).start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        health = http.get("/health").json()
        assert health["status"] == "ok" and health["persistence"] == "postgres"
        assert health["pool"]["pool_max"] == 10
        assert http.get("/info").json()["persistence"]["backend"] == "postgres"
        thread_id = new_thread(http)
        assert reply(http, thread_id, "my name is Grace") == "Nice to meet you, Grace!"
        reply(http, thread_id, "remember that I like tea")
    assert server.stop() == 0
    assert PASSWORD not in server.output
    assert "persistence backend: postgres (127.0.0.1:5432/" in server.output
    assert connections_after_close(pg_database) == 0

    restarted = server_factory(env=env).start()
    with httpx.Client(base_url=restarted.url, timeout=30) as http:
        messages = http.get(f"/threads/{thread_id}").json()["values"]["messages"]
        assert messages[1]["content"] == "Nice to meet you, Grace!"
        assert reply(http, thread_id, "what is my name?") == "Your name is Grace."
        assert reply(http, new_thread(http), "what do you remember?") == "Here is what I remember: I like tea."
    assert restarted.stop() == 0


@pytest.mark.postgres
def test_restart_keeps_runs_and_assistants_and_resumes_runs_handed_back(server_factory, pg_url):
    env = {"DATABASE_URL": pg_url, "CONFIG_FILE": str(TEST_CONFIG)}
    server = server_factory(env=env).start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assistant = http.post("/assistants", json={"graph_id": "agent", "name": f"kept-{uuid.uuid4()}"}).json()
        thread_id = new_thread(http)
        finished = http.post(f"/threads/{thread_id}/runs", json=user("hello")).json()
        http.get(f"/threads/{thread_id}/runs/{finished['run_id']}/join")
        slow_thread = new_thread(http)
        body = {"assistant_id": "slow", "input": {"steps": ["input"]}, "config": {"configurable": {"delay": 2}}}
        handed_back = http.post(f"/threads/{slow_thread}/runs", json=body).json()
        time.sleep(0.3)
    assert server.stop() == 0  # stops while the slow run is still running: it goes back to the queue
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT status, owner FROM agent_server.runs WHERE run_id = %s", (handed_back["run_id"],))
        assert row.fetchone() == ("pending", None)

    restarted = server_factory(env=env).start()
    with httpx.Client(base_url=restarted.url, timeout=30) as http:
        assert http.get(f"/assistants/{assistant['assistant_id']}").json()["name"] == assistant["name"]
        runs = http.get(f"/threads/{thread_id}/runs").json()
        assert [(r["run_id"], r["status"]) for r in runs] == [(finished["run_id"], "success")]
        # Taken up again by the new process and resumed from its last checkpoint: the input once.
        values = http.get(f"/threads/{slow_thread}/runs/{handed_back['run_id']}/join").json()
        assert values == {"steps": ["input", "step 2"]}
        assert http.get(f"/threads/{slow_thread}/runs/{handed_back['run_id']}").json()["status"] == "success"
        assert http.get(f"/threads/{slow_thread}").json()["status"] == "idle"
    assert restarted.stop() == 0
