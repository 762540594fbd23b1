"""Runs: executing a graph on a thread, one run per thread at a time."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from src.services.errors import InvalidRequest, NotFound, ThreadBusy
from src.services.graphs import GraphFactoryError, GraphNotFound, GraphRegistry
from src.services.repository import Record, Repository
from src.services.serialization import to_jsonable
from src.services.threads import (
    optional_dict,
    parse_thread_id,
    reject_unknown,
    require_dict,
)

logger = logging.getLogger(__name__)

MULTITASK_STRATEGIES = ("reject", "enqueue")
IF_NOT_EXISTS = ("reject", "create")
DURABILITY = ("sync", "async", "exit")
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
        "durability",
        "stream_mode",
        "on_disconnect",
    }
)
# Fields of the LangGraph API this server does not honour yet: refused, never ignored.
UNSUPPORTED_RUN_FIELDS = frozenset(
    {"webhook", "on_completion", "after_seconds", "feedback_keys", "stream_subgraphs", "stream_resumable"}
)


def _interrupt_nodes(body: dict[str, Any], key: str) -> list[str] | str | None:
    value = body.get(key)
    if value is None or value == "*":
        return value
    if isinstance(value, list) and all(isinstance(node, str) for node in value):
        return value
    raise InvalidRequest(f"{key} must be '*' or a list of node names")


def _choice(body: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = body.get(key)
    if value is None:
        return choices[0]
    if value not in choices:
        raise InvalidRequest(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _command(body: dict[str, Any]) -> Command | None:
    command = optional_dict(body, "command")
    if command is None:
        return None
    reject_unknown(command, frozenset({"resume", "update", "goto"}))
    goto = command.get("goto")
    if goto is not None and not isinstance(goto, (str, list)):
        raise InvalidRequest("command.goto must be a node name or a list of node names")
    return Command(resume=command.get("resume"), update=command.get("update"), goto=goto or ())


class RunService:
    """Executes runs, one at a time per thread, at most `max_concurrency` at once in all.

    Two runs on one thread at the same time would both start from the same checkpoint
    and one's updates would be lost, so each thread has a lock: a second run is refused
    (409, multitask_strategy='reject', the default) or waits its turn ('enqueue').
    """

    def __init__(self, repository: Repository, graphs: GraphRegistry, max_concurrency: int) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self._repository = repository
        self._graphs = graphs
        self._slots = asyncio.Semaphore(max_concurrency)
        self._thread_locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def _thread_turn(self, thread_id: str, strategy: str) -> AsyncIterator[None]:
        lock = self._thread_locks.setdefault(thread_id, asyncio.Lock())
        if lock.locked() and strategy == "reject":
            raise ThreadBusy(thread_id)
        try:
            async with lock:
                yield
        finally:
            # Forget the lock once nobody holds or waits for it, so the map stays small.
            if not lock.locked() and self._thread_locks.get(thread_id) is lock:
                del self._thread_locks[thread_id]

    async def wait(self, thread_id: str, payload: Any) -> dict[str, Any]:
        """Run a graph on a thread to completion; return the final values (LangGraph's /runs/wait)."""
        thread_id = parse_thread_id(thread_id)
        body = require_dict(payload)
        reject_unknown(body, RUN_FIELDS, UNSUPPORTED_RUN_FIELDS)
        assistant_id = body.get("assistant_id")
        if not isinstance(assistant_id, str) or not assistant_id:
            raise InvalidRequest("assistant_id is required: the id of a graph this server serves")
        if assistant_id not in self._graphs:
            raise NotFound(f"Assistant {assistant_id!r} not found; this server serves: {', '.join(self._graphs.ids)}")
        strategy = _choice(body, "multitask_strategy", MULTITASK_STRATEGIES)
        if_not_exists = _choice(body, "if_not_exists", IF_NOT_EXISTS)
        durability = body.get("durability")
        if durability is not None and durability not in DURABILITY:
            raise InvalidRequest(f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}")
        command = _command(body)
        graph_input = body.get("input")
        if command is not None and graph_input is not None:
            raise InvalidRequest("send either input or command, not both")
        if graph_input is not None and not isinstance(graph_input, (dict, list)):
            raise InvalidRequest(f"input must be an object, got {type(graph_input).__name__}")
        config = self._run_config(thread_id, assistant_id, body)
        interrupt_before = _interrupt_nodes(body, "interrupt_before")
        interrupt_after = _interrupt_nodes(body, "interrupt_after")
        context = optional_dict(body, "context")

        thread = await self._repository.get_thread(thread_id)
        if thread is None:
            if if_not_exists == "reject":
                raise NotFound(f"Thread {thread_id!r} not found; send if_not_exists='create' to create it")
            await self._repository.create_thread(thread_id, {})

        async with self._thread_turn(thread_id, strategy):
            run = await self._repository.create_run(
                {
                    "run_id": config["configurable"]["run_id"],
                    "thread_id": thread_id,
                    "assistant_id": assistant_id,
                    "status": "pending",
                    "metadata": optional_dict(body, "metadata") or {},
                    "kwargs": to_jsonable({k: v for k, v in body.items() if k != "metadata"}),
                    "multitask_strategy": strategy,
                }
            )
            async with self._slots:
                return await self._execute(
                    run,
                    config,
                    command if command is not None else graph_input,
                    interrupt_before=interrupt_before,
                    interrupt_after=interrupt_after,
                    context=context,
                    durability=durability,
                )

    @staticmethod
    def _run_config(thread_id: str, assistant_id: str, body: dict[str, Any]) -> RunnableConfig:
        given = optional_dict(body, "config") or {}
        configurable = given.get("configurable") or {}
        if not isinstance(configurable, dict):
            raise InvalidRequest("config.configurable must be an object")
        checkpoint = optional_dict(body, "checkpoint") or {}
        checkpoint_id = body.get("checkpoint_id")
        if checkpoint_id is not None and not isinstance(checkpoint_id, str):
            raise InvalidRequest("checkpoint_id must be a string")
        run_id = str(uuid.uuid4())
        config: dict[str, Any] = {
            **given,
            "configurable": {
                **configurable,
                **{k: v for k, v in checkpoint.items() if k in ("checkpoint_id", "checkpoint_ns")},
                **({"checkpoint_id": checkpoint_id} if checkpoint_id else {}),
                "thread_id": thread_id,
                "run_id": run_id,
                "assistant_id": assistant_id,
                "graph_id": assistant_id,
            },
            "metadata": {
                **(given.get("metadata") or {}),
                **(optional_dict(body, "metadata") or {}),
                "run_id": run_id,
                "thread_id": thread_id,
                "assistant_id": assistant_id,
                "graph_id": assistant_id,
            },
        }
        return config  # type: ignore[return-value]

    async def _execute(self, run: Record, config: RunnableConfig, graph_input: Any, **options: Any) -> dict[str, Any]:
        run_id, thread_id, graph_id = run["run_id"], run["thread_id"], run["assistant_id"]
        await self._repository.set_run_status(run_id, "running")
        await self._repository.set_thread_state(thread_id, "busy")
        await self._repository.merge_thread_metadata(thread_id, {"graph_id": graph_id, "assistant_id": graph_id})
        try:
            graph = await self._graphs.get(graph_id, config)
            options = {k: v for k, v in options.items() if v is not None}
            await graph.ainvoke(graph_input, config, **options)
            snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(run_id, thread_id, "interrupted", "idle", "the run was cancelled"))
            raise
        except (GraphNotFound, GraphFactoryError, Exception) as exc:  # the graph's own failure
            logger.warning("run %s on thread %s failed: %s: %s", run_id, thread_id, type(exc).__name__, exc)
            await self._finish(run_id, thread_id, "error", "error", f"{type(exc).__name__}: {exc}")
            return {"__error__": {"error": type(exc).__name__, "message": str(exc)}}
        values = to_jsonable(snapshot.values)
        interrupts = to_jsonable(snapshot.interrupts)
        by_task = {task.id: to_jsonable(task.interrupts) for task in snapshot.tasks if task.interrupts}
        await self._repository.set_thread_state(
            thread_id, "interrupted" if interrupts else "idle", values=values, interrupts=by_task
        )
        await self._repository.set_run_status(run_id, "success")
        if interrupts:
            return {**values, "__interrupt__": interrupts} if isinstance(values, dict) else values
        return values

    async def _finish(self, run_id: str, thread_id: str, run_status: str, thread_status: str, error: str) -> None:
        await self._repository.set_run_status(run_id, run_status, error)
        await self._repository.set_thread_state(thread_id, thread_status, error=error)
