"""What the /runs/crons routes accept: the LangGraph API's cron bodies.

A cron's run fields (input, config, context, metadata, stream_mode, ...) are checked as a
run's are (parse_run_request), so a cron whose runs could not be created is refused when it
is made, not when it fires.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from src.services.crons.models import (
    CRON_FIELDS,
    CRON_ONLY_FIELDS,
    ON_RUN_COMPLETED,
    SORT_FIELDS,
    SORT_ORDERS,
    CronCreate,
    CronFilter,
    CronPatch,
    CronSearch,
)
from src.services.crons.schedule import check_schedule, zone
from src.services.errors import InvalidRequest
from src.services.threads.service import parse_thread_id
from src.services.validation import (
    MAX_LIMIT,
    choice,
    integer,
    json_type,
    optional_object,
    optional_string,
    reject_unknown,
    require_object,
)
from src.web.requests.runs import parse_run_request

# The run fields a cron keeps for its runs (the LangGraph API's CronCreate/ThreadCronCreate),
# in the order the OpenAPI document lists them (src/web/schemas.py).
RUN_FIELDS = (
    "assistant_id",
    "input",
    "metadata",
    "config",
    "context",
    "webhook",
    "interrupt_before",
    "interrupt_after",
    "multitask_strategy",
    "stream_mode",
    "stream_subgraphs",
    "stream_resumable",
    "durability",
    "checkpoint_during",
)
CREATE_FIELDS = frozenset(RUN_FIELDS) | CRON_ONLY_FIELDS
# What a PATCH may change: not the assistant, nor how runs meet a busy thread.
PATCH_FIELDS = CREATE_FIELDS - {"assistant_id", "multitask_strategy", "checkpoint_during"}
SEARCH_FIELDS = frozenset(
    {"assistant_id", "thread_id", "enabled", "metadata", "limit", "offset", "sort_by", "sort_order", "select"}
)
COUNT_FIELDS = frozenset({"assistant_id", "thread_id", "metadata"})


def _schedule(body: dict[str, Any], required: bool) -> str | None:
    schedule = optional_string(body, "schedule", required=required)
    return None if schedule is None else check_schedule(schedule)


def _timezone(body: dict[str, Any]) -> str | None:
    timezone = optional_string(body, "timezone")
    if timezone is not None:
        zone(timezone)
    return timezone


def _end_time(body: dict[str, Any]) -> datetime | None:
    value = body.get("end_time")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"end_time must be an ISO 8601 date-time string, got {json_type(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"end_time must be an ISO 8601 date-time, got {value!r}") from None
    # A time without a zone is read as UTC, as schedules are.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _enabled(body: dict[str, Any]) -> bool | None:
    value = body.get("enabled")
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"enabled must be a boolean, got {json_type(value)}")
    return value


def _run_fields(body: dict[str, Any], stateless: bool, assistant_id: Any = None) -> dict[str, Any]:
    """The body's run fields, checked as a run's; null fields left out."""
    fields = {key: value for key, value in body.items() if key in RUN_FIELDS and value is not None}
    parse_run_request({**fields, **({"assistant_id": assistant_id} if assistant_id else {})}, stateless=stateless)
    return fields


def parse_create(payload: Any, *, stateless: bool) -> CronCreate:
    """POST /runs/crons (stateless) and POST /threads/{thread_id}/runs/crons."""
    body = require_object(payload)
    reject_unknown(body, CREATE_FIELDS)
    schedule = _schedule(body, required=True)
    assert schedule is not None
    on_run_completed = body.get("on_run_completed")
    if on_run_completed is not None and not stateless:
        raise InvalidRequest("on_run_completed applies to stateless crons (POST /runs/crons) only")
    _run_fields(body, stateless)
    enabled = _enabled(body)
    return CronCreate(
        schedule=schedule,
        payload={key: value for key, value in body.items() if value is not None} | {"schedule": schedule},
        timezone=_timezone(body),
        end_time=_end_time(body),
        enabled=True if enabled is None else enabled,
        on_run_completed=choice(body, "on_run_completed", ON_RUN_COMPLETED, "delete") if stateless else None,
        metadata=optional_object(body, "metadata") or {},
    )


def parse_patch(payload: Any) -> CronPatch:
    """PATCH /runs/crons/{cron_id}: `end_time: null` clears the end time; an absent field stays."""
    body = require_object(payload)
    reject_unknown(body, PATCH_FIELDS)
    if not any(value is not None for value in body.values()) and "end_time" not in body:
        raise InvalidRequest(f"nothing to update; send one of {', '.join(sorted(PATCH_FIELDS))}")
    # Any assistant will do for checking the run fields: the cron's own stays.
    _run_fields(body, stateless=True, assistant_id="cron")
    on_run_completed = body.get("on_run_completed")
    return CronPatch(
        schedule=_schedule(body, required=False),
        timezone=_timezone(body),
        end_time=_end_time(body),
        clear_end_time="end_time" in body and body["end_time"] is None,
        enabled=_enabled(body),
        on_run_completed=None if on_run_completed is None else choice(body, "on_run_completed", ON_RUN_COMPLETED, ""),
        metadata=optional_object(body, "metadata"),
        payload={key: value for key, value in body.items() if value is not None and key != "end_time"},
    )


def _filter(body: dict[str, Any]) -> CronFilter:
    assistant_id = optional_string(body, "assistant_id")
    thread_id = body.get("thread_id")
    return CronFilter(
        assistant_id=assistant_id or None,
        thread_id=parse_thread_id(thread_id) if thread_id else None,
        enabled=_enabled(body),
        metadata=optional_object(body, "metadata") or None,
    )


def parse_search(payload: Any) -> CronSearch:
    """POST /runs/crons/search."""
    body = require_object(payload)
    reject_unknown(body, SEARCH_FIELDS)
    select = body.get("select")
    if select is not None:
        if not isinstance(select, list) or not all(isinstance(field, str) for field in select):
            raise InvalidRequest("select must be a list of cron fields")
        unknown = [field for field in select if field not in CRON_FIELDS]
        if unknown:
            raise InvalidRequest(f"select has unknown field {unknown[0]!r}; expected some of {', '.join(CRON_FIELDS)}")
    return CronSearch(
        where=_filter(body),
        limit=integer(body, "limit", 10, 1, MAX_LIMIT),
        offset=integer(body, "offset", 0),
        sort_by=choice(body, "sort_by", SORT_FIELDS, "created_at"),
        sort_order=choice(body, "sort_order", SORT_ORDERS, "desc"),
        select=select or None,
    )


def parse_count(payload: Any) -> CronFilter:
    """POST /runs/crons/count."""
    body = require_object(payload)
    reject_unknown(body, COUNT_FIELDS)
    return _filter(body)
