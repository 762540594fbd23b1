"""Threads: creating them, reading them and reading their state."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError
from langgraph.types import StateSnapshot

from src.services.auth.filters import Visibility
from src.services.errors import Conflict, InvalidRequest, NotFound, ThreadNotFound
from src.services.graphs import Graph, GraphRegistry
from src.services.persistence import Checkpointer
from src.services.serialization import to_jsonable
from src.services.threads.models import (
    HistoryQuery,
    StateUpdate,
    ThreadCreate,
    ThreadFilter,
    ThreadRecord,
    ThreadSearch,
)
from src.services.threads.repository import ThreadRepository
from src.services.validation import parse_uuid


def parse_thread_id(value: Any, field: str = "thread_id") -> str:
    return parse_uuid(value, field)


def public_thread(record: ThreadRecord) -> dict[str, Any]:
    """A thread as the LangGraph API returns it."""
    return {
        "thread_id": record["thread_id"],
        "created_at": to_jsonable(record["created_at"]),
        "updated_at": to_jsonable(record["updated_at"]),
        "metadata": record["metadata"],
        "status": record["status"],
        "values": record["values"] if record["values"] is not None else {},
        "interrupts": record["interrupts"],
        "error": record.get("error"),
    }


def empty_state() -> dict[str, Any]:
    """The state of a thread with no checkpoint yet, as the LangGraph API returns it."""
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "metadata": {},
        "created_at": None,
        "checkpoint": None,
        "parent_checkpoint": None,
        "interrupts": [],
        "checkpoint_id": None,
        "parent_checkpoint_id": None,
    }


def checkpoint_of(config: RunnableConfig | None) -> dict[str, Any] | None:
    """A checkpoint as the LangGraph API shows it: None without a checkpoint id, and only
    the fields the config has (clients send it back as they got it)."""
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("thread_id") or not configurable.get("checkpoint_id"):
        return None
    checkpoint = {"thread_id": configurable["thread_id"], "checkpoint_id": configurable["checkpoint_id"]}
    if "checkpoint_ns" in configurable:
        checkpoint["checkpoint_ns"] = configurable["checkpoint_ns"] or ""
    if "checkpoint_map" in configurable:
        checkpoint["checkpoint_map"] = configurable["checkpoint_map"]
    return checkpoint


class ThreadService:
    """The /threads API. `visible` (every method that names a thread takes one) is the caller's auth
    filter: a thread it hides is not found (404), and a create over an id it hides is a conflict (409)."""

    def __init__(self, repository: ThreadRepository, graphs: GraphRegistry, checkpointer: Checkpointer) -> None:
        self._repository = repository
        self._graphs = graphs
        self._checkpointer = checkpointer

    async def create(self, request: ThreadCreate, visible: Visibility | None = None) -> dict[str, Any]:
        thread_id = request.thread_id or str(uuid.uuid4())
        created = await self._repository.create_thread(thread_id, request.metadata)
        if created is not None:
            return public_thread(created)
        # Whatever if_exists says: another user's thread is neither returned nor told apart from a taken id.
        if request.if_exists == "raise" or (
            visible is not None and await self._repository.get_thread(thread_id, visible) is None
        ):
            raise Conflict(f"Thread {thread_id!r} already exists")
        return await self.get(thread_id)

    async def get_record(self, thread_id: str, visible: Visibility | None = None) -> ThreadRecord:
        record = await self._repository.get_thread(parse_thread_id(thread_id), visible)
        if record is None:
            raise ThreadNotFound(thread_id)
        return record

    async def get(self, thread_id: str, visible: Visibility | None = None) -> dict[str, Any]:
        return public_thread(await self.get_record(thread_id, visible))

    async def search(self, request: ThreadSearch) -> list[dict[str, Any]]:
        found = await self._repository.search_threads(
            request.where, request.limit, request.offset, request.sort_by, request.sort_order
        )
        threads = [public_thread(record) for record in found]
        if request.select:
            threads = [{field: thread[field] for field in request.select} for thread in threads]
        return threads

    async def count(self, where: ThreadFilter) -> int:
        return await self._repository.count_threads(where)

    async def patch(
        self, thread_id: str, metadata: dict[str, Any], visible: Visibility | None = None
    ) -> dict[str, Any]:
        record = await self.get_record(thread_id, visible)
        await self._repository.merge_thread_metadata(record["thread_id"], metadata)
        return await self.get(record["thread_id"])

    async def delete(self, thread_id: str, visible: Visibility | None = None) -> None:
        record = await self.get_record(thread_id, visible)
        if record["status"] == "busy":
            raise Conflict(f"Thread {record['thread_id']!r} is running a run; cancel it before deleting the thread")
        await self._checkpointer.adelete_thread(record["thread_id"])
        await self._repository.delete_thread(record["thread_id"])

    async def copy(
        self,
        thread_id: str,
        visible: Visibility | None = None,
        new_thread_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A new thread (`new_thread_id`, else a fresh id) with the same values, every checkpoint, and
        the same metadata with `metadata` (what an auth handler stamped on the copy) merged in."""
        source = await self.get_record(thread_id, visible)
        target_id = new_thread_id or str(uuid.uuid4())
        target = await self._repository.create_thread(target_id, {**source["metadata"], **(metadata or {})})
        if target is None:
            raise Conflict(f"Thread {target_id!r} already exists")
        history = [
            item async for item in self._checkpointer.alist({"configurable": {"thread_id": source["thread_id"]}})
        ]
        for item in reversed(history):  # oldest first, so each parent exists before its child
            configurable = item.config["configurable"]
            parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
            config: RunnableConfig = {
                "configurable": {
                    "thread_id": target["thread_id"],
                    "checkpoint_ns": configurable.get("checkpoint_ns", ""),
                    **({"checkpoint_id": parent} if parent else {}),
                }
            }
            saved = await self._checkpointer.aput(
                config, item.checkpoint, item.metadata, item.checkpoint["channel_versions"]
            )
            by_task: dict[str, list[tuple[str, Any]]] = {}
            for task_id, channel, value in item.pending_writes or []:
                by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                await self._checkpointer.aput_writes(saved, writes, task_id)
        await self._repository.set_thread_state(
            target["thread_id"],
            "idle" if source["status"] == "busy" else source["status"],
            values=source["values"],
            interrupts=source["interrupts"],
            error=source["error"],
        )
        return await self.get(target["thread_id"])

    async def _graph_for(self, record: ThreadRecord, config: RunnableConfig) -> Graph | None:
        graph_id = record["metadata"].get("graph_id")
        if graph_id is None or graph_id not in self._graphs:
            return None
        return await self._graphs.get(graph_id, config)

    async def state(
        self, thread_id: str, checkpoint: Any = None, subgraphs: bool = False, visible: Visibility | None = None
    ) -> dict[str, Any]:
        """The thread's state, at its latest checkpoint or at `checkpoint` (an id or an object)."""
        record = await self.get_record(thread_id, visible)
        config = _checkpoint_config(record["thread_id"], checkpoint)
        graph = await self._graph_for(record, config)
        if graph is None:
            return empty_state()
        snapshot = await graph.aget_state(config, subgraphs=subgraphs)
        if snapshot.config is None:
            if checkpoint is not None:
                raise NotFound(f"Checkpoint {checkpoint!r} not found on thread {record['thread_id']!r}")
            return empty_state()
        return state_dict(snapshot)

    async def history(
        self, thread_id: str, query: HistoryQuery, visible: Visibility | None = None
    ) -> list[dict[str, Any]]:
        record = await self.get_record(thread_id, visible)
        config = _checkpoint_config(record["thread_id"], query.checkpoint)
        before = _checkpoint_config(record["thread_id"], query.before) if query.before is not None else None
        graph = await self._graph_for(record, config)
        if graph is None:
            return []
        snapshots = graph.aget_state_history(config, limit=query.limit, before=before, filter=query.metadata)
        return [state_dict(snapshot) async for snapshot in snapshots]

    async def update_state(
        self, thread_id: str, update: StateUpdate, visible: Visibility | None = None
    ) -> dict[str, Any]:
        """Apply `values` as if node `as_node` wrote them (LangGraph's update_state)."""
        record = await self.get_record(thread_id, visible)
        if record["status"] == "busy":
            raise Conflict(f"Thread {record['thread_id']!r} is running a run; update its state when it is done")
        config = _checkpoint_config(record["thread_id"], update.checkpoint)
        graph = await self._graph_for(record, config)
        if graph is None:
            raise Conflict(
                f"Thread {record['thread_id']!r} has no graph yet: run it once, "
                "or create it with metadata.graph_id, before updating its state"
            )
        try:
            updated = await graph.aupdate_state(config, update.values, as_node=update.as_node)
        except (ValueError, KeyError, TypeError, InvalidUpdateError) as exc:
            raise InvalidRequest(f"cannot update the state: {exc}") from None
        snapshot = await graph.aget_state({"configurable": {"thread_id": record["thread_id"]}})
        interrupts = {task.id: to_jsonable(task.interrupts) for task in snapshot.tasks if task.interrupts}
        await self._repository.set_thread_state(
            record["thread_id"],
            "interrupted" if interrupts else "idle",
            values=to_jsonable(snapshot.values),
            interrupts=interrupts,
        )
        return {"checkpoint": checkpoint_of(updated)}


def _checkpoint_config(thread_id: str, checkpoint: Any) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if isinstance(checkpoint, str):
        configurable["checkpoint_id"] = checkpoint
    elif isinstance(checkpoint, dict):
        checkpoint = checkpoint.get("configurable", checkpoint)  # a RunnableConfig is accepted too
        for key in ("checkpoint_id", "checkpoint_ns", "checkpoint_map"):
            if checkpoint.get(key) is not None:
                configurable[key] = checkpoint[key]
    elif checkpoint is not None:
        raise InvalidRequest("checkpoint must be a checkpoint id or an object with checkpoint_id")
    return {"configurable": configurable}


def state_dict(snapshot: StateSnapshot) -> dict[str, Any]:
    """A state snapshot as the LangGraph API returns it (with its deprecated id fields too)."""
    checkpoint, parent = checkpoint_of(snapshot.config), checkpoint_of(snapshot.parent_config)
    return {
        "values": to_jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "path": to_jsonable(task.path),
                "error": None if task.error is None else str(task.error),
                "interrupts": to_jsonable(task.interrupts),
                "checkpoint": to_jsonable(task.state["configurable"]) if isinstance(task.state, dict) else None,
                "state": state_dict(task.state) if isinstance(task.state, StateSnapshot) else None,
                "result": to_jsonable(task.result),
            }
            for task in snapshot.tasks
        ],
        "metadata": to_jsonable(snapshot.metadata),
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": to_jsonable(snapshot.interrupts),
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }
