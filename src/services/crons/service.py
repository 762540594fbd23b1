"""Crons: runs created on a schedule, as the LangGraph API's /runs/crons endpoints make them.

A cron keeps the run body it was created with (`payload`) and a schedule; at each due time
the scheduler (scheduler.py) creates one run from it through the run service: on the cron's
thread (its `multitask_strategy` decides what happens when the thread is busy), or, for a
stateless cron, on a new thread deleted after the run unless `on_run_completed` is 'keep'.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import replace
from typing import Any

from src.services.assistants.service import AssistantService
from src.services.auth.filters import Visibility
from src.services.crons.models import CronCreate, CronFilter, CronPage, CronPatch, CronRecord, CronSearch, NewCron
from src.services.crons.repository import CronRepository
from src.services.crons.schedule import Clock, next_run, zone
from src.services.crons.wakeup import CronWakeup
from src.services.errors import InvalidRequest, NotFound
from src.services.serialization import to_jsonable
from src.services.threads.repository import ThreadRepository
from src.services.threads.service import parse_thread_id
from src.services.validation import parse_uuid
from src.services.webhooks import WebhookSender


def public_cron(record: CronRecord) -> dict[str, Any]:
    """A cron as the LangGraph API returns it."""
    return {
        "cron_id": record["cron_id"],
        "assistant_id": record["assistant_id"],
        "thread_id": record["thread_id"],
        "on_run_completed": record["on_run_completed"],
        "end_time": to_jsonable(record["end_time"]),
        "schedule": record["schedule"],
        "timezone": record["timezone"],
        "created_at": to_jsonable(record["created_at"]),
        "updated_at": to_jsonable(record["updated_at"]),
        "user_id": record["user_id"],
        "payload": record["payload"],
        "next_run_date": to_jsonable(record["next_run_date"]),
        "metadata": record["metadata"],
        "enabled": record["enabled"],
    }


def not_found(cron_id: str) -> NotFound:
    return NotFound(f"Cron {cron_id!r} not found")


class CronService:
    """The /runs/crons API. `visible` (get, update, delete; `CronFilter.visible` for search and
    count) is the caller's auth filter on a cron's metadata, applied in the repository's query: a
    cron it hides is not found (404). Whether the caller may see a cron's thread is the web
    layer's question (src/web/auth.py), asked before `create`."""

    def __init__(
        self,
        crons: CronRepository,
        assistants: AssistantService,
        threads: ThreadRepository,
        webhooks: WebhookSender,
        clock: Clock,
        wakeup: CronWakeup,
    ) -> None:
        self._crons = crons
        self._assistants = assistants
        self._threads = threads
        self._webhooks = webhooks
        self._clock = clock
        self._wakeup = wakeup

    async def create(self, thread_id: str | None, request: CronCreate) -> dict[str, Any]:
        """A cron on `thread_id`, or (None) a stateless one."""
        if thread_id is not None:
            thread_id = parse_thread_id(thread_id)
            if not await self._threads.thread_exists(thread_id):
                raise NotFound(f"Thread {thread_id!r} not found")
        payload = copy.deepcopy(request.payload)
        assistant = await self._assistants.resolve(payload["assistant_id"])
        payload["assistant_id"] = assistant["assistant_id"]
        if payload.get("webhook") is not None:
            self._webhooks.validate(payload["webhook"])
        zone(request.timezone)
        cron_id = request.cron_id or str(uuid.uuid4())
        # As in the LangGraph API: a cron's runs carry its id in config.configurable.cron_id.
        config = payload.setdefault("config", {})
        config.setdefault("configurable", {})["cron_id"] = cron_id
        cron: NewCron = {
            "cron_id": cron_id,
            "assistant_id": assistant["assistant_id"],
            "thread_id": thread_id,
            "user_id": request.user_id,
            "caller": request.caller,
            "schedule": request.schedule,
            "timezone": request.timezone,
            "payload": payload,
            "metadata": request.metadata,
            "on_run_completed": None if thread_id is not None else (request.on_run_completed or "delete"),
            "enabled": request.enabled,
            "end_time": request.end_time,
            "next_run_date": next_run(request.schedule, self._clock.now(), request.timezone),
        }
        record = await self._crons.create_cron(cron)
        if record is None:
            raise NotFound(f"Thread {thread_id!r} not found")
        self._wakeup.notify()
        return public_cron(record)

    async def get(self, cron_id: str, visible: Visibility | None = None) -> dict[str, Any]:
        record = await self._crons.get_cron(parse_uuid(cron_id, "cron_id"), visible)
        if record is None:
            raise not_found(cron_id)
        return public_cron(record)

    async def update(self, cron_id: str, patch: CronPatch, visible: Visibility | None = None) -> dict[str, Any]:
        if patch.payload.get("webhook") is not None:
            self._webhooks.validate(patch.payload["webhook"])
        if patch.timezone is not None:
            zone(patch.timezone)
        at = self._clock.now()

        def change(cron: CronRecord) -> CronRecord:
            if patch.schedule is not None:
                cron["schedule"] = patch.schedule
            if patch.timezone is not None:
                cron["timezone"] = patch.timezone
            if patch.schedule is not None or patch.timezone is not None:
                cron["next_run_date"] = next_run(cron["schedule"], at, cron["timezone"])
            if patch.clear_end_time:
                cron["end_time"] = None
            elif patch.end_time is not None:
                cron["end_time"] = patch.end_time
            if patch.enabled is not None:
                cron["enabled"] = patch.enabled
            if patch.on_run_completed is not None:
                if cron["thread_id"] is not None:
                    raise InvalidRequest("on_run_completed applies to stateless crons only; this cron runs on a thread")
                cron["on_run_completed"] = patch.on_run_completed
            if patch.metadata is not None:
                cron["metadata"] = {**cron["metadata"], **patch.metadata}
            # The run fields replace the payload's, as in the LangGraph API; its assistant and
            # its config.configurable.cron_id stay.
            payload = {**cron["payload"], **copy.deepcopy(patch.payload)}
            payload["assistant_id"] = cron["payload"]["assistant_id"]
            config = payload.get("config") or {}
            config["configurable"] = {**(config.get("configurable") or {}), "cron_id": cron["cron_id"]}
            payload["config"] = config
            cron["payload"] = payload
            return cron

        record = await self._crons.update_cron(parse_uuid(cron_id, "cron_id"), change, visible)
        if record is None:
            raise not_found(cron_id)
        self._wakeup.notify()
        return public_cron(record)

    async def delete(self, cron_id: str, visible: Visibility | None = None) -> None:
        if not await self._crons.delete_cron(parse_uuid(cron_id, "cron_id"), visible):
            raise not_found(cron_id)

    async def _assistant_filter(self, where: CronFilter) -> CronFilter | None:
        """The filter with a graph id turned into its default assistant's id; None when it names
        no assistant there can be crons of."""
        if where.assistant_id is None:
            return where
        try:
            assistant_id = str(uuid.UUID(where.assistant_id))
        except ValueError:
            try:
                assistant_id = (await self._assistants.resolve(where.assistant_id))["assistant_id"]
            except NotFound:
                return None
        return replace(where, assistant_id=assistant_id)

    async def search(self, search: CronSearch) -> CronPage:
        where = await self._assistant_filter(search.where)
        if where is None:
            return CronPage([], search.offset, more=False)
        # One more than asked for tells whether there is a next page.
        found = await self._crons.search_crons(
            where, search.limit + 1, search.offset, search.sort_by, search.sort_order
        )
        crons = [public_cron(record) for record in found[: search.limit]]
        if search.select:
            crons = [{field: cron[field] for field in search.select} for cron in crons]
        return CronPage(crons, search.offset, more=len(found) > search.limit)

    async def count(self, where: CronFilter) -> int:
        resolved = await self._assistant_filter(where)
        return 0 if resolved is None else await self._crons.count_crons(resolved)
