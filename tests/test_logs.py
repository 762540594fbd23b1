"""LOG_FORMAT=json: every line the server writes is one JSON object, redacted, with the ids of the
run, thread or cron it is about where known."""

from __future__ import annotations

import json
import logging
import sys

import httpx

from src.services.logcontext import log_context
from src.settings import ConfigError, load_settings
from src.web.logformat import JsonFormatter
from tests.conftest import TEST_CONFIG, ServerProcess

SECRET = "hunter2-secret"


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"cannot connect to postgresql://app:{SECRET}@db/prod")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord("agent_server", logging.ERROR, __file__, 1, message, args, exc_info)


def test_a_json_line_is_redacted_value_by_value_and_carries_the_context_ids():
    formatter = JsonFormatter()
    with log_context(run_id="r1", thread_id="t1"):
        line = formatter.format(record("url %s and password=%s done", f"postgres://u:{SECRET}@h/d", SECRET, exc=True))
    parsed = json.loads(line)
    assert parsed["message"] == "url postgres://u:***@h/d and password=*** done"
    assert parsed["level"] == "ERROR" and parsed["logger"] == "agent_server"
    assert parsed["time"].endswith("+00:00")
    assert (parsed["run_id"], parsed["thread_id"]) == ("r1", "t1")
    assert "RuntimeError" in parsed["exception"] and SECRET not in line
    assert "run_id" not in json.loads(formatter.format(record("outside any run")))


def test_log_format_is_checked():
    assert load_settings(TEST_CONFIG, environ={"LOG_FORMAT": "JSON"})["server"]["log_format"] == "json"
    try:
        load_settings(TEST_CONFIG, environ={"LOG_FORMAT": "xml"})
    except ConfigError as exc:
        assert str(exc) == "LOG_FORMAT='xml' is invalid: expected one of text, json"
    else:
        raise AssertionError("LOG_FORMAT=xml was accepted")


def test_the_server_writes_one_json_object_per_line():
    server = ServerProcess(env={"CONFIG_FILE": str(TEST_CONFIG), "LOG_FORMAT": "json"}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            thread = client.post("/threads", json={}).json()["thread_id"]
            failing = {
                "assistant_id": "slow",
                "input": {"steps": []},
                "config": {"configurable": {"delay": 0, "fail": f"postgresql://app:{SECRET}@db/prod"}},
            }
            run = client.post(f"/threads/{thread}/runs", json=failing).json()
            client.get(f"/threads/{thread}/runs/{run['run_id']}/join")
    finally:
        assert server.stop() == 0
    lines = [json.loads(line) for line in server.output.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert SECRET not in server.output
    (failed,) = [line for line in lines if "failed: RuntimeError" in line["message"]]
    assert failed["level"] == "ERROR" and failed["run_id"] == run["run_id"] and failed["thread_id"] == thread
    assert "postgresql://app:***@db/prod" in failed["message"] and "Traceback" in failed["exception"]
    join = [line for line in lines if line["logger"] == "agent_server.access" and "/join" in line["message"]]
    assert join and join[0]["run_id"] == run["run_id"] and join[0]["thread_id"] == thread
    assert any(line["message"].startswith("listening on http://") for line in lines)
