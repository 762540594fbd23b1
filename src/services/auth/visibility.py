"""Thread visibility for the run routes: a run is visible exactly when its thread is.

The run service takes no auth filter; its routes resolve the run's thread with the caller's
filter first (in the database query, as every thread route does) and answer 404 when it is hidden.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from src.services.auth.filters import Visibility
from src.services.errors import ThreadNotFound
from src.services.threads.models import ThreadFilter
from src.services.threads.repository import ThreadRepository
from src.services.threads.service import parse_thread_id

VisibleThreads = Callable[[set[str]], Awaitable[set[str]]]


class ThreadVisibility:
    def __init__(self, threads: ThreadRepository) -> None:
        self._threads = threads

    async def require(self, thread_id: str, visible: Visibility, missing_ok: bool = False) -> None:
        """ThreadNotFound unless `visible` lets the caller see the thread; with `missing_ok`, a thread that
        does not exist at all passes too (a run that creates it, if_not_exists='create')."""
        thread_id = parse_thread_id(thread_id)
        if await self._threads.get_thread(thread_id, visible) is not None:
            return
        if missing_ok and not await self._threads.thread_exists(thread_id):
            return
        raise ThreadNotFound(thread_id)

    def among(self, visible: Visibility) -> VisibleThreads:
        """A check for the run service's bulk cancel: of some thread ids, those `visible` lets through."""

        async def visible_ids(thread_ids: set[str]) -> set[str]:
            if not thread_ids:
                return set()
            found = await self._threads.search_threads(
                ThreadFilter(ids=sorted(thread_ids), visible=visible),
                limit=len(thread_ids),
                offset=0,
                sort_by="thread_id",
                sort_order="asc",
            )
            return {thread["thread_id"] for thread in found}

        return visible_ids
