"""Webhooks: after a run ends, POST its record and final values to the URL the run named."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from src.services.errors import InvalidRequest
from src.services.serialization import dumps

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 10.0
# At shutdown, calls still in flight get this long: the server must stop within seconds.
DRAIN_TIMEOUT = 2.0
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class WebhookSender:
    """Validates webhook URLs when a run is created and calls them, in the background, when it ends.

    Loopback addresses are refused unless `allow_loopback`: a webhook must not be a way to
    make the server call itself or other services on its own host (as in the LangGraph API).
    """

    def __init__(self, client: httpx.AsyncClient, allow_loopback: bool) -> None:
        self._client = client
        self._allow_loopback = allow_loopback
        self._pending: set[asyncio.Task[None]] = set()

    def validate(self, url: Any) -> str:
        if not isinstance(url, str):
            raise InvalidRequest("webhook must be an http:// or https:// URL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest(f"webhook must be an http:// or https:// URL, got {url!r}")
        if not self._allow_loopback and _is_loopback(parts.hostname):
            raise InvalidRequest(
                f"webhook {url!r} points at this host; set runs.webhooks_allow_loopback "
                "(WEBHOOKS_ALLOW_LOOPBACK=true) to allow it"
            )
        return url

    def send(self, url: str, run: dict[str, Any], values: Any, error: str | None, started_at: datetime) -> None:
        payload = {
            **run,
            "run_started_at": started_at.isoformat(),
            "run_ended_at": datetime.now(UTC).isoformat(),
            "webhook_sent_at": datetime.now(UTC).isoformat(),
            "values": values,
            **({"error": error} if error else {}),
        }
        task = asyncio.create_task(self._post(url, payload))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, url: str, payload: dict[str, Any]) -> None:
        try:
            response = await self._client.post(
                url, content=dumps(payload), headers={"Content-Type": "application/json"}, timeout=WEBHOOK_TIMEOUT
            )
            response.raise_for_status()
        except Exception as exc:  # a receiver's failure must not touch the run
            logger.warning("webhook %s for run %s failed: %s", url, payload.get("run_id"), exc)

    async def drain(self) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=DRAIN_TIMEOUT)


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def init_webhooks(allow_loopback: bool) -> AsyncIterator[WebhookSender]:
    """Resource: one HTTP client for every webhook; pending calls finish before it closes."""
    async with httpx.AsyncClient(follow_redirects=False) as client:
        sender = WebhookSender(client, allow_loopback)
        try:
            yield sender
        finally:
            await sender.drain()
