"""What the threads service takes and keeps: typed records and requests, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

from src.services.auth.filters import Visibility

THREAD_FIELDS = ("thread_id", "created_at", "updated_at", "metadata", "status", "values", "interrupts", "error")
THREAD_SORTS = ("thread_id", "status", "created_at", "updated_at")
THREAD_STATUSES = ("idle", "busy", "interrupted", "error")
SORT_ORDERS = ("asc", "desc")
IF_EXISTS = ("raise", "do_nothing")

SortOrder = Literal["asc", "desc"]


class ThreadRecord(TypedDict):
    thread_id: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    status: str
    values: Any
    interrupts: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class ThreadFilter:
    """What a thread search or count matches: metadata and values by containment, status, ids, and
    only the threads the caller's auth filter lets them see (`visible`)."""

    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: str | None = None
    ids: list[str] | None = None
    visible: Visibility | None = None


@dataclass(frozen=True)
class ThreadCreate:
    thread_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    if_exists: str = "raise"


@dataclass(frozen=True)
class ThreadSearch:
    where: ThreadFilter = field(default_factory=ThreadFilter)
    limit: int = 10
    offset: int = 0
    sort_by: str = "created_at"
    sort_order: str = "desc"
    select: list[str] | None = None


@dataclass(frozen=True)
class HistoryQuery:
    limit: int = 10
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: str | dict[str, Any] | None = None


@dataclass(frozen=True)
class StateUpdate:
    values: Any = None
    as_node: str | None = None
    checkpoint: str | dict[str, Any] | None = None
