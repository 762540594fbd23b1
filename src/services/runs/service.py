"""Runs: creating them, following their events, joining, cancelling and listing them.

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
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from src.services.assistants.service import AssistantService
from src.services.database import unavailable_cause
from src.services.errors import Conflict, InvalidRequest, NotFound, ThreadBusy
from src.services.persistence import Checkpointer, ErasableCheckpointer
from src.services.runs.active import ActiveRun, public_run
from src.services.runs.executor import RunExecutor
from src.services.runs.follower import ThreadFollower, thread_event_id
from src.services.runs.repository import NewRun, RunRecord, RunRepository
from src.services.runs.request import THREAD_STREAM_MODES, CancelSelection, RunRequest, apply_assistant
from src.services.runs.streams import HEARTBEAT_SECONDS, RunStream, StreamEvent
from src.services.runs.turns import ThreadTurns
from src.services.threads.repository import ThreadRepository
from src.services.threads.service import parse_thread_id
from src.services.webhooks import WebhookSender

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunLimits:
    """How much the run service holds at once (settings under `runs.`)."""

    max_concurrency: int = 32  # runs executing at once; more wait as pending
    max_events_per_run: int = 20_000  # events a run keeps for its consumers
    # Finished runs whose events stay for late `join`/`stream` callers: at most this many,
    # for at most this long.
    finished_kept: int = 256
    finished_kept_seconds: float = 60.0


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
        threads: ThreadRepository,
        runs: RunRepository,
        executor: RunExecutor,
        assistants: AssistantService,
        webhooks: WebhookSender,
        checkpointer: Checkpointer,
        limits: RunLimits,
    ) -> None:
        if limits.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {limits.max_concurrency}")
        self._threads = threads
        self._runs = runs
        self._executor = executor
        self._assistants = assistants
        self._webhooks = webhooks
        self._checkpointer = checkpointer
        self._limits = limits
        self._slots = asyncio.Semaphore(limits.max_concurrency)
        self._turns = ThreadTurns()
        self._active: dict[str, ActiveRun] = {}
        self._by_thread: dict[str, list[str]] = {}
        self._finished: OrderedDict[str, tuple[float, ActiveRun]] = OrderedDict()
        # Thread streams (GET /threads/{id}/stream) waiting for the next run of their thread.
        self._followers: dict[str, set[ThreadFollower]] = {}

    # Creating -------------------------------------------------------------------

    async def create(self, thread_id: str | None, request: RunRequest) -> ActiveRun:
        """Start a run in the background; `thread_id` None makes a stateless run."""
        stateless = thread_id is None
        if request.webhook is not None:
            self._webhooks.validate(request.webhook)
        apply_assistant(request, await self._assistants.resolve(request.assistant_id))
        if thread_id is None:
            thread_id = str(uuid.uuid4())
            await self._threads.create_thread(thread_id, {**request.thread_metadata, "stateless": True})
        else:
            thread_id = parse_thread_id(thread_id)
        busy = self._apply_multitask_strategy(thread_id, request)
        run_id = str(uuid.uuid4())
        ids = {"thread_id": thread_id, "run_id": run_id, "assistant_id": request.assistant_id}
        request.config["configurable"].update({**ids, "graph_id": request.graph_id})
        request.config["metadata"].update({**ids, "graph_id": request.graph_id})
        # A run whose thread is idle here, with a slot free, takes both now and is stored
        # running: one statement instead of an insert and a start.
        started = not busy and await self._take_turn_now(thread_id)
        run: NewRun = {
            "run_id": run_id,
            "thread_id": thread_id,
            "assistant_id": request.assistant_id,
            "status": "running" if started else "pending",
            "metadata": request.metadata,
            "kwargs": request.kwargs,
            "multitask_strategy": request.multitask_strategy,
        }
        try:
            record = await self._insert(run, request, started)
        except BaseException:
            if started:
                self._give_turn_back(thread_id)
            raise
        active = ActiveRun(
            record=public_run(record), request=request, stream=RunStream(self._limits.max_events_per_run)
        )
        self._active[run_id] = active
        self._by_thread.setdefault(thread_id, []).append(run_id)
        for follower in self._followers.get(thread_id, ()):
            follower.add(active)
        active.stream.publish("metadata", {"run_id": run_id, "attempt": 1})
        # The task's first step runs before any other request can cancel it, so a turn
        # taken here is always given back by the task.
        active.task = asyncio.create_task(self._run(active, stateless, started), name=f"run {run_id}")
        return active

    def _apply_multitask_strategy(self, thread_id: str, request: RunRequest) -> list[str]:
        """The runs of the thread in progress; refused (reject) or cancelled (interrupt, rollback)."""
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
        return busy

    async def _insert(self, run: NewRun, request: RunRequest, started: bool) -> RunRecord:
        """Store the run (started: running, its thread busy); the insert itself tells whether the
        thread exists, so there is no separate look-up."""
        thread_metadata = {"graph_id": request.graph_id, "assistant_id": request.assistant_id} if started else None
        record = await self._runs.create_run(run, thread_metadata)
        if record is None:
            if request.if_not_exists == "reject":
                raise NotFound(f"Thread {run['thread_id']!r} not found; send if_not_exists='create' to create it")
            await self._threads.create_thread(run["thread_id"], dict(request.thread_metadata))
            record = await self._runs.create_run(run, thread_metadata)
            assert record is not None  # the thread was just created
        return record

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
                        metadata = {"graph_id": active.request.graph_id, "assistant_id": active.request.assistant_id}
                        await self._executor.durably(run_id, lambda: self._runs.start_run(run_id, thread_id, metadata))
                    active.record["status"] = "running"
                    status, error = await self._executor.execute(active)
                except asyncio.CancelledError:
                    # Settled while the thread is still ours: a queued run must not start
                    # from checkpoints a rollback is about to delete.
                    status, error = "interrupted", active.cancel_reason or "the run was cancelled"
                    active.conclude(status)
                    await asyncio.shield(self._executor.settle_cancelled(active, error))
        except asyncio.CancelledError:  # cancelled while still waiting for its turn
            status, error = "interrupted", active.cancel_reason or "the run was cancelled"
            active.conclude(status)
            await asyncio.shield(self._executor.settle_cancelled(active, error))
        finally:
            active.conclude(status)
            active.record["status"] = status
            self._forget(active)
            if active.request.webhook:
                values = None if status == "error" else active.final
                self._webhooks.send(active.request.webhook, active.record, values, error, started_at)
            if stateless and active.request.on_completion == "delete":
                await self._executor.durably(run_id, lambda: self._delete_stateless_thread(thread_id))
        logger.debug("run %s on thread %s: %s%s", run_id, thread_id, status, f" ({error})" if error else "")

    async def _delete_stateless_thread(self, thread_id: str) -> None:
        """A stateless run's thread goes, and with it every checkpoint the run wrote."""
        await self._checkpointer.adelete_thread(thread_id)
        await self._threads.delete_thread(thread_id)

    def _forget(self, active: ActiveRun) -> None:
        run_id, thread_id = active.record["run_id"], active.record["thread_id"]
        self._active.pop(run_id, None)
        runs = self._by_thread.get(thread_id, [])
        if run_id in runs:
            runs.remove(run_id)
        if not runs:
            self._by_thread.pop(thread_id, None)
        self._finished[run_id] = (time.monotonic(), active)
        self._prune_finished()

    def _prune_finished(self) -> None:
        oldest = time.monotonic() - self._limits.finished_kept_seconds
        while self._finished and (
            len(self._finished) > self._limits.finished_kept or next(iter(self._finished.values()))[0] < oldest
        ):
            self._finished.popitem(last=False)

    def _finished_run(self, run_id: str) -> ActiveRun | None:
        self._prune_finished()
        kept = self._finished.get(run_id)
        return kept[1] if kept is not None else None

    def _cancel(self, active: ActiveRun, reason: str, rollback: bool = False) -> None:
        # A run whose outcome is known is only writing its record: nothing left to cancel.
        if active.task is not None and not active.task.done() and not active.concluded.is_set():
            active.cancel_reason = reason
            active.rollback = active.rollback or rollback
            active.task.cancel()

    def _check_rollback(self) -> None:
        if not isinstance(self._checkpointer, ErasableCheckpointer):
            raise InvalidRequest(
                f"rollback is not supported with {type(self._checkpointer).__name__}: it cannot delete checkpoints"
            )

    # Consuming -------------------------------------------------------------------

    async def wait(self, thread_id: str | None, request: RunRequest) -> Any:
        """Run to the end and return the final values (LangGraph's /runs/wait)."""
        active = await self.create(thread_id, request)
        return await self._outcome(active)

    async def _outcome(self, active: ActiveRun) -> Any:
        await active.concluded.wait()
        if active.failure is not None and unavailable_cause(active.failure) is not None:
            raise active.failure  # the database failed the run: the client hears 503, as for any request
        if active.final is None and active.record["status"] == "interrupted":
            return {"__error__": {"error": "CancelledError", "message": active.cancel_reason or "cancelled"}}
        return active.final

    async def join(self, thread_id: str, run_id: str) -> Any:
        active = await self._find(thread_id, run_id)
        if active is None:
            thread = await self._threads.get_thread(parse_thread_id(thread_id))
            return (thread["values"] if thread else None) or {}
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
        if not await self._threads.thread_exists(thread_id):
            raise NotFound(f"Thread {thread_id!r} not found")
        follower = ThreadFollower(thread_id, wanted, lambda: self._unfollow(follower))
        if last_event_id is not None:
            run_id, position = thread_event_id(last_event_id)
            kept = [
                run
                for run in (*(kept for _, kept in self._finished.values()), *self._active.values())
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
        record = await self._runs.get_run(run_id)
        if record is None or record["thread_id"] != thread_id:
            raise NotFound(f"Run {run_id!r} not found on thread {thread_id!r}")
        return self._active.get(run_id) or self._finished_run(run_id)

    # Managing --------------------------------------------------------------------

    async def get(self, thread_id: str, run_id: str) -> dict[str, Any]:
        thread_id, run_id = parse_thread_id(thread_id), parse_thread_id(run_id, "run_id")
        record = await self._runs.get_run(run_id)
        if record is None or record["thread_id"] != thread_id:
            raise NotFound(f"Run {run_id!r} not found on thread {thread_id!r}")
        return public_run(record)

    async def list(self, thread_id: str, limit: int, offset: int, status: str | None) -> list[dict[str, Any]]:
        thread_id = parse_thread_id(thread_id)
        if not await self._threads.thread_exists(thread_id):
            raise NotFound(f"Thread {thread_id!r} not found")
        records = await self._runs.list_runs(thread_id, limit, offset, status)
        return [public_run(record) for record in records]

    async def cancel(self, thread_id: str, run_id: str, wait: bool, rollback: bool) -> None:
        """Cancel a pending or running run; with `rollback`, delete it and its checkpoints too."""
        if rollback:
            self._check_rollback()
        await self.get(thread_id, run_id)
        active = self._active.get(parse_thread_id(run_id, "run_id"))
        if active is None:
            raise Conflict(f"Run {run_id!r} is not pending or running; nothing to cancel")
        self._cancel(active, "cancelled by request", rollback)
        if wait and active.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(active.task)

    async def cancel_many(
        self,
        selection: CancelSelection,
        rollback: bool,
        visible_threads: Callable[[set[str]], Awaitable[set[str]]] | None = None,
    ) -> None:
        """Cancel the runs named by id, the runs of a thread, or every run with a status.

        `visible_threads` (auth, from the web layer): given thread ids, those the caller may see;
        runs on other threads are left alone."""
        if rollback:
            self._check_rollback()
        allowed = None
        if visible_threads is not None:
            allowed = await visible_threads({active.record["thread_id"] for active in self._active.values()})
        for active in list(self._active.values()):
            if allowed is not None and active.record["thread_id"] not in allowed:
                continue
            if selection.run_ids is not None and active.record["run_id"] not in selection.run_ids:
                continue
            if selection.thread_id is not None and active.record["thread_id"] != selection.thread_id:
                continue
            if selection.status not in (None, "all") and active.record["status"] != selection.status:
                continue
            self._cancel(active, "cancelled by request", rollback)

    async def delete(self, thread_id: str, run_id: str) -> None:
        await self.get(thread_id, run_id)
        if parse_thread_id(run_id, "run_id") in self._active:
            raise Conflict(f"Run {run_id!r} is still pending or running; cancel it first")
        await self._runs.delete_run(run_id)

    async def shutdown(self) -> None:
        """Cancel every run (the server is stopping) and wait for their records to settle."""
        self._executor.stop()
        tasks = [active.task for active in self._active.values() if active.task is not None]
        for active in list(self._active.values()):
            self._cancel(active, "the server stopped")
        await asyncio.gather(*tasks, return_exceptions=True)


async def init_run_service(
    threads: ThreadRepository,
    runs: RunRepository,
    executor: RunExecutor,
    assistants: AssistantService,
    webhooks: WebhookSender,
    checkpointer: Checkpointer,
    limits: RunLimits,
) -> AsyncIterator[RunService]:
    """Resource: the run service, after marking runs a previous process left in flight; on
    shutdown, runs are cancelled before the pool closes."""
    orphaned = await runs.recover()
    if orphaned:
        logger.info("%d run(s) cut short by the last stop marked error", orphaned)
    service = RunService(threads, runs, executor, assistants, webhooks, checkpointer, limits)
    try:
        yield service
    finally:
        started = time.monotonic()
        await service.shutdown()
        logger.info("runs stopped (%.0f ms)", (time.monotonic() - started) * 1000)
