"""Events of a run followed on another process (src/services/runs/relay.py), in-process on Postgres:
two containers share one database as two server processes would."""

from __future__ import annotations

import orjson
from robyn.responses import StreamingResponse

from src.containers import Container
from src.settings import load_settings
from tests.conftest import TEST_CONFIG
from tests.inprocess import InProcessApi


async def sse_events(response: object) -> list[tuple[str, object]]:
    """(event, data) of a whole SSE response read in-process."""
    assert isinstance(response, StreamingResponse)
    text = ""
    async for chunk in response.content._async_gen:
        text += chunk.decode() if isinstance(chunk, bytes) else chunk
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], orjson.loads(fields["data"]) if fields.get("data") else None))
    return events


async def test_a_stream_joined_on_another_process_ends_with_the_final_values(pg_url):
    """The follower's process sees the run end only after every event of it was written: a join on
    another process always ends with the run's last values (not only what was shared 20 ms before)."""
    env = {"DATABASE_URL": pg_url}
    executing, following = Container(), Container()
    executing.config.from_dict(load_settings(TEST_CONFIG, environ=env))
    following.config.from_dict(load_settings(TEST_CONFIG, environ=env))
    a, b = await InProcessApi(executing).start(), await InProcessApi(following).start()
    try:
        for round_number in range(20):
            thread = await a.call("POST", "/threads", {})
            body = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0.2}}}
            run = await a.call("POST", f"/threads/{thread['thread_id']}/runs", body)
            path = f"/threads/{thread['thread_id']}/runs/{run['run_id']}/stream"
            events = await sse_events(await b.respond("GET", path, query={"stream_mode": "values"}))
            values = [data for event, data in events if event == "values"]
            assert values and values[-1] == {"steps": ["step 1"]}, (round_number, events)
            assert (await b.call("GET", f"/threads/{thread['thread_id']}/runs/{run['run_id']}"))["status"] == "success"
    finally:
        await b.stop()
        await a.stop()
