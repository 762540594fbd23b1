"""The in-memory store, with item expiry when langgraph.json configures `store.ttl`.

LangGraph's `InMemoryStore` cannot expire items (it refuses a `ttl`). `ExpiringMemoryStore`
adds what the Postgres store does: an item put with a `ttl` (or the configured `default_ttl`)
disappears that many minutes after it was written or, with `refresh_on_read`, last read;
expired items are never returned, and a sweeper frees them every `sweep_interval_minutes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, cast

from langgraph.store.base import BaseStore, GetOp, IndexConfig, Item, Op, PutOp, Result, SearchOp, TTLConfig
from langgraph.store.memory import InMemoryStore

logger = logging.getLogger(__name__)

Key = tuple[tuple[str, ...], str]


class ExpiringMemoryStore(InMemoryStore):
    supports_ttl = True

    def __init__(
        self,
        *,
        ttl: TTLConfig,
        index: IndexConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(index=index)
        self.ttl_config = ttl
        self._clock = clock
        # Each item with a TTL: when it expires and its TTL in minutes (to refresh it).
        self._expiry: dict[Key, tuple[float, float]] = {}
        # The same deadlines in order; an entry whose deadline changed since is skipped.
        self._deadlines: list[tuple[float, tuple[str, ...], str]] = []

    def sweep(self) -> int:
        """Delete every expired item; return how many."""
        now, expired = self._clock(), []
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, namespace, key = heapq.heappop(self._deadlines)
            current = self._expiry.get((namespace, key))
            if current is not None and current[0] == deadline:
                del self._expiry[(namespace, key)]
                expired.append(PutOp(namespace, key, None))
        if expired:
            super().batch(expired)
        return len(expired)

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        listed = list(ops)
        self.sweep()
        results = super().batch(listed)
        self._track(listed, results)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        listed = list(ops)
        self.sweep()
        results = await super().abatch(listed)
        self._track(listed, results)
        return results

    def _expire_later(self, key: Key, minutes: float) -> None:
        deadline = self._clock() + minutes * 60
        self._expiry[key] = (deadline, minutes)
        heapq.heappush(self._deadlines, (deadline, *key))

    def _refresh(self, item: Item) -> None:
        current = self._expiry.get((item.namespace, item.key))
        if current is not None:
            self._expire_later((item.namespace, item.key), current[1])

    def _track(self, ops: list[Op], results: list[Result]) -> None:
        for op, result in zip(ops, results, strict=True):
            if isinstance(op, PutOp):
                key = (op.namespace, op.key)
                if op.value is not None and op.ttl is not None:
                    self._expire_later(key, op.ttl)
                else:  # deleted, or put again without a TTL: it stays
                    self._expiry.pop(key, None)
            elif isinstance(op, GetOp) and op.refresh_ttl and isinstance(result, Item):
                self._refresh(result)
            elif isinstance(op, SearchOp) and op.refresh_ttl and isinstance(result, list):
                for item in result:
                    if isinstance(item, Item):
                        self._refresh(item)


async def _sweep_every(store: ExpiringMemoryStore, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        swept = store.sweep()
        if swept:
            logger.debug("store: %d expired item(s) deleted", swept)


async def init_memory_store(index: IndexConfig | None, ttl: Mapping[str, Any] | None) -> AsyncIterator[BaseStore]:
    """Resource: the in-memory store; with a TTL config (store.ttl), one whose items expire."""
    if ttl is None:
        yield InMemoryStore(index=index)
        return
    store = ExpiringMemoryStore(ttl=cast(TTLConfig, {k: v for k, v in ttl.items() if v is not None}), index=index)
    interval = ttl.get("sweep_interval_minutes")
    sweeper = asyncio.create_task(_sweep_every(store, interval * 60)) if interval else None
    try:
        yield store
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
