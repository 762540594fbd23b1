"""Ids that log lines carry in the JSON log format (LOG_FORMAT=json): run_id, thread_id, cron_id.

Set around the code that works on a run or a cron; asyncio tasks created inside copy it, so
everything a run's task logs, its graph's own lines included, carries the run's ids.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

LOG_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar("agent_server_log_context", default={})


@contextlib.contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Log lines written inside (and in tasks created inside) carry these ids."""
    token = LOG_CONTEXT.set({**LOG_CONTEXT.get(), **{name: value for name, value in ids.items() if value}})
    try:
        yield
    finally:
        LOG_CONTEXT.reset(token)
