"""Events of a run carried between processes, through the run_events table.

A run's events live in the memory of the process executing it (its `RunStream`), and a
client of that process follows them from there: no database write per event. Only when
someone on another process follows the run (`watched`) does its owner `share` them: the
events so far and every later one are written to run_events in batches, each batch
announced with an `events` notification. The follower's process `mirror`s them into a
local stream of its own, with the same event ids, so `Last-Event-ID` works across
processes, and ends it with the run's outcome once the run has finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from src.services.database import unavailable_cause
from src.services.runs.active import ActiveRun
from src.services.runs.notifier import Notifier
from src.services.runs.repository import ACTIVE, RunRecord, RunRepository, StoredEvent
from src.services.serialization import to_jsonable
from src.services.threads.repository import ThreadRepository
from src.services.waiting import wait_event

logger = logging.getLogger(__name__)

# Events are written in batches of at most BATCH_EVENTS: a token stream costs a statement per
# batch, not per token. A batch is written once the writer has caught up with the stream and
# its last write is BATCH_SECONDS old, or after BATCH_SECONDS of quiet: what a follower joins
# for is written at once, a fast stream about every BATCH_SECONDS, however fast it goes.
BATCH_SECONDS = 0.02
BATCH_EVENTS = 200
# A follower looks again this often when no notification came (one may have been lost).
MIRROR_POLL_SECONDS = 1.0


def start_sharing(active: ActiveRun, runs: RunRepository, notifier: Notifier) -> None:
    """Share a run executed here with its followers elsewhere, unless it is shared already."""
    if not any(task.get_name() == "share" for task in active.helpers):
        active.sharing = True  # from now, not once the task first runs: the run's end waits for it
        active.helpers.append(asyncio.create_task(share(active, runs, notifier), name="share"))


async def share(active: ActiveRun, runs: RunRepository, notifier: Notifier) -> None:
    """Write a run's events, from the first one, to run_events until its stream ends."""
    run_id = active.record["run_id"]
    loop = asyncio.get_running_loop()
    batch: list[StoredEvent] = []
    last_write = -BATCH_SECONDS

    async def flush() -> None:
        nonlocal last_write
        if batch:
            last_write = loop.time()
            await runs.append_events(run_id, batch)
            active.stored_events = batch[-1].seq + 1
            batch.clear()
            active.events_written.set()
            await notifier.send({"kind": "events", "run": run_id})

    active.sharing = True
    try:
        async for item in active.stream.follow(0, idle=BATCH_SECONDS):
            if item is not None:
                position, event, data = item
                batch.append(StoredEvent(position, event, to_jsonable(data)))
                caught_up = position + 1 >= active.stream.length
                due = loop.time() - last_write >= BATCH_SECONDS
                if len(batch) < BATCH_EVENTS and not (caught_up and due):
                    continue
            await flush()
        await flush()
    except Exception as exc:  # followers elsewhere then see the run's outcome without these events
        if unavailable_cause(exc) is None:
            logger.exception("sharing the events of run %s failed", run_id)
        else:
            logger.warning("sharing the events of run %s stopped: the database is unavailable", run_id)
    finally:
        active.sharing = False
        active.events_written.set()


async def mirror(
    active: ActiveRun,
    runs: RunRepository,
    threads: ThreadRepository,
    wakeup: asyncio.Event,
    executing_here: Callable[[], bool],
) -> None:
    """Follow a run another process executes: its events into `active.stream`, then its outcome.

    Stops early when this process takes the run itself (`executing_here`)."""
    run_id = active.record["run_id"]
    position = active.stream.length  # events already known here (the creator's metadata)
    while not executing_here():
        wakeup.clear()
        events = await runs.read_events(run_id, position, BATCH_EVENTS)
        for stored in events:
            active.stream.publish_at(stored.seq, stored.event, stored.data)
            position = stored.seq + 1
        if events:
            continue
        record = await runs.get_run(run_id)
        if record is None:
            active.failure = LookupError(f"run {run_id} was deleted")
            active.conclude("interrupted")
            active.settle()
            return
        if record["status"] not in ACTIVE:
            # Its last events were written before it finished: read what is left, then end.
            for stored in await runs.read_events(run_id, position, 100_000):
                active.stream.publish_at(stored.seq, stored.event, stored.data)
            await settle_remote(active, record, threads)
            return
        active.record["status"] = record["status"]
        await wait_event(wakeup, MIRROR_POLL_SECONDS)


async def settle_remote(active: ActiveRun, record: RunRecord, threads: ThreadRepository) -> None:
    """End a run followed from here with the outcome its owner recorded."""
    status = record["status"]
    if status == "success":
        thread = await threads.get_thread(record["thread_id"])
        values: Any = (thread["values"] if thread else None) or {}
        by_task: dict[str, Any] = (thread["interrupts"] if thread else None) or {}
        interrupts = [item for items in by_task.values() for item in items]
        active.final = {**values, "__interrupt__": interrupts} if interrupts and isinstance(values, dict) else values
    elif status == "error":
        message = record["error"] or "the run failed"
        error, _, detail = message.partition(": ")
        active.final = {"__error__": {"error": error if detail else "Error", "message": detail or message}}
    else:
        active.cancel_reason = record["error"]
    active.conclude(status)
    active.settle()
