"""Ids that log lines carry in the JSON log format (LOG_FORMAT=json): run_id, thread_id, cron_id.

Set around the code that works on a run or a cron; asyncio tasks created inside copy it, so
everything a run's task logs, its graph's own lines included, carries the run's ids.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

# (name, id) pairs: a context variable's value is shared by every task that copied it, so it
# is immutable.
LOG_CONTEXT: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("agent_server_log_context", default=())


def current_ids() -> dict[str, str]:
    return dict(LOG_CONTEXT.get())


@contextlib.contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Log lines written inside (and in tasks created inside) carry these ids."""
    merged = {**current_ids(), **{name: value for name, value in ids.items() if value}}
    token = LOG_CONTEXT.set(tuple(merged.items()))
    try:
        yield
    finally:
        LOG_CONTEXT.reset(token)
