"""What the crons service takes and keeps: typed records and requests, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from src.services.auth.filters import Visibility

CRON_FIELDS = (
    "cron_id",
    "assistant_id",
    "thread_id",
    "on_run_completed",
    "end_time",
    "schedule",
    "timezone",
    "created_at",
    "updated_at",
    "user_id",
    "payload",
    "next_run_date",
    "metadata",
    "enabled",
)
SORT_FIELDS = ("cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at")
SORT_ORDERS = ("asc", "desc")
ON_RUN_COMPLETED = ("delete", "keep")
# Fields of a cron's payload (the body it was created with) that describe the cron, not its runs.
CRON_ONLY_FIELDS = frozenset({"schedule", "timezone", "end_time", "enabled", "on_run_completed"})


class NewCron(TypedDict):
    cron_id: str
    assistant_id: str
    thread_id: str | None
    user_id: str | None
    # Auth: the caller who created the cron, as a run carries it in config.configurable
    # (langgraph_auth_user, langgraph_auth_user_id, langgraph_auth_permissions); its runs execute
    # as them. None without auth. Never returned by the API.
    caller: dict[str, Any] | None
    schedule: str
    timezone: str | None
    payload: dict[str, Any]
    metadata: dict[str, Any]
    on_run_completed: str | None
    enabled: bool
    end_time: datetime | None
    next_run_date: datetime


class CronRecord(NewCron):
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CronCreate:
    """A validated cron creation body. `payload` is the body itself: the run every firing creates
    (assistant_id, input, config, context, metadata, ...), as the LangGraph API keeps it."""

    schedule: str
    payload: dict[str, Any]
    timezone: str | None = None
    end_time: datetime | None = None
    enabled: bool = True
    on_run_completed: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Auth (set by the web layer's guard): its id (the handler sees it), who created it, and as
    # whom its runs execute.
    cron_id: str | None = None
    user_id: str | None = None
    caller: dict[str, Any] | None = None


@dataclass(frozen=True)
class CronPatch:
    """A validated cron update: None leaves a field as it is, except `end_time` when
    `clear_end_time` is set; `payload` holds the run fields to replace."""

    schedule: str | None = None
    timezone: str | None = None
    end_time: datetime | None = None
    clear_end_time: bool = False
    enabled: bool | None = None
    on_run_completed: str | None = None
    metadata: dict[str, Any] | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CronFilter:
    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: dict[str, Any] | None = None
    visible: Visibility | None = None  # the caller's auth filter on the cron's metadata


@dataclass(frozen=True)
class CronSearch:
    where: CronFilter = field(default_factory=CronFilter)
    limit: int = 10
    offset: int = 0
    sort_by: str = "created_at"
    sort_order: str = "desc"
    select: list[str] | None = None


@dataclass(frozen=True)
class CronPage:
    crons: list[dict[str, Any]]
    offset: int
    more: bool
