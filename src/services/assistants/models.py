"""What the assistants service takes and keeps: typed records and requests, no HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from src.services.auth.filters import Visibility

# The namespace the LangGraph API derives default assistant ids from: uuid5(NAMESPACE_GRAPH, graph_id).
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
ASSISTANT_FIELDS = (
    "assistant_id",
    "graph_id",
    "name",
    "description",
    "config",
    "context",
    "created_at",
    "updated_at",
    "metadata",
    "version",
)
VERSIONED_FIELDS = ("graph_id", "name", "description", "config", "context", "metadata")
SORT_FIELDS = ("assistant_id", "created_at", "updated_at", "name", "graph_id")
SORT_ORDERS = ("asc", "desc")
IF_EXISTS = ("raise", "do_nothing")
DEFAULT_NAME = "Untitled"


class AssistantRecord(TypedDict):
    """An assistant, or (without updated_at) one of its versions."""

    assistant_id: str
    graph_id: str
    name: str
    description: str | None
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: NotRequired[datetime]


def default_assistant_id(graph_id: str) -> str:
    """The id of a graph's default assistant, the same as the LangGraph API's."""
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


@dataclass(frozen=True)
class AssistantFilter:
    """Which assistants a search or count sees: only those of `graph_ids` (the served graphs), and
    only those the caller's auth filter lets them see (`visible`)."""

    graph_ids: list[str]
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    visible: Visibility | None = None


@dataclass(frozen=True)
class AssistantCreate:
    graph_id: str
    assistant_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    if_exists: str = "raise"
    name: str = DEFAULT_NAME
    description: str | None = None


@dataclass(frozen=True)
class AssistantPatch:
    """Only the fields given (not None) change."""

    graph_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class AssistantQuery:
    """A search's or count's filters, before the service limits them to the served graphs."""

    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    visible: Visibility | None = None  # the caller's auth filter


@dataclass(frozen=True)
class AssistantSearch:
    query: AssistantQuery = field(default_factory=AssistantQuery)
    limit: int = 10
    offset: int = 0
    sort_by: str = "created_at"
    sort_order: str = "desc"
    select: list[str] | None = None


@dataclass(frozen=True)
class AssistantPage:
    """One page of a search, and whether more follow (the web layer's X-Pagination-* headers)."""

    assistants: list[dict[str, Any]]
    offset: int
    limit: int
    more: bool


@dataclass(frozen=True)
class VersionsQuery:
    metadata: dict[str, Any] = field(default_factory=dict)
    limit: int = 10
    offset: int = 0
