"""The two log formats: text lines, or one JSON object per line (server.log_format / LOG_FORMAT).

Both pass every line through `redact` (a library may log a connection string). A JSON line
has time (UTC, ISO 8601), level, logger, message, the ids of the run, thread or cron it is
about where known (src/services/logcontext.py, extra= fields, or the LangGraph run config of
the graph code that logs), and the traceback as `exception`. Values are redacted one by one,
before encoding, so redaction can never break the JSON.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from langchain_core.runnables.config import var_child_runnable_config

from src.services.logcontext import current_ids
from src.settings import redact

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# With several worker processes (`--workers`) their lines interleave: each says which it is.
TEXT_FORMAT_WITH_PID = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
CONTEXT_IDS = ("run_id", "thread_id", "cron_id")


class RedactingFormatter(logging.Formatter):
    """Every log line, tracebacks included, passes through `redact`: a library may log a connection string."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _graph_ids() -> dict[str, str]:
    """thread_id and run_id of the graph run whose code is logging, from LangGraph's run config."""
    config = var_child_runnable_config.get() or {}
    configurable = config.get("configurable") or {}
    return {name: str(configurable[name]) for name in ("run_id", "thread_id") if configurable.get(name)}


class JsonFormatter(logging.Formatter):
    def __init__(self, with_pid: bool = False) -> None:
        super().__init__()
        self._with_pid = with_pid

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if self._with_pid:
            line["pid"] = record.process
        ids = {**_graph_ids(), **current_ids()}
        for name in CONTEXT_IDS:
            value = getattr(record, name, None) or ids.get(name)
            if value:
                line[name] = str(value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.stack_info:
            line["exception"] = redact(self.formatStack(record.stack_info))
        return orjson.dumps(line).decode()


def log_formatter(log_format: str, with_pid: bool = False) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(with_pid)
    return RedactingFormatter(TEXT_FORMAT_WITH_PID if with_pid else TEXT_FORMAT)


def configure_logging(server: Mapping[str, Any]) -> None:
    """Logging for this process from the `server` settings: format, level, one stderr handler.

    With several workers every process's lines carry its pid."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(log_formatter(server["log_format"], with_pid=server["workers"] > 1))
    logging.basicConfig(level=server["log_level"], handlers=[handler])
    logging.getLogger("robyn").setLevel(logging.WARNING)  # its per-route lines drown ours
