"""Checkpointer and store resources, in memory or on the shared Postgres pool."""

from __future__ import annotations

import copy
import logging
import zlib
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from typing import Any, Protocol, cast, runtime_checkable

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.store.base import BaseStore, IndexConfig, TTLConfig
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from src.services.database import Pool

logger = logging.getLogger(__name__)

STORE_SWEEP_MINUTES = 1

# Checkpointers are generic in their version type; the server takes any.
Checkpointer = BaseCheckpointSaver[Any]


# Checkpoints one run wrote, for a rollback (both tables keyed by thread, namespace, id).
DELETE_CHECKPOINT_WRITES = (
    "DELETE FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s"
)
DELETE_CHECKPOINT = "DELETE FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s"


@runtime_checkable
class ErasableCheckpointer(Protocol):
    """A checkpointer that can delete given checkpoints of a thread (to roll a run back)."""

    async def adelete_checkpoints(self, thread_id: str, checkpoints: Sequence[tuple[str, str]]) -> None:
        """Delete (checkpoint_ns, checkpoint_id) checkpoints of `thread_id` and their writes."""


async def delete_run_checkpoints(saver: Checkpointer, thread_id: str, run_id: str) -> int:
    """Delete every checkpoint `run_id` wrote on `thread_id`; return how many.

    LangGraph copies the run id into each checkpoint's metadata, so the saver's own
    metadata filter finds them; deleting them puts the thread back where it was.
    """
    if not isinstance(saver, ErasableCheckpointer):
        raise TypeError(f"{type(saver).__name__} cannot delete checkpoints")
    found = [
        (item.config["configurable"].get("checkpoint_ns", ""), item.config["configurable"]["checkpoint_id"])
        async for item in saver.alist({"configurable": {"thread_id": thread_id}}, filter={"run_id": run_id})
    ]
    if found:
        await saver.adelete_checkpoints(thread_id, found)
    return len(found)


class MemorySaver(InMemorySaver):
    """`InMemorySaver` that can also delete single checkpoints, for run rollbacks."""

    async def adelete_checkpoints(self, thread_id: str, checkpoints: Sequence[tuple[str, str]]) -> None:
        for checkpoint_ns, checkpoint_id in checkpoints:
            self.storage[thread_id][checkpoint_ns].pop(checkpoint_id, None)
            self.writes.pop((thread_id, checkpoint_ns, checkpoint_id), None)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """As the Postgres saver's: `keep_latest` keeps each namespace's latest checkpoint (with its
        writes and the channel values it uses), `delete` deletes the thread's checkpoints."""
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            if strategy != "keep_latest":
                raise ValueError(f"Unknown prune strategy: {strategy!r}")
            used: set[tuple[str, str, str, Any]] = set()
            for checkpoint_ns, checkpoints in self.storage.get(thread_id, {}).items():
                if not checkpoints:
                    continue
                latest = max(checkpoints)  # checkpoint ids are time-ordered (uuid6)
                for checkpoint_id in [other for other in checkpoints if other != latest]:
                    del checkpoints[checkpoint_id]
                    self.writes.pop((thread_id, checkpoint_ns, checkpoint_id), None)
                kept: Checkpoint = self.serde.loads_typed(checkpoints[latest][0])
                used.update(
                    (thread_id, checkpoint_ns, channel, version)
                    for channel, version in kept["channel_versions"].items()
                )
            for key in [key for key in self.blobs if key[0] == thread_id and key not in used]:
                del self.blobs[key]


# A checkpoint and its new blobs in one statement. The stock saver sends a pipeline of
# one INSERT per blob plus one for the checkpoint: the same single implicit transaction
# (autocommit, one sync), but psycopg's pipeline machinery costs about twice the CPU of
# one plain statement, and a run writes several checkpoints. Same tables, same conflict
# rules as the stock statements (blobs: first write wins; checkpoint: last write wins).
PUT_CHECKPOINT = """
WITH blobs AS (
    INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %s, %s, b.channel, b.version, b.type, b.blob
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[]) AS b(channel, version, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)
INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
"""
# A task's writes in one statement, for the same reason. Writes to special channels
# (errors, interrupts) have fixed indexes and replace what is there; others keep it.
_WRITES_INSERT = """
INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT %s, %s, %s, %s, %s, w.idx, w.channel, w.type, w.blob
FROM unnest(%s::int[], %s::text[], %s::text[], %s::bytea[]) AS w(idx, channel, type, blob)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
"""
PUT_WRITES_KEEP = _WRITES_INSERT + "DO NOTHING"
PUT_WRITES_REPLACE = (
    _WRITES_INSERT + "DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
)


def _columns(rows: Sequence[tuple[Any, ...]], first: int, stop: int) -> list[list[Any]]:
    """Columns `first`..`stop - 1` of LangGraph's row tuples as arrays, for one `unnest(...)`."""
    return [[row[index] for row in rows] for index in range(first, stop)]


class InlineSerdeSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` whose writes cost one plain statement each, serialised on the loop.

    The stock `aput` and `aput_writes` send each serialisation to `asyncio.to_thread`
    and each write as a pipeline. The serialisation is the serializer's Python and
    msgpack code, which holds the GIL, so the thread frees nothing for the loop; each
    hop only adds a thread wake-up, a GIL hand-over and a loop wake-up. A one-node run
    makes five such writes: measured with `python -m bench.http --graph slow` at 32
    clients, serialising inline cut the server's CPU per run from about 13 to 10.5 ms,
    and one statement per write (PUT_CHECKPOINT, PUT_WRITES_*) cut it further. The rows
    are the stock saver's: made by its own `_dump_blobs`/`_dump_writes`, with the same
    split between values kept in the checkpoint and values stored as blobs, and the
    same conflict rules (a test writes the same input through both savers and compares
    the tables). Reads are the stock saver's queries; only the row-to-tuple step is
    redone, again without the thread hop, and checked against the stock one.
    """

    async def _load_checkpoint_tuple(self, value: DictRow) -> CheckpointTuple:
        # The stock version is this, with the pending writes loaded through asyncio.to_thread.
        parent = value["parent_checkpoint_id"]
        return CheckpointTuple(
            {
                "configurable": {
                    "thread_id": value["thread_id"],
                    "checkpoint_ns": value["checkpoint_ns"],
                    "checkpoint_id": value["checkpoint_id"],
                }
            },
            cast(
                Checkpoint,
                {
                    **value["checkpoint"],
                    "channel_values": {
                        **(value["checkpoint"].get("channel_values") or {}),
                        **self._load_blobs(value["channel_values"]),
                    },
                },
            ),
            value["metadata"],
            (
                {
                    "configurable": {
                        "thread_id": value["thread_id"],
                        "checkpoint_ns": value["checkpoint_ns"],
                        "checkpoint_id": parent,
                    }
                }
                if parent
                else None
            ),
            self._load_writes(value["pending_writes"]),
        )

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id = configurable["thread_id"]
        checkpoint_ns = configurable["checkpoint_ns"]
        copied = checkpoint.copy()
        copied["channel_values"] = dict(checkpoint["channel_values"])
        # Primitives stay in the checkpoint row; anything else (and delta snapshots,
        # marked True in the row) goes to the blobs table, as the stock saver does.
        blob_values: dict[str, Any] = {}
        for key, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blob_values[key] = copied["channel_values"].pop(key)
                copied["channel_values"][key] = True
            elif value is not None and not isinstance(value, (str, int, float, bool)):
                blob_values[key] = copied["channel_values"].pop(key)
        blob_versions = {k: v for k, v in new_versions.items() if k in blob_values}
        blobs = self._dump_blobs(thread_id, checkpoint_ns, blob_values, blob_versions)
        params = (
            thread_id,
            checkpoint_ns,
            *_columns(blobs, 2, 6),  # channel, version, type, blob
            thread_id,
            checkpoint_ns,
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            Jsonb(copied),
            Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
        )
        async with self._cursor() as cur:
            await cur.execute(PUT_CHECKPOINT, params)
        return {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint["id"]}
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not writes:
            return
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        configurable = config["configurable"]
        rows = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        # Rows sharing an index (a special channel written twice): the stock saver
        # writes them one by one, so the last one stays when replacing and the first
        # one when keeping; one statement may touch a row only once.
        by_idx: dict[int, tuple[Any, ...]] = {}
        for row in rows:
            if replace or row[5] not in by_idx:
                by_idx[row[5]] = row
        kept = list(by_idx.values())
        params = (*rows[0][:5], *_columns(kept, 5, 9))  # the task's ids, then idx, channel, type, blob
        async with self._cursor() as cur:
            await cur.execute(PUT_WRITES_REPLACE if replace else PUT_WRITES_KEEP, params)


class ThreadShardedSaver(BaseCheckpointSaver[str]):
    """Postgres checkpointer whose runs on different threads use the pool in parallel.

    `AsyncPostgresSaver` holds one `asyncio.Lock` around every query, even on a pool,
    so one shared instance makes every run of the server queue on one connection.
    The lock still matters within a thread: a run's checkpoint and writes must not
    overtake each other. So this keeps `shards` savers on the same pool, each with its
    own lock, and sends every call for a thread to the same saver (by a stable hash of
    the thread id): one thread stays serialised, different threads proceed in parallel.
    All savers read and write the same tables, so calls that name no thread (listing
    across threads) can go to any of them.
    """

    def __init__(self, pool: Pool, shards: int) -> None:
        if shards < 1:
            raise ValueError(f"ThreadShardedSaver needs shards >= 1, got {shards}")
        self._pool = pool
        self.shards: list[AsyncPostgresSaver] = [InlineSerdeSaver(pool) for _ in range(shards)]
        super().__init__(serde=self.shards[0].serde)

    def _for_thread(self, thread_id: Any) -> AsyncPostgresSaver:
        if thread_id is None:
            return self.shards[0]
        return self.shards[zlib.crc32(str(thread_id).encode()) % len(self.shards)]

    def _for(self, config: RunnableConfig | None) -> AsyncPostgresSaver:
        configurable = (config or {}).get("configurable") or {}
        return self._for_thread(configurable.get("thread_id"))

    async def setup(self) -> None:
        await self.shards[0].setup()

    @property
    def config_specs(self) -> list[Any]:
        return self.shards[0].config_specs

    def get_next_version(self, current: str | None, channel: None) -> str:
        return self.shards[0].get_next_version(current, channel)

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> ThreadShardedSaver:
        clone = copy.copy(self)
        clone.shards = [shard.with_allowlist(extra_allowlist) for shard in self.shards]  # type: ignore[misc]
        clone.serde = clone.shards[0].serde
        return clone

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._for(config).aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async for item in self._for(config).alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._for(config).aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._for(config).aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._for_thread(thread_id).adelete_thread(thread_id)

    async def adelete_checkpoints(self, thread_id: str, checkpoints: Sequence[tuple[str, str]]) -> None:
        shard = self._for_thread(thread_id)
        # Under the thread's shard lock: after any write of the run still in flight.
        async with shard.lock, self._pool.connection() as conn, conn.transaction():
            for checkpoint_ns, checkpoint_id in checkpoints:
                await conn.execute(DELETE_CHECKPOINT_WRITES, (thread_id, checkpoint_ns, checkpoint_id))
                await conn.execute(DELETE_CHECKPOINT, (thread_id, checkpoint_ns, checkpoint_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        # Pruning takes its own row locks per thread; any shard's lock will do.
        await self.shards[0].aprune(thread_ids, strategy=strategy)

    async def aget_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Any:
        return await self._for(config).aget_delta_channel_history(config=config, channels=channels)

    # The synchronous API, for graphs that call it from worker threads.
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._for(config).get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return self._for(config).list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._for(config).put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._for(config).put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self._for_thread(thread_id).delete_thread(thread_id)


def store_ttl_config(ttl: Mapping[str, Any] | None) -> TTLConfig:
    """langgraph.json's store.ttl; without one, items put with a `ttl` still expire (reads refresh
    them) and items without one stay."""
    if ttl is None:
        return {"refresh_on_read": True, "sweep_interval_minutes": STORE_SWEEP_MINUTES}
    return cast(TTLConfig, {key: value for key, value in ttl.items() if value is not None})


async def init_postgres_store(
    pool: Pool, index: IndexConfig | None = None, ttl: Mapping[str, Any] | None = None
) -> AsyncIterator[BaseStore]:
    """Resource: the long-term memory store on the pool (tables set up by src/services/schema.py),
    with semantic search when langgraph.json has store.index, and a sweeper deleting expired items."""
    store = AsyncPostgresStore(pool, index=cast(Any, index), ttl=store_ttl_config(ttl))
    await store.start_ttl_sweeper()
    try:
        yield store
    finally:
        await store.stop_ttl_sweeper(timeout=1.0)
        stop_batch_task(store)


def stop_batch_task(store: AsyncPostgresStore) -> None:
    # The batched store starts a queue-draining task on the loop when it is built and
    # only cancels it when garbage-collected; stop it with the resource instead.
    task = store._task
    if task is not None:
        task.cancel()
