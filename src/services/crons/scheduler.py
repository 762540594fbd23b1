"""The cron scheduler: one asyncio task per server process that fires due crons.

Each step claims the due crons and advances their `next_run_date` to the first time after
now, in one transaction (see CronRepository.claim_due), then creates one run per claimed
cron through the run service. So a firing is claimed by exactly one of several servers; a
server that was down fires each overdue cron once and then follows its schedule again
(no burst of missed runs); and a server that stops between the claim and the run loses that
one firing rather than ever creating two runs for it. Between steps the task sleeps until
the next due cron, at most `poll_seconds` (for crons other servers created or changed), and
is woken at once when this server creates or changes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Protocol

from src.services.auth.user import RESERVED_CONFIGURABLE_KEYS, restore_caller
from src.services.crons.models import CRON_ONLY_FIELDS, CronRecord
from src.services.crons.repository import CronRepository
from src.services.crons.schedule import Clock, next_run
from src.services.crons.wakeup import CronWakeup
from src.services.database import one_line, unavailable_cause
from src.services.errors import ServiceError
from src.services.logcontext import log_context
from src.services.runs.request import RunRequest
from src.services.runs.service import RunService

logger = logging.getLogger(__name__)

# Crons claimed in one step; more due at once are claimed by the next step, at once.
CLAIM_BATCH = 100
# The shortest sleep: a due cron another server holds (claiming it, or a PATCH) is not spun on.
MIN_SLEEP_SECONDS = 0.05
# A run body (the cron's payload) as a validated run request; `stateless` for crons without a thread.
RunRequestParser = Callable[..., RunRequest]


class CronMetrics(Protocol):
    def cron_fired(self, result: str) -> None:
        """A cron fired: `result` is 'created', 'refused' (the run service said no) or 'failed'."""


def _as_caller(request: RunRequest, cron: CronRecord) -> None:
    """Auth: the run executes as the cron's creator (stored with the cron, so on whichever process
    fires it), as a run created by them through POST /runs does (src/web/auth.py, RunGuard), and a
    thread it creates (stateless) carries its metadata, so they can see it."""
    caller = cron.get("caller")
    if not caller:
        return
    configurable = request.config["configurable"]
    configurable.update(caller)
    restore_caller(configurable)
    request.thread_metadata = dict(request.metadata)


def _advance(cron: CronRecord, at: datetime) -> datetime:
    return next_run(cron["schedule"], at, cron["timezone"])


class CronScheduler:
    def __init__(
        self,
        crons: CronRepository,
        runs: RunService,
        parse_run: RunRequestParser,
        clock: Clock,
        wakeup: CronWakeup,
        poll_seconds: float,
        metrics: CronMetrics,
    ) -> None:
        self._crons = crons
        self._runs = runs
        self._parse_run = parse_run
        self._clock = clock
        self._wakeup = wakeup
        self._poll_seconds = poll_seconds
        self._metrics = metrics

    def run_body(self, cron: CronRecord) -> dict[str, Any]:
        """The body of the run a firing creates, from the cron's payload. The cron's metadata wins
        over the payload's (the auth handler stamped it; without auth they agree); the caller keys
        of config.configurable are the server's (see `_as_caller`), never the payload's."""
        body = {key: value for key, value in cron["payload"].items() if key not in CRON_ONLY_FIELDS}
        body["metadata"] = {**(body.get("metadata") or {}), **cron["metadata"]}
        configurable = (body.get("config") or {}).get("configurable")
        if isinstance(configurable, dict) and any(key in configurable for key in RESERVED_CONFIGURABLE_KEYS):
            kept = {key: value for key, value in configurable.items() if key not in RESERVED_CONFIGURABLE_KEYS}
            body["config"] = {**body["config"], "configurable": kept}
        if cron["thread_id"] is None:
            body["on_completion"] = cron["on_run_completed"] or "delete"
        return body

    async def fire(self, cron: CronRecord) -> str | None:
        """Create the cron's run; return its id, or None when no run was created (logged)."""
        with log_context(cron_id=cron["cron_id"], thread_id=cron["thread_id"]):
            return await self._fire(cron)

    async def _fire(self, cron: CronRecord) -> str | None:
        thread_id = cron["thread_id"]
        try:
            request = self._parse_run(self.run_body(cron), stateless=thread_id is None)
            _as_caller(request, cron)
            active = await self._runs.create(thread_id, request)
        except ServiceError as exc:  # e.g. its thread is busy and multitask_strategy is 'reject'
            self._metrics.cron_fired("refused")
            logger.warning("cron %s: no run created: %s", cron["cron_id"], exc)
            return None
        except Exception as exc:
            self._metrics.cron_fired("failed")
            if unavailable_cause(exc) is None:
                logger.exception("cron %s: creating its run failed", cron["cron_id"])
            else:
                logger.warning("cron %s: no run created: %s", cron["cron_id"], one_line(exc))
            return None
        self._metrics.cron_fired("created")
        run_id = str(active.record["run_id"])
        logger.info("cron %s fired: run %s", cron["cron_id"], run_id)
        return run_id

    async def step(self) -> list[str | None]:
        """Fire every cron due now; return what each firing created (run ids, None for none)."""
        fired: list[str | None] = []
        while True:
            claimed = await self._crons.claim_due(self._clock.now(), CLAIM_BATCH, _advance)
            for cron in claimed:
                fired.append(await self.fire(cron))
            if len(claimed) < CLAIM_BATCH:
                return fired

    async def _sleep_seconds(self) -> float:
        at = self._clock.now()
        due = await self._crons.next_due(at)
        if due is None:
            return self._poll_seconds
        return min(self._poll_seconds, max(MIN_SLEEP_SECONDS, (due - at).total_seconds()))

    async def run_forever(self) -> None:
        while True:
            try:
                await self.step()
                sleep = await self._sleep_seconds()
            except Exception as exc:
                if unavailable_cause(exc) is None:
                    logger.exception("cron scheduler step failed")
                else:
                    logger.warning("cron scheduler: %s", one_line(exc))
                sleep = self._poll_seconds
            await self._wakeup.wait(sleep)


async def init_cron_scheduler(
    crons: CronRepository,
    runs: RunService,
    parse_run: RunRequestParser,
    clock: Clock,
    wakeup: CronWakeup,
    poll_seconds: float,
    metrics: CronMetrics,
) -> AsyncIterator[CronScheduler]:
    """Resource: the scheduler task, stopped (before the run service) at shutdown."""
    scheduler = CronScheduler(crons, runs, parse_run, clock, wakeup, poll_seconds, metrics)
    task = asyncio.create_task(scheduler.run_forever(), name="cron scheduler")
    try:
        yield scheduler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
