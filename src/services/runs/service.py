"""Runs: creating them, executing them, following their events, joining, cancelling and listing them.

A run is a row in the runs queue (repository.py) and, in the process that executes it, a
task whose events go to a `RunStream`: a buffer any number of consumers can follow from
the start (the client that started it, a `join`, a reconnecting stream), so no consumer
ever holds the run - or a database connection - while it waits. A run that can start at
once starts where it was accepted (one statement); one that must wait is taken by any
process with a free slot (worker.py). A client on another process than the executing one
follows a mirror of the run (relay.py). On memory persistence the one process is all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from src.services.assistants.service import AssistantService
from src.services.database import one_line, unavailable_cause
from src.services.errors import Conflict, InvalidRequest, NotFound, ThreadBusy
from src.services.logcontext import log_context
from src.services.persistence import Checkpointer, ErasableCheckpointer, delete_run_checkpoints
from src.services.runs.active import ActiveRun, public_run
from src.services.runs.executor import RunExecutor
from src.services.runs.follower import ThreadFollower, thread_event_id
from src.services.runs.notifier import Notifier
from src.services.runs.observer import NoRunObserver, RunObserver
from src.services.runs.relay import mirror, start_sharing
from src.services.runs.repository import ACTIVE, NewRun, RunRecord, RunRepository, Swept
from src.services.runs.request import THREAD_STREAM_MODES, CancelSelection, RunRequest, apply_assistant
from src.services.runs.streams import HEARTBEAT_SECONDS, RunStream, StreamEvent
from src.services.runs.worker import QueueSettings, RunWorker, Slots
from src.services.threads.repository import ThreadRepository
from src.services.threads.service import parse_thread_id
from src.services.waiting import wait_event
from src.services.webhooks import WebhookSender

logger = logging.getLogger(__name__)

# A thread stream looks for runs of its thread created on other processes this often.
DISCOVERY_SECONDS = 0.5
# Stored events of runs that ended this long ago are deleted (their followers are gone).
EVENTS_KEPT_SECONDS = 600.0


@dataclass(frozen=True)
class RunLimits:
    """How much the run service holds at once (settings under `runs.`)."""

    max_concurrency: int = 32  # runs executing at once in this process; more wait as pending
    max_events_per_run: int = 20_000  # events a run keeps for its consumers
    # Finished runs whose events stay for late `join`/`stream` callers: at most this many,
    # for at most this long.
    finished_kept: int = 256
    finished_kept_seconds: float = 60.0
    # On a graceful stop, running runs go back to the queue (Postgres: another process, or
    # this one after a restart, resumes them) instead of ending interrupted (memory).
    hand_back_on_stop: bool = False


class RunService:
    """Creates, executes, streams, joins and cancels runs.

    Two runs on one thread at the same time would both start from the same checkpoint
    and one's updates would be lost, so runs on a thread execute strictly one after
    another, across every process (the queue enforces it). A new run on a busy thread
    waits its turn (multitask_strategy='enqueue', the LangGraph API's default), is refused
    with 409 ('reject'), or cancels the runs before it ('interrupt', 'rollback').
    """

    def __init__(
        self,
        threads: ThreadRepository,
        runs: RunRepository,
        executor: RunExecutor,
        assistants: AssistantService,
        webhooks: WebhookSender,
        checkpointer: Checkpointer,
        notifier: Notifier,
        limits: RunLimits,
        queue: QueueSettings,
        owner: str,
        observer: RunObserver | None = None,
    ) -> None:
        self._threads = threads
        self._runs = runs
        self._executor = executor
        self._assistants = assistants
        self._webhooks = webhooks
        self._checkpointer = checkpointer
        self._notifier = notifier
        self._limits = limits
        self._queue = queue
        self._owner = owner
        self._observer = observer or NoRunObserver()
        self._slots = Slots(limits.max_concurrency)
        self._worker = RunWorker(
            runs,
            owner,
            queue,
            self._slots,
            self._claimed,
            self._executing,
            self._lost,
            self._cancel_asked,
            self._roll_back_swept,
        )
        # Runs this process created, executes or follows for a client, until they end.
        self._active: dict[str, ActiveRun] = {}
        self._finished: OrderedDict[str, tuple[float, ActiveRun]] = OrderedDict()
        # Thread streams (GET /threads/{id}/stream) waiting for the next run of their thread.
        self._followers: dict[str, set[ThreadFollower]] = {}
        # Followers of runs executing elsewhere, woken by their notifications.
        self._wakeups: dict[str, asyncio.Event] = {}
        self._housekeeping: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()  # writes that belong to no run kept here
        notifier.subscribe(self._on_message)

    def start(self) -> None:
        self._worker.start()
        self._housekeeping = asyncio.create_task(self._forget_old_events(), name="forget old run events")

    # Creating -------------------------------------------------------------------

    async def create(self, thread_id: str | None, request: RunRequest) -> ActiveRun:
        """Start a run in the background; `thread_id` None makes a stateless run."""
        if request.webhook is not None:
            self._webhooks.validate(request.webhook)
        apply_assistant(request, await self._assistants.resolve(request.assistant_id))
        if thread_id is None:
            thread_id = str(uuid.uuid4())
            request.stateless = True
            await self._threads.create_thread(thread_id, {**request.thread_metadata, "stateless": True})
        else:
            thread_id = parse_thread_id(thread_id)
        await self._apply_multitask_strategy(thread_id, request)
        run_id = str(uuid.uuid4())
        ids = {"thread_id": thread_id, "run_id": run_id, "assistant_id": request.assistant_id}
        request.config["configurable"].update({**ids, "graph_id": request.graph_id})
        request.config["metadata"].update({**ids, "graph_id": request.graph_id})
        run: NewRun = {
            "run_id": run_id,
            "thread_id": thread_id,
            "assistant_id": request.assistant_id,
            "metadata": request.metadata,
            "kwargs": request.kwargs,
            "multitask_strategy": request.multitask_strategy,
            "request": request.to_json(),
        }
        # A run whose thread is idle, with a slot free here, starts here at once: inserted
        # running under this process's lease, one statement instead of an insert and a claim.
        slot = self._slots.take()
        try:
            record = await self._insert(run, request, self._owner if slot else None)
        except BaseException:
            if slot:
                self._slots.give_back()
            raise
        started = record["status"] == "running"
        if slot and not started:
            self._slots.give_back()
        stream = RunStream(self._limits.max_events_per_run)
        active = ActiveRun(record=public_run(record), request=request, stream=stream)
        active.stream.publish("metadata", {"run_id": run_id, "attempt": 1})
        self._track(active)
        self._observer.run_created(run_id)
        if started:
            self._execute(active)
        else:
            await self._notifier.send({"kind": "queued"})
        return active

    async def _apply_multitask_strategy(self, thread_id: str, request: RunRequest) -> None:
        """Refuse a run on a busy thread (reject), or cancel the runs before it (interrupt, rollback)."""
        strategy = request.multitask_strategy
        if strategy == "reject" and await self._runs.thread_has_run(thread_id):
            raise ThreadBusy(thread_id)
        if strategy in ("interrupt", "rollback"):
            rollback = strategy == "rollback"
            if rollback:
                self._check_rollback()
            reason = f"replaced by a newer run (multitask_strategy={strategy!r})"
            for record in await self._runs.active_runs(thread_id):
                await self._cancel_run(record, reason, rollback)

    async def _insert(self, run: NewRun, request: RunRequest, owner: str | None) -> RunRecord:
        """Store the run; the insert itself tells whether the thread exists (no separate look-up)."""
        metadata = {"graph_id": request.graph_id, "assistant_id": request.assistant_id}
        lease = self._queue.lease_seconds
        record = await self._runs.create_run(run, owner, lease, metadata)
        if record is None:
            if request.if_not_exists == "reject":
                raise NotFound(f"Thread {run['thread_id']!r} not found; send if_not_exists='create' to create it")
            await self._threads.create_thread(run["thread_id"], dict(request.thread_metadata))
            record = await self._runs.create_run(run, owner, lease, metadata)
            assert record is not None  # the thread was just created
        return record

    def _track(self, active: ActiveRun) -> None:
        self._active[active.run_id] = active
        for follower in self._followers.get(active.thread_id, ()):
            follower.add(active)

    # Executing -------------------------------------------------------------------

    def _claimed(self, record: RunRecord) -> None:
        """The worker took a waiting run for this process (its slot is the run's now)."""
        active = self._active.get(record["run_id"])
        if active is not None and active.executing_here:
            # Its lease lapsed (this process was cut off from the database for longer than a
            # lease) and it was queued again, then taken here: it already executes here.
            logger.warning("run %s: taken again while it executes here; it goes on", record["run_id"])
            self._slots.give_back()
            return
        created_here = active is not None
        if active is None:  # created on another process, or cut short there: executed here
            try:
                request = RunRequest.from_json(record["request"])
            except (KeyError, TypeError, ValueError) as exc:  # written by another version, or damaged
                self._refuse_claimed(record, f"its stored request cannot be read ({type(exc).__name__}: {exc})")
                return
            stream = RunStream(self._limits.max_events_per_run)
            active = ActiveRun(record=public_run(record), request=request, stream=stream)
            self._track(active)
            # Its creator may have clients waiting for it: they follow it from here on.
            message = {"kind": "claimed", "run": active.run_id, "owner": self._owner}
            active.helpers.append(asyncio.create_task(self._notifier.send(message)))
        active.record["status"] = "running"
        active.attempt = record["attempt"]
        announce = not created_here or active.attempt > 1  # the creator announced the first attempt
        if active.attempt > 1 or record["watched"]:
            # Followed elsewhere, or taken over: its events continue the numbering of those stored.
            active.executing_here = True  # from now: no mirror starts for it
            task = asyncio.create_task(self._execute_after_offset(active, announce, record["watched"]))
            active.helpers.append(task)
            return
        if announce:
            active.stream.publish("metadata", {"run_id": active.run_id, "attempt": active.attempt})
        self._execute(active)

    def _refuse_claimed(self, record: RunRecord, error: str) -> None:
        """A claimed run this process cannot execute ends in error at once (it would otherwise
        come back after every lease, and hold a slot here for nothing)."""
        logger.error("run %s: %s; it ends in error", record["run_id"], error)
        self._slots.give_back()
        finish = self._runs.finish_run(record["run_id"], self._owner, "error", "error", error=error)
        self._in_background(finish, f"refuse run {record['run_id']}")

    async def _execute_after_offset(self, active: ActiveRun, announce: bool, watched: bool) -> None:
        try:
            active.stream.skip_to(await self._runs.next_event_seq(active.run_id))
        except Exception as exc:  # the events then start where this process's stream is
            logger.warning("run %s: stored events unknown (%s); numbering continues here", active.run_id, exc)
        if announce:
            active.stream.publish("metadata", {"run_id": active.run_id, "attempt": active.attempt})
        self._execute(active, watched)

    def _execute(self, active: ActiveRun, watched: bool = False) -> None:
        active.executing_here = True
        if watched:
            self._share(active)
        # The task's first step runs before any other request can cancel it, so the slot
        # taken for it is always given back by the task.
        with log_context(run_id=active.run_id, thread_id=active.thread_id):  # the task's log lines carry them
            active.task = asyncio.create_task(self._run(active), name=f"run {active.run_id}")

    def _executing(self) -> set[str]:
        return {run_id for run_id, active in self._active.items() if active.executing_here}

    def _lost(self, run_id: str) -> None:
        """Another process took this run over (this one's lease lapsed): stop, write nothing."""
        active = self._active.get(run_id)
        if active is not None and active.task is not None and not active.task.done():
            logger.warning("run %s was taken over elsewhere (its lease here lapsed); stopping it here", run_id)
            active.handed_back = True
            active.task.cancel()

    def _cancel_asked(self, run_id: str, action: str) -> None:
        """A cancel of a run executing here, asked from another process, read from its row."""
        active = self._active.get(run_id)
        if active is not None and active.executing_here:
            self._interrupt(active, "cancelled by request", action == "rollback")

    def _roll_back_swept(self, swept: Swept) -> None:
        """The sweep gave this process a run to roll back (its own process died after the rollback
        was asked). Should this fail, the run's lease lapses and a later sweep tries again."""
        self._in_background(self._executor.roll_back(swept.run_id, swept.thread_id), f"roll back run {swept.run_id}")

    async def _run(self, active: ActiveRun) -> None:
        run_id, thread_id = active.run_id, active.thread_id
        status, error = "success", None
        started_at = datetime.now(UTC)
        recorded = False  # its end written by finish_run
        try:
            status, error = await self._executor.execute(active)
            recorded = True
        except asyncio.CancelledError:
            if active.handed_back:  # the server is stopping, or lost the run: another process goes on
                status, error = "pending", None
                await asyncio.shield(self._executor.hand_back(active))
            else:
                status, error = "interrupted", active.cancel_reason or "the run was cancelled"
                active.conclude(status)
                await asyncio.shield(self._executor.settle_cancelled(active, error))
        except Exception as exc:  # a bug, or the database gone while stopping: never silent
            status, error = "error", f"{type(exc).__name__}: {exc}"
            logger.exception("run %s on thread %s could not be carried out", run_id, thread_id)
            active.failure = active.failure or exc
        finally:
            active.executing_here = False
            full = not self._slots.free
            self._slots.give_back()
            # The slot is free: a run that waited for one may start. A run of this thread that
            # waits is announced by the end's own notification where there is one (a look in
            # the queue after every run would cost a statement per run): a look is due when
            # runs waited for a slot here, or the run did not end by `finish_run`.
            if full or not recorded or not self._runs.finish_announces_waiting_runs:
                self._worker.wake()
            active.conclude(status)
            active.record["status"] = status
            self._forget(active)
            if status != "pending":
                self._observer.run_finished(run_id, status)
            if status == "pending":
                active.settle()
            else:
                # In a task of its own: a cancellation that reaches this one while it unwinds
                # (shutdown) must not leave the run's after-work retrying inside it.
                self._in_background(self._conclude(active, status, error, started_at), f"after run {run_id}")
        logger.debug("run %s on thread %s: %s%s", run_id, thread_id, status, f" ({error})" if error else "")

    async def _conclude(self, active: ActiveRun, status: str, error: str | None, started_at: datetime) -> None:
        try:
            await self._after(active, status, error, started_at)
        except Exception:
            logger.exception("run %s: what follows its end failed", active.run_id)
        finally:
            active.settle()

    def _in_background(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.warning("%s failed: %s", task.get_name(), one_line(exc))

    async def _after(self, active: ActiveRun, status: str, error: str | None, started_at: datetime) -> None:
        """What follows a run's end: its webhook, a stateless run's thread deleted."""
        if active.request.webhook:
            values = None if status == "error" else active.final
            self._webhooks.send(active.request.webhook, active.record, values, error, started_at)
        if active.request.stateless and active.request.on_completion == "delete":
            await self._executor.durably(active, lambda: self._delete_stateless_thread(active.thread_id))

    async def _delete_stateless_thread(self, thread_id: str) -> None:
        """A stateless run's thread goes, and with it every checkpoint the run wrote."""
        await self._checkpointer.adelete_thread(thread_id)
        await self._threads.delete_thread(thread_id)

    def _forget(self, active: ActiveRun) -> None:
        self._active.pop(active.run_id, None)
        self._wakeups.pop(active.run_id, None)
        self._finished[active.run_id] = (time.monotonic(), active)
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

    def _check_rollback(self) -> None:
        if not isinstance(self._checkpointer, ErasableCheckpointer):
            raise InvalidRequest(
                f"rollback is not supported with {type(self._checkpointer).__name__}: it cannot delete checkpoints"
            )

    # Between processes -------------------------------------------------------------

    def _on_message(self, message: dict[str, Any]) -> None:
        kind, run_id = message.get("kind"), str(message.get("run", ""))
        if kind in ("queued", "finished"):
            self._worker.wake()
        if kind in ("finished", "events") and run_id in self._wakeups:
            self._wakeups[run_id].set()
        elif kind == "cancel":
            active = self._active.get(run_id)
            if active is not None and active.executing_here:
                self._interrupt(
                    active, str(message.get("reason") or "cancelled by request"), bool(message.get("rollback"))
                )
        elif kind == "watch":
            # Any run executed here, also one whose end is being written (no longer executing,
            # not settled yet): its events are stored for the follower from the first one.
            active = self._active.get(run_id) or self._finished_run(run_id)
            if active is not None and active.task is not None:
                self._share(active)
        elif kind == "claimed" and message.get("owner") != self._owner:
            active = self._active.get(run_id)
            if active is not None and not active.executing_here and active.consumers:
                self._mirror(active)

    def _share(self, active: ActiveRun) -> None:
        start_sharing(active, self._runs, self._notifier)

    def _mirror(self, active: ActiveRun) -> None:
        """Follow a run another process executes (or may take): its events and outcome here."""
        if any(task.get_name() == "mirror" for task in active.helpers) or active.executing_here:
            return
        wakeup = self._wakeups.setdefault(active.run_id, asyncio.Event())

        async def follow() -> None:
            try:
                record = await self._runs.watch(active.run_id)
                if record is not None and record["status"] in ACTIVE:
                    await self._notifier.send({"kind": "watch", "run": active.run_id})
                await mirror(active, self._runs, self._threads, wakeup, lambda: active.executing_here)
            except Exception as exc:
                if unavailable_cause(exc) is None:
                    logger.exception("following run %s failed", active.run_id)
                active.failure = active.failure or exc
                active.conclude("error")
                active.settle()
            finally:
                if not active.executing_here:
                    self._forget(active)

        active.helpers.append(asyncio.create_task(follow(), name="mirror"))

    async def _remote(self, record: RunRecord) -> ActiveRun:
        """A run this process knows nothing of, followed from here."""
        active = ActiveRun(
            record=public_run(record),
            request=RunRequest.from_json(record["request"]),
            stream=RunStream(self._limits.max_events_per_run),
        )
        self._track(active)
        self._mirror(active)
        return active

    async def _forget_old_events(self) -> None:
        while True:
            await asyncio.sleep(EVENTS_KEPT_SECONDS / 10)
            with contextlib.suppress(Exception):  # the next round tries again
                await self._runs.forget_events(EVENTS_KEPT_SECONDS)

    # Consuming -------------------------------------------------------------------

    async def wait(self, thread_id: str | None, request: RunRequest) -> Any:
        """Run to the end and return the final values (LangGraph's /runs/wait)."""
        active = await self.create(thread_id, request)
        return await self._outcome(active)

    async def _outcome(self, active: ActiveRun) -> Any:
        active.consumers += 1
        try:
            if not active.executing_here and not active.settled.is_set():
                self._mirror_unless_mine(active)
            await active.settled.wait()
        finally:
            active.consumers -= 1
        for cause in (active.failure, active.stalled):
            if cause is not None and unavailable_cause(cause) is not None:
                raise cause  # the database failed the run, or holds up its end: the client hears 503
        if active.final is None and active.record["status"] == "interrupted":
            return {"__error__": {"error": "CancelledError", "message": active.cancel_reason or "cancelled"}}
        return active.final

    def _mirror_unless_mine(self, active: ActiveRun) -> None:
        """A run created here that still waits may be taken here or elsewhere. Whoever takes it
        elsewhere says so (`claimed`); should that message be lost, a look at its row every
        poll interval finds out. Runs created elsewhere are mirrored from the start."""
        if any(task.get_name() in ("mirror", "look") for task in active.helpers):
            return

        async def look() -> None:
            # At once first: taken elsewhere before this client came, the run may end before
            # a poll interval is over, and unfollowed its events would never be stored.
            while not active.executing_here and not active.settled.is_set():
                with contextlib.suppress(Exception):  # an outage: look again later
                    record = await self._runs.get_run(active.run_id)
                    if record is not None and not active.executing_here and record["owner"] != self._owner:
                        if record["status"] != "pending":
                            self._mirror(active)
                            return
                await wait_event(active.settled, self._queue.poll_seconds)

        active.helpers.append(asyncio.create_task(look(), name="look"))

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
        if not active.executing_here and not active.settled.is_set():
            self._mirror_unless_mine(active)
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
            record = {"run_id": active.run_id, "status": active.record["status"], "owner": None}
            task = asyncio.ensure_future(self._cancel_run(record, "the client disconnected (on_disconnect='cancel')"))
            active.helpers.append(task)

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
        seen: set[str] = set()
        if last_event_id is not None:
            run_id, position = thread_event_id(last_event_id)
            kept = [
                run
                for run in (*(kept for _, kept in self._finished.values()), *self._active.values())
                if run.thread_id == thread_id
            ]
            kept.sort(key=lambda run: run.record["created_at"])
            names = [run.run_id for run in kept]
            if run_id not in names:
                raise NotFound(f"Event {last_event_id!r} of thread {thread_id!r} is no longer kept")
            for run in kept[names.index(run_id) :]:
                follower.add(run, position + 1 if run.run_id == run_id else 0)
                seen.add(run.run_id)
        for record in await self._runs.active_runs(thread_id):
            if record["run_id"] not in seen:
                active = self._active.get(record["run_id"]) or await self._remote(record)
                follower.add(active)
                seen.add(record["run_id"])
        self._followers.setdefault(thread_id, set()).add(follower)
        follower.discovery = asyncio.create_task(self._discover(follower, seen, datetime.now(UTC)))
        return follower

    async def _discover(self, follower: ThreadFollower, seen: set[str], since: datetime) -> None:
        """Runs of the followed thread created on other processes (this one's are added at once)."""
        while True:
            await asyncio.sleep(DISCOVERY_SECONDS)
            with contextlib.suppress(Exception):  # an outage: look again later
                for record in await self._runs.runs_since(follower.thread_id, since):
                    since = max(since, record["created_at"])
                    if record["run_id"] in seen:
                        continue
                    seen.add(record["run_id"])
                    local = self._active.get(record["run_id"])
                    if local is not None:
                        continue  # added when it was created here
                    if record["status"] in ACTIVE:
                        follower.add(await self._remote(record))

    def _unfollow(self, follower: ThreadFollower) -> None:
        if follower.discovery is not None:
            follower.discovery.cancel()
        followers = self._followers.get(follower.thread_id)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self._followers[follower.thread_id]

    async def _find(self, thread_id: str, run_id: str) -> ActiveRun | None:
        thread_id, run_id = parse_thread_id(thread_id), parse_thread_id(run_id, "run_id")
        local = self._active.get(run_id) or self._finished_run(run_id)
        if local is not None:
            if local.thread_id != thread_id:
                raise NotFound(f"Run {run_id!r} not found on thread {thread_id!r}")
            return local
        record = await self._runs.get_run(run_id)
        if record is None or record["thread_id"] != thread_id:
            raise NotFound(f"Run {run_id!r} not found on thread {thread_id!r}")
        if record["status"] in ACTIVE and not record["watched"]:
            # Followed from now on: its owner stores its events before its end (FINISH_RUN). One
            # that ended in the meantime, unfollowed, is as one that had ended before (None).
            record = await self._runs.watch(run_id)
            if record is None:
                return None
        if record["status"] in ACTIVE or record["watched"]:
            return await self._remote(record)
        return None

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
        record = await self._runs.get_run(parse_thread_id(run_id, "run_id"))
        if record is None or record["status"] not in ACTIVE:
            raise Conflict(f"Run {run_id!r} is not pending or running; nothing to cancel")
        await self._cancel_run(record, "cancelled by request", rollback)
        if wait:
            active = self._active.get(record["run_id"]) or self._finished_run(record["run_id"])
            if active is None:
                now = await self._runs.get_run(record["run_id"])
                if now is not None and now["status"] in ACTIVE:
                    active = await self._remote(now)
            if active is not None:
                with contextlib.suppress(Exception):
                    await self._outcome(active)

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
        status = None if selection.status in (None, "all") else selection.status
        run_ids = sorted(selection.run_ids) if selection.run_ids is not None else None
        records = await self._runs.find_active(selection.thread_id, run_ids, status)
        if visible_threads is not None:
            allowed = await visible_threads({record["thread_id"] for record in records})
            records = [record for record in records if record["thread_id"] in allowed]
        for record in records:
            await self._cancel_run(record, "cancelled by request", rollback)

    async def _cancel_run(self, record: Any, reason: str, rollback: bool = False) -> None:
        """Cancel a run wherever it is: its task here, its row if nobody took it, its owner elsewhere."""
        run_id = record["run_id"]
        active = self._active.get(run_id)
        if active is not None and active.executing_here:
            self._interrupt(active, reason, rollback)
            return
        if rollback and record["status"] == "pending":
            # A run waiting again after its process died holds the checkpoints it wrote. They go
            # before it stops waiting: the next run of its thread may start at once, from them.
            # Taken meanwhile, it is no longer pending: its owner then rolls it back (below).
            await delete_run_checkpoints(self._checkpointer, record["thread_id"], run_id)
        if await self._runs.cancel_pending(run_id, reason):
            if rollback:
                await self._runs.delete_run(run_id)
            if active is not None:  # created here, still waiting: its waiters hear now
                active.cancel_reason = reason
                active.conclude("interrupted")
                self._forget(active)
                active.settle()
            return
        if await self._runs.ask_cancel(run_id, "rollback" if rollback else "interrupt") is not None:
            await self._notifier.send({"kind": "cancel", "run": run_id, "reason": reason, "rollback": rollback})

    def _interrupt(self, active: ActiveRun, reason: str, rollback: bool) -> None:
        # A run whose outcome is known is only writing its record: nothing left to cancel.
        if active.task is not None and not active.task.done() and not active.concluded.is_set():
            active.cancel_reason = reason
            active.rollback = active.rollback or rollback
            active.task.cancel()

    async def delete(self, thread_id: str, run_id: str) -> None:
        run = await self.get(thread_id, run_id)
        if run["status"] in ACTIVE:
            raise Conflict(f"Run {run_id!r} is still pending or running; cancel it first")
        await self._runs.delete_run(run["run_id"])

    async def shutdown(self) -> None:
        """The server is stopping: no more runs are taken; running ones go back to the queue
        (or, on memory, end interrupted), and their records settle before the pool closes."""
        await self._worker.stop()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        self._executor.stop()
        running = [active for active in self._active.values() if active.task is not None and not active.task.done()]
        for active in running:
            if self._limits.hand_back_on_stop:
                active.handed_back = True
                assert active.task is not None
                active.task.cancel()
            else:
                self._interrupt(active, "the server stopped", False)
        await asyncio.gather(*(active.task for active in running if active.task is not None), return_exceptions=True)
        helpers = [task for active in self._active.values() for task in active.helpers]
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, *self._background, return_exceptions=True)
        if running and self._limits.hand_back_on_stop:
            with contextlib.suppress(Exception):
                await self._notifier.send({"kind": "queued"})


async def init_run_service(
    threads: ThreadRepository,
    runs: RunRepository,
    executor: RunExecutor,
    assistants: AssistantService,
    webhooks: WebhookSender,
    checkpointer: Checkpointer,
    notifier: Notifier,
    limits: RunLimits,
    queue: QueueSettings,
    owner: str,
    observer: RunObserver | None = None,
) -> AsyncIterator[RunService]:
    """Resource: the run service, taking runs from the queue; on shutdown its runs go back to the
    queue (or end) before the pool closes."""
    service = RunService(
        threads, runs, executor, assistants, webhooks, checkpointer, notifier, limits, queue, owner, observer
    )
    service.start()
    try:
        yield service
    finally:
        started = time.monotonic()
        await service.shutdown()
        logger.info("runs stopped (%.0f ms)", (time.monotonic() - started) * 1000)
