"""Where a run executes: its graph streamed, its events published, its record settled.

The run service decides when a run may execute (its thread's turn, a free slot); this
executes it and records how it ended.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message

from src.services.database import one_line, unavailable_cause
from src.services.graphs import Graph, GraphRegistry
from src.services.persistence import Checkpointer, delete_run_checkpoints
from src.services.runs.active import ActiveRun
from src.services.runs.notifier import Notifier
from src.services.runs.relay import start_sharing
from src.services.runs.repository import RunRepository
from src.services.runs.request import RunRequest
from src.services.serialization import to_jsonable

logger = logging.getLogger(__name__)
T = TypeVar("T")
# How often a run's end is written again while the database does not answer.
RETRY_SECONDS = 0.25
# How long a run's end waits for its last events to be stored for followers elsewhere.
EVENTS_STORED_SECONDS = 5.0

INTERRUPT_KEY = "__interrupt__"


@dataclass
class Outcome:
    """What the root graph's stream told about the end of a run."""

    values: Any = None
    interrupted: bool = False

    def observe(self, mode: str, chunk: Any) -> None:
        if mode == "updates" and isinstance(chunk, dict) and INTERRUPT_KEY in chunk:
            self.interrupted = True
        elif mode == "values" and not (isinstance(chunk, dict) and INTERRUPT_KEY in chunk):
            self.values = chunk


class RunExecutor:
    def __init__(
        self, graphs: GraphRegistry, runs: RunRepository, checkpointer: Checkpointer, notifier: Notifier, owner: str
    ) -> None:
        self._graphs = graphs
        self._runs = runs
        self._checkpointer = checkpointer
        self._notifier = notifier  # to share a run's events with a follower it hears of late
        self._owner = owner  # this process: its runs' records change only while it holds them
        self._stopping = False

    def stop(self) -> None:
        """The server is stopping: writes no longer wait for a database that is away."""
        self._stopping = True

    async def durably(self, active: ActiveRun, write: Callable[[], Awaitable[T]]) -> T:
        """`write()`, again every RETRY_SECONDS while the database is unavailable, until it succeeds.

        A run's record must end up saying how the run ended, or the run would stay
        `running` and its thread `busy` with nobody working on them. The caller holds the
        thread's turn meanwhile, so no later run starts on a thread whose state is not
        written yet. Errors that are not an outage (bugs) are raised at once, and so is
        the outage once the server is stopping (the next start settles such runs).
        """
        run_id = active.record["run_id"]
        waited = False
        while True:
            try:
                result = await write()
            except Exception as exc:
                cause = unavailable_cause(exc)
                if cause is None or self._stopping:
                    raise
                if not waited:
                    logger.warning("run %s: waiting for the database to record it: %s", run_id, one_line(cause))
                    active.stall(exc)
                    waited = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if waited:
                logger.info("run %s: recorded now that the database answers", run_id)
            return result

    async def settle_cancelled(self, active: ActiveRun, error: str) -> None:
        """Record a cancelled run: interrupted, or (rollback) gone with every checkpoint it wrote."""
        run_id, thread_id = active.record["run_id"], active.record["thread_id"]
        if not active.rollback:
            await self.finish(active, "interrupted", "idle", error=error)
            return
        # Rollback: as if the run had never been made.
        deleted = await self.durably(active, lambda: delete_run_checkpoints(self._checkpointer, thread_id, run_id))
        await self.durably(active, lambda: self._runs.roll_back(run_id, self._owner))
        logger.info("run %s rolled back (%d checkpoints deleted)", run_id, deleted)

    async def roll_back(self, run_id: str, thread_id: str) -> None:
        """Roll back a run this process holds but does not execute: one whose process died after
        its rollback was asked (the sweep gave it to this one). Its checkpoints go first: the next
        run of its thread may start as soon as the run is gone."""
        deleted = await delete_run_checkpoints(self._checkpointer, thread_id, run_id)
        if await self._runs.roll_back(run_id, self._owner):
            logger.info("run %s rolled back here after its process stopped (%d checkpoints deleted)", run_id, deleted)

    async def finish(
        self,
        active: ActiveRun,
        run_status: str,
        thread_status: str,
        values: Any | None = None,
        interrupts: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Write how the run ended, once its events are stored for the followers it has on other
        processes; False when this process no longer holds it.

        A follower elsewhere may have marked the run watched while the message telling this
        process is still on its way: the database then refuses the end (FINISH_RUN), the
        events are shared from here, and the end written once they are stored. Should sharing
        fail, the end is written anyway: the follower gets the outcome without those events."""
        run_id = active.run_id
        for attempt in range(2):
            await active.events_stored(EVENTS_STORED_SECONDS)
            shared = attempt > 0 or (active.sharing and active.stored_events >= active.stream.length)
            write = functools.partial(
                self._runs.finish_run, run_id, self._owner, run_status, thread_status, values, interrupts, error, shared
            )
            finished = await self.durably(active, write)
            if finished or shared:
                return finished
            record = await self.durably(active, lambda: self._runs.get_run(run_id))
            if record is None or record["owner"] != self._owner or not record["watched"]:
                return False  # taken over elsewhere
            start_sharing(active, self._runs, self._notifier)
        return False

    async def hand_back(self, active: ActiveRun) -> None:
        """The server is stopping: the run goes back to the queue, to be resumed by another process."""
        if not await self._runs.release(active.run_id, self._owner):
            return
        logger.info("run %s handed back to the queue", active.run_id)

    async def _input(self, graph: Graph, active: ActiveRun) -> Any:
        """What the run starts from. A run taken over after its first attempt was cut short
        resumes from the last checkpoint it wrote (its input is in it already: sending it
        again would add it twice); one cut short before it wrote any starts afresh."""
        if active.attempt <= 1:
            return active.request.graph_input
        state = await graph.aget_state({"configurable": {"thread_id": active.thread_id}})
        if (state.metadata or {}).get("run_id") == active.run_id:
            logger.info("run %s resumes from its last checkpoint (attempt %d)", active.run_id, active.attempt)
            return None
        return active.request.graph_input

    async def execute(self, active: ActiveRun) -> tuple[str, str | None]:
        """Run the graph, publishing its events; settle the records; return status and error."""
        request, run_id, thread_id = active.request, active.record["run_id"], active.record["thread_id"]
        outcome = Outcome()
        try:
            graph = await self._graphs.get(request.graph_id, request.config)
            graph_input = await self._input(graph, active)
            async for event, data in self._events(graph, request, outcome, graph_input):
                active.stream.publish(event, data)
            snapshot = None
            if outcome.interrupted or outcome.values is None:
                # Only then is the checkpoint read again: interrupts and next nodes live there.
                snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the graph's own failure: reported to the client, not raised
            message = f"{type(exc).__name__}: {exc}"
            logger.error("run %s on thread %s failed: %s", run_id, thread_id, message, exc_info=exc)
            active.stream.publish("error", {"error": type(exc).__name__, "message": str(exc)})
            active.final = {"__error__": {"error": type(exc).__name__, "message": str(exc)}}
            active.failure = exc
            active.conclude("error")
            await asyncio.shield(self.finish(active, "error", "error", error=message))
            return "error", message
        if snapshot is None:
            values, interrupts, by_task, waiting = to_jsonable(outcome.values), [], {}, False
        else:
            values, interrupts = to_jsonable(snapshot.values), to_jsonable(snapshot.interrupts)
            by_task = {task.id: to_jsonable(task.interrupts) for task in snapshot.tasks if task.interrupts}
            waiting = bool(interrupts or snapshot.next)
        active.final = {**values, "__interrupt__": interrupts} if interrupts and isinstance(values, dict) else values
        thread_status = "interrupted" if waiting else "idle"
        active.conclude("success")
        await self.finish(active, "success", thread_status, values=values, interrupts=by_task)
        return "success", None

    async def _events(
        self, graph: Any, request: RunRequest, outcome: Outcome, graph_input: Any
    ) -> AsyncIterator[tuple[str, Any]]:
        """The graph's stream as (SSE event name, data), as the LangGraph API names them.

        `values` and `updates` are always streamed, to learn the final values and whether
        the run stopped at an interrupt without reading the checkpoint again, but only the
        requested modes are published. Data is published as the graph made it and turned
        into JSON only if a client reads it: `runs.wait` never pays for it.
        """
        requested = set(request.stream_modes)
        published = {"messages" if mode == "messages-tuple" else mode for mode in requested} - {"events"}
        modes = sorted(published | {"values", "updates"})
        kwargs: dict[str, Any] = {**request.options, "subgraphs": True}
        if request.context is not None:
            kwargs["context"] = request.context
        messages: dict[str, BaseMessageChunk | BaseMessage] = {}
        if "events" in requested:
            source = self._with_events(graph, request, graph_input, modes, kwargs)
        else:
            source = graph.astream(graph_input, request.config, stream_mode=modes, **kwargs)
        async for item in source:
            if item[0] is None:  # an astream_events event
                yield "events", item[1]
                continue
            namespace, mode, chunk = item
            if not namespace:
                outcome.observe(mode, chunk)
            if mode not in published or (namespace and not request.subgraphs):
                continue
            suffix = "|" + "|".join(namespace) if namespace else ""
            if mode == "messages" and "messages-tuple" in requested:
                yield "messages" + suffix, chunk
            elif mode == "messages":
                message, meta = chunk
                if message.id not in messages:
                    messages[message.id] = message
                    yield "messages/metadata", {message.id: {"metadata": meta}}
                else:
                    messages[message.id] = messages[message.id] + message
                merged = messages[message.id]
                partial = isinstance(merged, BaseMessageChunk)
                shown = merged if partial else message_chunk_to_message(merged)
                yield ("messages/partial" if partial else "messages/complete"), [shown]
            else:
                yield mode + suffix, chunk

    @staticmethod
    async def _with_events(
        graph: Any, request: RunRequest, graph_input: Any, modes: list[str], kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[Any, ...]]:
        """astream_events: each event as (None, event), and the root's chunks as astream items."""
        root: str | None = None
        async for event in graph.astream_events(graph_input, request.config, version="v2", stream_mode=modes, **kwargs):
            if root is None:
                root = event["run_id"]
            if event["event"] == "on_chain_stream" and event["run_id"] == root:
                yield tuple(event["data"]["chunk"])
            yield (None, event)
