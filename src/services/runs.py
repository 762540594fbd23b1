"""Runs: executing graphs as tasks on the serving loop, streaming their events.

A run is a task. Its events go to a `RunStream`, a buffer any number of consumers can
follow from the start (the client that started it, a `join`, a reconnecting stream),
so no consumer ever holds the run - or a database connection - while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from src.services.assistants import AssistantService
from src.services.errors import Conflict, InvalidRequest, NotFound, ThreadBusy
from src.services.graphs import GraphRegistry
from src.services.persistence import ErasableCheckpointer, delete_run_checkpoints
from src.services.repository import Record, Repository
from src.services.serialization import to_jsonable
from src.services.threads import parse_thread_id
from src.services.validation import choice, optional_object, query_integer, reject_unknown, require_object
from src.services.webhooks import WebhookSender

logger = logging.getLogger(__name__)

MULTITASK_STRATEGIES = ("reject", "enqueue", "interrupt", "rollback")
IF_NOT_EXISTS = ("reject", "create")
ON_DISCONNECT = ("cancel", "continue")
ON_COMPLETION = ("delete", "keep")
CANCEL_ACTIONS = ("interrupt", "rollback")
DURABILITY = ("sync", "async", "exit")
STREAM_MODES = (
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "events",
    "debug",
    "custom",
    "checkpoints",
    "tasks",
)
RUN_STATUSES = ("pending", "running", "success", "error", "timeout", "interrupted")
RUN_FIELDS = frozenset(
    {
        "assistant_id",
        "input",
        "command",
        "config",
        "context",
        "metadata",
        "multitask_strategy",
        "if_not_exists",
        "interrupt_before",
        "interrupt_after",
        "checkpoint",
        "checkpoint_id",
        "checkpoint_during",
        "durability",
        "stream_mode",
        "stream_subgraphs",
        "on_disconnect",
        "on_completion",
        # Every run's events are kept while it runs, so every stream can be resumed.
        "stream_resumable",
        "webhook",
    }
)
# Fields of the LangGraph API this server does not honour yet: refused, never ignored.
UNSUPPORTED_RUN_FIELDS = frozenset({"after_seconds", "feedback_keys"})
# A quiet stream yields a heartbeat this often, so a client that left is noticed.
HEARTBEAT_SECONDS = 0.2
# Finished runs whose events stay available to late `join`/`stream` callers.
FINISHED_STREAMS_KEPT = 256


# (event id, SSE event name, JSON-ready data); thread streams use "<run_id>:<position>" ids.
StreamEvent = tuple[int | str, str, Any]
THREAD_STREAM_MODES = ("run_modes", "lifecycle")


@dataclass
class RunRequest:
    """A validated run creation body."""

    assistant_id: str
    graph_input: Any
    config: RunnableConfig
    context: dict[str, Any] | None
    metadata: dict[str, Any]
    stream_modes: list[str]
    subgraphs: bool
    multitask_strategy: str
    if_not_exists: str
    on_disconnect: str
    on_completion: str
    options: dict[str, Any]
    kwargs: dict[str, Any]
    webhook: str | None = None
    graph_id: str = ""  # set from the assistant


def apply_assistant(request: RunRequest, assistant: dict[str, Any]) -> None:
    """Start from the assistant's config and context; what the run sends wins."""
    base = assistant.get("config") or {}
    request.assistant_id, request.graph_id = assistant["assistant_id"], assistant["graph_id"]
    config: dict[str, Any] = {**base, **request.config}
    config["configurable"] = {**(base.get("configurable") or {}), **request.config["configurable"]}
    config["metadata"] = {**(base.get("metadata") or {}), **request.config.get("metadata", {})}
    request.config = config  # type: ignore[assignment]
    if assistant.get("context") or request.context is not None:
        request.context = {**(assistant.get("context") or {}), **(request.context or {})}


def _interrupt_nodes(body: dict[str, Any], key: str) -> list[str] | str | None:
    value = body.get(key)
    if value is None or value == "*":
        return value
    if isinstance(value, list) and all(isinstance(node, str) for node in value):
        return value
    raise InvalidRequest(f"{key} must be '*' or a list of node names")


def _command(body: dict[str, Any]) -> Command | None:
    command = optional_object(body, "command")
    if command is None:
        return None
    reject_unknown(command, frozenset({"resume", "update", "goto"}))
    goto = command.get("goto")
    if goto is not None and not isinstance(goto, (str, list, dict)):
        raise InvalidRequest("command.goto must be a node name, a Send or a list of them")
    update = command.get("update")
    if isinstance(update, list):
        update = [tuple(item) if isinstance(item, list) else item for item in update]
    return Command(resume=command.get("resume"), update=update, goto=goto or ())


def _checkpoint(body: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint to start from. Clients send back what the server gave them, nulls
    included (useStream: `checkpoint_map: null`): a null field is one that is not set."""
    checkpoint = optional_object(body, "checkpoint") or {}
    for key, expected in (("checkpoint_id", str), ("checkpoint_ns", str), ("checkpoint_map", dict)):
        value = checkpoint.get(key)
        if value is not None and not isinstance(value, expected):
            raise InvalidRequest(f"checkpoint.{key} must be {'a string' if expected is str else 'an object'}")
    return {
        key: value
        for key, value in checkpoint.items()
        if key in ("checkpoint_id", "checkpoint_ns", "checkpoint_map") and value is not None
    }


def parse_stream_modes(value: Any, default: list[str]) -> list[str]:
    if value is None:
        return default
    modes = [value] if isinstance(value, str) else value
    if not isinstance(modes, list) or not all(isinstance(mode, str) for mode in modes):
        raise InvalidRequest("stream_mode must be a stream mode or a list of them")
    for mode in modes:
        if mode not in STREAM_MODES:
            raise InvalidRequest(f"stream_mode {mode!r} is not supported; expected one of {', '.join(STREAM_MODES)}")
    return list(dict.fromkeys(modes))


def parse_run_request(payload: Any, *, stateless: bool) -> RunRequest:
    body = require_object(payload)
    reject_unknown(body, RUN_FIELDS, UNSUPPORTED_RUN_FIELDS)
    assistant_id = body.get("assistant_id")
    if not isinstance(assistant_id, str) or not assistant_id:
        raise InvalidRequest("assistant_id is required: the id of an assistant or graph this server serves")
    command = _command(body)
    graph_input = body.get("input")
    if command is not None and graph_input is not None:
        raise InvalidRequest("send either input or command, not both")
    if graph_input is not None and not isinstance(graph_input, (dict, list)):
        raise InvalidRequest(f"input must be an object, got {type(graph_input).__name__}")
    given = optional_object(body, "config") or {}
    configurable = given.get("configurable") or {}
    if not isinstance(configurable, dict):
        raise InvalidRequest("config.configurable must be an object")
    checkpoint = _checkpoint(body)
    checkpoint_id = body.get("checkpoint_id")
    if checkpoint_id is not None and not isinstance(checkpoint_id, str):
        raise InvalidRequest("checkpoint_id must be a string")
    metadata = optional_object(body, "metadata") or {}
    durability = body.get("durability")
    if durability is not None and durability not in DURABILITY:
        raise InvalidRequest(f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}")
    checkpoint_during = body.get("checkpoint_during")
    if durability is None and checkpoint_during is not None:
        durability = "async" if checkpoint_during else "exit"
    subgraphs = body.get("stream_subgraphs") or False
    if not isinstance(subgraphs, bool):
        raise InvalidRequest("stream_subgraphs must be a boolean")
    config: dict[str, Any] = {
        **given,
        "configurable": {
            **configurable,
            **checkpoint,
            **({"checkpoint_id": checkpoint_id} if checkpoint_id else {}),
        },
        "metadata": {**(given.get("metadata") or {}), **metadata},
    }
    options = {
        "interrupt_before": _interrupt_nodes(body, "interrupt_before"),
        "interrupt_after": _interrupt_nodes(body, "interrupt_after"),
        "durability": durability,
    }
    return RunRequest(
        assistant_id=assistant_id,
        graph_input=command if command is not None else graph_input,
        config=config,  # type: ignore[arg-type]  # built above with every RunnableConfig key it uses
        context=optional_object(body, "context"),
        metadata=metadata,
        stream_modes=parse_stream_modes(body.get("stream_mode"), ["values"]),
        subgraphs=subgraphs,
        multitask_strategy=choice(body, "multitask_strategy", MULTITASK_STRATEGIES, "enqueue"),
        if_not_exists=choice(body, "if_not_exists", IF_NOT_EXISTS, "create" if stateless else "reject"),
        on_disconnect=choice(body, "on_disconnect", ON_DISCONNECT, "continue"),
        on_completion=choice(body, "on_completion", ON_COMPLETION, ON_COMPLETION[0]),
        options={k: v for k, v in options.items() if v is not None},
        kwargs=to_jsonable({k: v for k, v in body.items() if k != "metadata" and v is not None}),
        webhook=body.get("webhook"),
    )


class RunStream:
    """The events of one run, kept so that any number of consumers can follow them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.closed = False
        self._changed = asyncio.Event()

    def publish(self, event: str, data: Any) -> None:
        self.events.append((event, data))
        self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def follow(self, start: int = 0, idle: float | None = None) -> AsyncIterator[tuple[int, str, Any] | None]:
        """Yield (id, event, data) from position `start` on; with `idle`, None after quiet seconds."""
        position = start
        while True:
            while position < len(self.events):
                position += 1
                yield (position - 1, *self.events[position - 1])
            if self.closed:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), idle)
            except TimeoutError:
                yield None


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


@dataclass
class ActiveRun:
    record: Record
    request: RunRequest
    stream: RunStream = field(default_factory=RunStream)
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    rollback: bool = False
    final: Any = None
    consumers: int = 0


class ThreadTurns:
    """One turn per thread: runs of a thread execute one at a time, in arrival order.

    A thread is in the map while a run holds its turn; the queue holds the runs waiting
    for it, and the turn passes straight to the next of them, so no newcomer can slip in
    between. The map forgets a thread when its last run gives the turn back.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    def held(self, thread_id: str) -> bool:
        return thread_id in self._waiting

    def take_now(self, thread_id: str) -> bool:
        """Take the turn if nobody holds it; never wait."""
        if thread_id in self._waiting:
            return False
        self._waiting[thread_id] = deque()
        return True

    async def take(self, thread_id: str) -> None:
        if self.take_now(thread_id):
            return
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[thread_id].append(handed)
        try:
            await handed
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self.give_back(thread_id)  # handed the turn as it was cancelled: pass it on
            else:
                self._waiting[thread_id].remove(handed)
            raise

    def give_back(self, thread_id: str) -> None:
        queue = self._waiting[thread_id]
        while queue:
            handed = queue.popleft()
            if not handed.done():
                handed.set_result(None)
                return
        del self._waiting[thread_id]


def _thread_event_id(value: str) -> tuple[str, int]:
    run_id, _, position = value.rpartition(":")
    try:
        return parse_thread_id(run_id, "Last-Event-ID"), int(position)
    except (InvalidRequest, ValueError):
        raise InvalidRequest(f"Last-Event-ID must be an event id of this thread stream, got {value!r}") from None


class ThreadFollower:
    """One `GET /threads/{id}/stream` client: the runs of its thread, one after another, as they come.

    The run service adds each new run of the thread; `events` follows them in order of
    creation (runs of a thread execute in that order) and waits, with heartbeats, for
    the next. `close` (the client left) unregisters it so nothing keeps it alive.
    """

    def __init__(self, thread_id: str, modes: set[str], on_close: Callable[[], None]) -> None:
        self.thread_id = thread_id
        self._modes = modes
        self._on_close = on_close
        self._runs: deque[tuple[ActiveRun, int]] = deque()
        self._added = asyncio.Event()
        self._closed = False

    def add(self, run: ActiveRun, start: int = 0) -> None:
        self._runs.append((run, start))
        self._added.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._added.set()
            self._on_close()

    async def events(self) -> AsyncIterator[StreamEvent | None]:
        run_events, lifecycle = "run_modes" in self._modes, "lifecycle" in self._modes
        try:
            while not self._closed:
                if not self._runs:
                    self._added.clear()
                    try:
                        await asyncio.wait_for(self._added.wait(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        yield None
                    continue
                run, start = self._runs.popleft()
                run_id = run.record["run_id"]
                async for item in run.stream.follow(start, idle=HEARTBEAT_SECONDS):
                    if item is None:
                        yield None
                        continue
                    position, event, data = item
                    if run_events or (lifecycle and event == "metadata"):
                        yield f"{run_id}:{position}", event, data
                    if self._closed:
                        return
                if start <= len(run.stream.events):  # not already past the run's end
                    yield f"{run_id}:{len(run.stream.events)}", "metadata", {"status": "run_done", "run_id": run_id}
        finally:
            self.close()


class RunService:
    """Creates, executes, streams, joins and cancels runs.

    Two runs on one thread at the same time would both start from the same checkpoint
    and one's updates would be lost, so runs on a thread execute strictly one after
    another. A new run on a busy thread waits its turn (multitask_strategy='enqueue', the
    LangGraph API's default), is refused with 409 ('reject'), or interrupts the running
    one ('interrupt').
    At most `max_concurrency` runs execute at once; the rest wait as 'pending'.
    """

    def __init__(
        self,
        repository: Repository,
        graphs: GraphRegistry,
        assistants: AssistantService,
        webhooks: WebhookSender,
        checkpointer: BaseCheckpointSaver,
        max_concurrency: int,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self._repository = repository
        self._graphs = graphs
        self._assistants = assistants
        self._webhooks = webhooks
        self._checkpointer = checkpointer
        self._slots = asyncio.Semaphore(max_concurrency)
        self._turns = ThreadTurns()
        self._active: dict[str, ActiveRun] = {}
        self._by_thread: dict[str, list[str]] = {}
        self._finished: OrderedDict[str, ActiveRun] = OrderedDict()
        # Thread streams (GET /threads/{id}/stream) waiting for the next run of their thread.
        self._followers: dict[str, set[ThreadFollower]] = {}

    # Creating -------------------------------------------------------------------

    async def create(self, thread_id: str | None, payload: Any) -> ActiveRun:
        """Validate and start a run in the background; `thread_id` None makes a stateless run."""
        stateless = thread_id is None
        request = parse_run_request(payload, stateless=stateless)
        if request.webhook is not None:
            self._webhooks.validate(request.webhook)
        apply_assistant(request, await self._assistants.resolve(request.assistant_id))
        if stateless:
            thread_id = str(uuid.uuid4())
            await self._repository.create_thread(thread_id, {"stateless": True})
        else:
            assert thread_id is not None
            thread_id = parse_thread_id(thread_id)
        busy = [run_id for run_id in self._by_thread.get(thread_id, []) if run_id in self._active]
        if busy and request.multitask_strategy == "reject":
            raise ThreadBusy(thread_id)
        if busy and request.multitask_strategy in ("interrupt", "rollback"):
            rollback = request.multitask_strategy == "rollback"
            if rollback:
                self._check_rollback()
            for run_id in busy:
                reason = f"replaced by a newer run (multitask_strategy={request.multitask_strategy!r})"
                self._cancel(self._active[run_id], reason, rollback)
        run_id = str(uuid.uuid4())
        ids = {
            "thread_id": thread_id,
            "run_id": run_id,
            "assistant_id": request.assistant_id,
            "graph_id": request.graph_id,
        }
        request.config["configurable"].update(ids)
        request.config["metadata"].update(ids)  # type: ignore[typeddict-item]
        run = {
            "run_id": run_id,
            "thread_id": thread_id,
            "assistant_id": request.assistant_id,
            "status": "pending",
            "metadata": request.metadata,
            "kwargs": request.kwargs,
            "multitask_strategy": request.multitask_strategy,
        }
        # A run whose thread is idle here, with a slot free, takes both now and is stored
        # running: one statement instead of an insert and a start.
        started = not busy and await self._take_turn_now(thread_id)
        thread_metadata = {"graph_id": request.graph_id, "assistant_id": request.assistant_id}
        if started:
            run["status"] = "running"
        try:
            # The insert itself tells whether the thread exists: no separate look-up.
            record = await self._repository.create_run(run, thread_metadata if started else None)
            if record is None:
                if request.if_not_exists == "reject":
                    raise NotFound(f"Thread {thread_id!r} not found; send if_not_exists='create' to create it")
                await self._repository.create_thread(thread_id, {})
                record = await self._repository.create_run(run, thread_metadata if started else None)
                assert record is not None  # the thread was just created
        except BaseException:
            if started:
                self._give_turn_back(thread_id)
            raise
        active = ActiveRun(record=public_run(record), request=request)
        self._active[run_id] = active
        self._by_thread.setdefault(thread_id, []).append(run_id)
        for follower in self._followers.get(thread_id, ()):
            follower.add(active)
        active.stream.publish("metadata", {"run_id": run_id, "attempt": 1})
        # The task's first step runs before any other request can cancel it, so a turn
        # taken here is always given back by the task.
        active.task = asyncio.create_task(self._run(active, stateless, started), name=f"run {run_id}")
        return active

    # Executing -------------------------------------------------------------------

    async def _take_turn_now(self, thread_id: str) -> bool:
        """Take the thread's turn and an execution slot if both are free; never wait."""
        if self._slots.locked() or not self._turns.take_now(thread_id):
            return False
        await self._slots.acquire()  # not locked: returns at once
        return True

    def _give_turn_back(self, thread_id: str) -> None:
        self._slots.release()
        self._turns.give_back(thread_id)

    @contextlib.asynccontextmanager
    async def _turn(self, thread_id: str, taken: bool) -> AsyncIterator[None]:
        """Hold the thread's turn and a slot (waiting for them unless already `taken`)."""
        if not taken:
            await self._turns.take(thread_id)
            try:
                await self._slots.acquire()
            except BaseException:
                self._turns.give_back(thread_id)
                raise
        try:
            yield
        finally:
            self._give_turn_back(thread_id)

    async def _run(self, active: ActiveRun, stateless: bool, started: bool) -> None:
        run_id, thread_id = active.record["run_id"], active.record["thread_id"]
        status, error = "success", None
        started_at = datetime.now(UTC)
        try:
            async with self._turn(thread_id, started):
                try:
                    if not started:
                        await self._repository.start_run(
                            run_id,
                            thread_id,
                            {"graph_id": active.request.graph_id, "assistant_id": active.request.assistant_id},
                        )
                    active.record["status"] = "running"
                    status, error = await self._execute(active)
                except asyncio.CancelledError:
                    # Settled while the thread is still ours: a queued run must not start
                    # from checkpoints a rollback is about to delete.
                    status, error = "interrupted", active.cancel_reason or "the run was cancelled"
                    await asyncio.shield(self._settle_cancelled(active, error))
        except asyncio.CancelledError:  # cancelled while still waiting for its turn
            status, error = "interrupted", active.cancel_reason or "the run was cancelled"
            await asyncio.shield(self._settle_cancelled(active, error))
        finally:
            active.record["status"] = status
            active.stream.close()
            self._forget(active)
            if active.request.webhook:
                values = None if status == "error" else active.final
                self._webhooks.send(active.request.webhook, active.record, values, error, started_at)
            if stateless and active.request.on_completion == "delete":
                await self._repository.delete_thread(thread_id)
        logger.debug("run %s on thread %s: %s%s", run_id, thread_id, status, f" ({error})" if error else "")

    async def _settle_cancelled(self, active: ActiveRun, error: str) -> None:
        run_id, thread_id = active.record["run_id"], active.record["thread_id"]
        if not active.rollback:
            await self._repository.finish_run(run_id, thread_id, "interrupted", "idle", error=error)
            return
        # Rollback: as if the run had never been made.
        deleted = await delete_run_checkpoints(self._checkpointer, thread_id, run_id)
        await self._repository.delete_run(run_id)
        await self._repository.finish_run(run_id, thread_id, "interrupted", "idle")
        logger.info("run %s rolled back (%d checkpoints deleted)", run_id, deleted)

    async def _execute(self, active: ActiveRun) -> tuple[str, str | None]:
        """Run the graph, publishing its events; settle the records; return status and error."""
        request, run_id, thread_id = active.request, active.record["run_id"], active.record["thread_id"]
        outcome = Outcome()
        try:
            graph = await self._graphs.get(request.graph_id, request.config)
            async for event, data in self._events(graph, request, outcome):
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
            await asyncio.shield(self._repository.finish_run(run_id, thread_id, "error", "error", error=message))
            return "error", message
        if snapshot is None:
            values, interrupts, by_task, waiting = to_jsonable(outcome.values), [], {}, False
        else:
            values, interrupts = to_jsonable(snapshot.values), to_jsonable(snapshot.interrupts)
            by_task = {task.id: to_jsonable(task.interrupts) for task in snapshot.tasks if task.interrupts}
            waiting = bool(interrupts or snapshot.next)
        active.final = {**values, "__interrupt__": interrupts} if interrupts and isinstance(values, dict) else values
        await self._repository.finish_run(
            run_id, thread_id, "success", "interrupted" if waiting else "idle", values=values, interrupts=by_task
        )
        return "success", None

    async def _events(self, graph: Any, request: RunRequest, outcome: Outcome) -> AsyncIterator[tuple[str, Any]]:
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
            source = self._with_events(graph, request, modes, kwargs)
        else:
            source = graph.astream(request.graph_input, request.config, stream_mode=modes, **kwargs)
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
                    messages[message.id] = messages[message.id] + message  # type: ignore[operator]
                merged = messages[message.id]
                partial = isinstance(merged, BaseMessageChunk)
                shown = merged if partial else message_chunk_to_message(merged)  # type: ignore[arg-type]
                yield ("messages/partial" if partial else "messages/complete"), [shown]
            else:
                yield mode + suffix, chunk

    @staticmethod
    async def _with_events(
        graph: Any, request: RunRequest, modes: list[str], kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[Any, ...]]:
        """astream_events: each event as (None, event), and the root's chunks as astream items."""
        root: str | None = None
        async for event in graph.astream_events(
            request.graph_input, request.config, version="v2", stream_mode=modes, **kwargs
        ):
            if root is None:
                root = event["run_id"]
            if event["event"] == "on_chain_stream" and event["run_id"] == root:
                yield tuple(event["data"]["chunk"])
            yield (None, event)

    def _forget(self, active: ActiveRun) -> None:
        run_id, thread_id = active.record["run_id"], active.record["thread_id"]
        self._active.pop(run_id, None)
        runs = self._by_thread.get(thread_id, [])
        if run_id in runs:
            runs.remove(run_id)
        if not runs:
            self._by_thread.pop(thread_id, None)
        self._finished[run_id] = active
        while len(self._finished) > FINISHED_STREAMS_KEPT:
            self._finished.popitem(last=False)

    def _cancel(self, active: ActiveRun, reason: str, rollback: bool = False) -> None:
        if active.task is not None and not active.task.done():
            active.cancel_reason = reason
            active.rollback = active.rollback or rollback
            active.task.cancel()

    def _check_rollback(self) -> None:
        if not isinstance(self._checkpointer, ErasableCheckpointer):
            raise InvalidRequest(
                f"rollback is not supported with {type(self._checkpointer).__name__}: it cannot delete checkpoints"
            )

    # Consuming -------------------------------------------------------------------

    async def wait(self, thread_id: str | None, payload: Any) -> Any:
        """Run to the end and return the final values (LangGraph's /runs/wait)."""
        active = await self.create(thread_id, payload)
        return await self._outcome(active)

    async def _outcome(self, active: ActiveRun) -> Any:
        assert active.task is not None
        await asyncio.shield(active.task)
        if active.final is None and active.record["status"] == "interrupted":
            return {"__error__": {"error": "CancelledError", "message": active.cancel_reason or "cancelled"}}
        return active.final

    async def join(self, thread_id: str, run_id: str) -> Any:
        active = await self._find(thread_id, run_id)
        if active is None:
            thread = await self._repository.get_thread(parse_thread_id(thread_id))
            return (thread or {}).get("values") or {}
        return await self._outcome(active)

    def events(
        self, active: ActiveRun, stream_modes: list[str] | None = None, after: int | None = None
    ) -> AsyncIterator[StreamEvent | None]:
        """Follow a run's events from its start, or after event id `after` (a reconnecting client's
        Last-Event-ID); None marks a quiet moment, for heartbeats."""
        return self._filtered(active, stream_modes, 0 if after is None else after + 1)

    async def _filtered(self, active: ActiveRun, stream_modes: list[str] | None, start: int) -> AsyncIterator[Any]:
        wanted = None if not stream_modes else {"messages" if m == "messages-tuple" else m for m in stream_modes}
        active.consumers += 1
        try:
            async for item in active.stream.follow(start, idle=HEARTBEAT_SECONDS):
                if item is None or wanted is None or item[1] in ("metadata", "error"):
                    yield item
                elif item[1].split("|")[0].split("/")[0] in wanted:
                    yield item
        finally:
            active.consumers -= 1

    def consumer_gone(self, active: ActiveRun) -> None:
        """The client streaming this run went away: cancel it if it asked for that."""
        if active.request.on_disconnect == "cancel" and active.consumers <= 1:
            self._cancel(active, "the client disconnected (on_disconnect='cancel')")

    async def find_for_stream(self, thread_id: str, run_id: str) -> ActiveRun:
        active = await self._find(thread_id, run_id)
        if active is None:
            raise NotFound(f"Run {run_id!r} has finished and its events are no longer kept")
        return active

    async def thread_stream(
        self, thread_id: str, modes: list[str] | None = None, last_event_id: str | None = None
    ) -> ThreadFollower:
        """Follow a thread's runs, the one in progress and every later one, until closed.

        `modes`: `run_modes` (every event of the runs, the default) and/or `lifecycle`
        (a `metadata` event when each run starts and one with status `run_done` when it
        ends). `last_event_id` (a reconnecting client's) resumes after that event, from
        the runs whose events are still kept."""
        thread_id = parse_thread_id(thread_id)
        wanted = set(modes or ["run_modes"])
        for mode in wanted:
            if mode not in THREAD_STREAM_MODES:
                raise InvalidRequest(
                    f"stream_mode {mode!r} is not supported for thread streams; expected "
                    f"{' or '.join(THREAD_STREAM_MODES)}"
                )
        if not await self._repository.thread_exists(thread_id):
            raise NotFound(f"Thread {thread_id!r} not found")
        follower = ThreadFollower(thread_id, wanted, lambda: self._unfollow(follower))
        if last_event_id is not None:
            run_id, position = _thread_event_id(last_event_id)
            kept = [
                run
                for run in (*self._finished.values(), *self._active.values())
                if run.record["thread_id"] == thread_id
            ]
            kept.sort(key=lambda run: run.record["created_at"])
            names = [run.record["run_id"] for run in kept]
            if run_id not in names:
                raise NotFound(f"Event {last_event_id!r} of thread {thread_id!r} is no longer kept")
            for run in kept[names.index(run_id) :]:
                follower.add(run, position + 1 if run.record["run_id"] == run_id else 0)
        else:
            for run_id in self._by_thread.get(thread_id, []):
                if run_id in self._active:
                    follower.add(self._active[run_id])
        self._followers.setdefault(thread_id, set()).add(follower)
        return follower

    def _unfollow(self, follower: ThreadFollower) -> None:
        followers = self._followers.get(follower.thread_id)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self._followers[follower.thread_id]

    async def _find(self, thread_id: str, run_id: str) -> ActiveRun | None:
        thread_id, run_id = parse_thread_id(thread_id), parse_thread_id(run_id, "run_id")
        record = await self._repository.get_run(run_id)
        if record is None or record["thread_id"] != thread_id:
            raise NotFound(f"Run {run_id!r} not found on thread {thread_id!r}")
        return self._active.get(run_id) or self._finished.get(run_id)

    # Managing --------------------------------------------------------------------

    async def get(self, thread_id: str, run_id: str) -> dict[str, Any]:
        thread_id, run_id = parse_thread_id(thread_id), parse_thread_id(run_id, "run_id")
        record = await self._repository.get_run(run_id)
        if record is None or record["thread_id"] != thread_id:
            raise NotFound(f"Run {run_id!r} not found on thread {thread_id!r}")
        return public_run(record)

    async def list(self, thread_id: str, limit: Any, offset: Any, status: Any) -> list[dict[str, Any]]:
        thread_id = parse_thread_id(thread_id)
        if not await self._repository.thread_exists(thread_id):
            raise NotFound(f"Thread {thread_id!r} not found")
        if status is not None and status not in RUN_STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
        limit, offset = query_integer(limit, "limit", 10), query_integer(offset, "offset", 0)
        records = await self._repository.list_runs(thread_id, limit, offset, status)
        return [public_run(record) for record in records]

    async def cancel(self, thread_id: str, run_id: str, wait: bool, action: Any) -> None:
        rollback = self._cancel_action(action)
        await self.get(thread_id, run_id)
        active = self._active.get(parse_thread_id(run_id, "run_id"))
        if active is None:
            raise Conflict(f"Run {run_id!r} is not pending or running; nothing to cancel")
        self._cancel(active, "cancelled by request", rollback)
        if wait and active.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(active.task)

    async def cancel_many(self, payload: Any, action: Any) -> None:
        """Cancel the runs named by id, the runs of a thread, or every run with a status."""
        rollback = self._cancel_action(action)
        body = require_object(payload)
        reject_unknown(body, frozenset({"thread_id", "run_ids", "status"}))
        thread_id = parse_thread_id(body["thread_id"]) if body.get("thread_id") else None
        run_ids = body.get("run_ids")
        status = body.get("status")
        if run_ids is not None and (not isinstance(run_ids, list) or not run_ids):
            raise InvalidRequest("run_ids must be a non-empty list of run ids")
        if status is not None and status not in ("pending", "running", "all"):
            raise InvalidRequest(f"status must be one of pending, running, all, got {status!r}")
        if run_ids is None and status is None and thread_id is None:
            raise InvalidRequest("name the runs to cancel: run_ids, thread_id or status")
        wanted = {parse_thread_id(r, "run_ids[]") for r in run_ids} if run_ids is not None else None
        for active in list(self._active.values()):
            if wanted is not None and active.record["run_id"] not in wanted:
                continue
            if thread_id is not None and active.record["thread_id"] != thread_id:
                continue
            if status not in (None, "all") and active.record["status"] != status:
                continue
            self._cancel(active, "cancelled by request", rollback)

    def _cancel_action(self, action: Any) -> bool:
        """True for action=rollback (cancel and delete the run), False for interrupt (the default)."""
        if action not in (None, *CANCEL_ACTIONS):
            raise InvalidRequest(f"action must be one of {', '.join(CANCEL_ACTIONS)}, got {action!r}")
        if action == "rollback":
            self._check_rollback()
        return action == "rollback"

    async def delete(self, thread_id: str, run_id: str) -> None:
        await self.get(thread_id, run_id)
        if parse_thread_id(run_id, "run_id") in self._active:
            raise Conflict(f"Run {run_id!r} is still pending or running; cancel it first")
        await self._repository.delete_run(run_id)

    async def shutdown(self) -> None:
        """Cancel every run (the server is stopping) and wait for their records to settle."""
        tasks = [active.task for active in self._active.values() if active.task is not None]
        for active in list(self._active.values()):
            self._cancel(active, "the server stopped")
        await asyncio.gather(*tasks, return_exceptions=True)


def public_run(record: Record) -> dict[str, Any]:
    """A run as the LangGraph API returns it."""
    return {
        "run_id": record["run_id"],
        "thread_id": record["thread_id"],
        "assistant_id": record["assistant_id"],
        "created_at": to_jsonable(record["created_at"]),
        "updated_at": to_jsonable(record["updated_at"]),
        "status": record["status"],
        "metadata": record["metadata"],
        "kwargs": record["kwargs"],
        "multitask_strategy": record["multitask_strategy"],
    }


async def init_run_service(
    repository: Repository,
    graphs: GraphRegistry,
    assistants: AssistantService,
    webhooks: WebhookSender,
    checkpointer: BaseCheckpointSaver,
    max_concurrency: int,
) -> AsyncIterator[RunService]:
    """Resource: the run service; on shutdown, runs are cancelled before the pool closes."""
    service = RunService(repository, graphs, assistants, webhooks, checkpointer, max_concurrency)
    try:
        yield service
    finally:
        started = time.monotonic()
        await service.shutdown()
        logger.info("runs stopped (%.0f ms)", (time.monotonic() - started) * 1000)
