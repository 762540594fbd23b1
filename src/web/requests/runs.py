"""What the run routes accept: a run's creation body, list and cancel parameters, stream modes."""

from __future__ import annotations

from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from src.services.errors import InvalidRequest
from src.services.runs.request import (
    CANCEL_ACTIONS,
    DURABILITY,
    IF_NOT_EXISTS,
    MULTITASK_STRATEGIES,
    ON_COMPLETION,
    ON_DISCONNECT,
    RUN_STATUSES,
    STREAM_MODES,
    CancelSelection,
    RunRequest,
)
from src.services.serialization import to_jsonable
from src.services.threads.service import parse_thread_id
from src.services.validation import (
    MAX_LIMIT,
    choice,
    optional_object,
    query_integer,
    reject_unknown,
    require_object,
)
from src.web.requests.config import parse_config

RUN_FIELDS = frozenset(
    {
        "assistant_id",
        "input",
        "command",
        "config",
        "context",
        "metadata",
        "multitask_strategy",
        "if_not_exists",
        "interrupt_before",
        "interrupt_after",
        "checkpoint",
        "checkpoint_id",
        "checkpoint_during",
        "durability",
        "stream_mode",
        "stream_subgraphs",
        "on_disconnect",
        "on_completion",
        # Every run's events are kept while it runs, so every stream can be resumed.
        "stream_resumable",
        "webhook",
    }
)
# Fields of the LangGraph API this server does not honour yet: refused, never ignored.
UNSUPPORTED_RUN_FIELDS = frozenset({"after_seconds", "feedback_keys"})
CANCEL_FIELDS = frozenset({"thread_id", "run_ids", "status"})


def _interrupt_nodes(body: dict[str, Any], key: str) -> list[str] | str | None:
    value = body.get(key)
    if value is None or value == "*":
        return value
    if isinstance(value, list) and all(isinstance(node, str) for node in value):
        return value
    raise InvalidRequest(f"{key} must be '*' or a list of node names")


def _command(body: dict[str, Any]) -> Command[Any] | None:
    command = optional_object(body, "command")
    if command is None:
        return None
    reject_unknown(command, frozenset({"resume", "update", "goto"}))
    goto = command.get("goto")
    if goto is not None and not isinstance(goto, (str, list, dict)):
        raise InvalidRequest("command.goto must be a node name, a Send or a list of them")
    update = command.get("update")
    if isinstance(update, list):
        update = [tuple(item) if isinstance(item, list) else item for item in update]
    return Command(resume=command.get("resume"), update=update, goto=goto or ())


def _checkpoint(body: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint to start from. Clients send back what the server gave them, nulls
    included (useStream: `checkpoint_map: null`): a null field is one that is not set."""
    checkpoint = optional_object(body, "checkpoint") or {}
    for key, expected in (("checkpoint_id", str), ("checkpoint_ns", str), ("checkpoint_map", dict)):
        value = checkpoint.get(key)
        if value is not None and not isinstance(value, expected):
            raise InvalidRequest(f"checkpoint.{key} must be {'a string' if expected is str else 'an object'}")
    return {
        key: value
        for key, value in checkpoint.items()
        if key in ("checkpoint_id", "checkpoint_ns", "checkpoint_map") and value is not None
    }


def parse_stream_modes(value: Any, default: list[str]) -> list[str]:
    if value is None:
        return default
    modes = [value] if isinstance(value, str) else value
    if not isinstance(modes, list) or not all(isinstance(mode, str) for mode in modes):
        raise InvalidRequest("stream_mode must be a stream mode or a list of them")
    for mode in modes:
        if mode not in STREAM_MODES:
            raise InvalidRequest(f"stream_mode {mode!r} is not supported; expected one of {', '.join(STREAM_MODES)}")
    return list(dict.fromkeys(modes))


def parse_run_request(payload: Any, *, stateless: bool) -> RunRequest:
    body = require_object(payload)
    reject_unknown(body, RUN_FIELDS, UNSUPPORTED_RUN_FIELDS)
    assistant_id = body.get("assistant_id")
    if not isinstance(assistant_id, str) or not assistant_id:
        raise InvalidRequest("assistant_id is required: the id of an assistant or graph this server serves")
    command = _command(body)
    graph_input = body.get("input")
    if command is not None and graph_input is not None:
        raise InvalidRequest("send either input or command, not both")
    if graph_input is not None and not isinstance(graph_input, (dict, list)):
        raise InvalidRequest(f"input must be an object, got {type(graph_input).__name__}")
    given = parse_config(body) or {}
    configurable = given.get("configurable") or {}
    checkpoint = _checkpoint(body)
    checkpoint_id = body.get("checkpoint_id")
    if checkpoint_id is not None and not isinstance(checkpoint_id, str):
        raise InvalidRequest("checkpoint_id must be a string")
    metadata = optional_object(body, "metadata") or {}
    durability = body.get("durability")
    if durability is not None and durability not in DURABILITY:
        raise InvalidRequest(f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}")
    checkpoint_during = body.get("checkpoint_during")
    if durability is None and checkpoint_during is not None:
        durability = "async" if checkpoint_during else "exit"
    subgraphs = body.get("stream_subgraphs") or False
    if not isinstance(subgraphs, bool):
        raise InvalidRequest("stream_subgraphs must be a boolean")
    config: dict[str, Any] = {
        **given,
        "configurable": {
            **configurable,
            **checkpoint,
            **({"checkpoint_id": checkpoint_id} if checkpoint_id else {}),
        },
        "metadata": {**(given.get("metadata") or {}), **metadata},
    }
    options = {
        "interrupt_before": _interrupt_nodes(body, "interrupt_before"),
        "interrupt_after": _interrupt_nodes(body, "interrupt_after"),
        "durability": durability,
    }
    return RunRequest(
        assistant_id=assistant_id,
        graph_input=command if command is not None else graph_input,
        config=cast(RunnableConfig, config),
        context=optional_object(body, "context"),
        metadata=metadata,
        stream_modes=parse_stream_modes(body.get("stream_mode"), ["values"]),
        subgraphs=subgraphs,
        multitask_strategy=choice(body, "multitask_strategy", MULTITASK_STRATEGIES, "enqueue"),
        if_not_exists=choice(body, "if_not_exists", IF_NOT_EXISTS, "create" if stateless else "reject"),
        on_disconnect=choice(body, "on_disconnect", ON_DISCONNECT, "continue"),
        on_completion=choice(body, "on_completion", ON_COMPLETION, ON_COMPLETION[0]),
        options={k: v for k, v in options.items() if v is not None},
        kwargs=to_jsonable({k: v for k, v in body.items() if k != "metadata" and v is not None}),
        webhook=body.get("webhook"),
    )


def parse_list(limit: str | None, offset: str | None, status: str | None) -> tuple[int, int, str | None]:
    """GET /threads/{id}/runs: limit, offset and an optional status."""
    if status is not None and status not in RUN_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
    return query_integer(limit, "limit", 10, 0, MAX_LIMIT), query_integer(offset, "offset", 0), status


def parse_cancel_action(action: str | None) -> bool:
    """True for action=rollback (cancel and delete the run), False for interrupt (the default)."""
    if action not in (None, *CANCEL_ACTIONS):
        raise InvalidRequest(f"action must be one of {', '.join(CANCEL_ACTIONS)}, got {action!r}")
    return action == "rollback"


def parse_cancel_selection(payload: Any) -> CancelSelection:
    body = require_object(payload)
    reject_unknown(body, CANCEL_FIELDS)
    thread_id = parse_thread_id(body["thread_id"]) if body.get("thread_id") is not None else None
    run_ids = body.get("run_ids")
    status = body.get("status")
    if run_ids is not None and (not isinstance(run_ids, list) or not run_ids):
        raise InvalidRequest("run_ids must be a non-empty list of run ids")
    if status is not None and status not in ("pending", "running", "all"):
        raise InvalidRequest(f"status must be one of pending, running, all, got {status!r}")
    if run_ids is None and status is None and thread_id is None:
        raise InvalidRequest("name the runs to cancel: run_ids, thread_id or status")
    wanted = {parse_thread_id(r, "run_ids[]") for r in run_ids} if run_ids is not None else None
    return CancelSelection(run_ids=wanted, thread_id=thread_id, status=status)
