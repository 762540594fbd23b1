"""Webhooks: after a run ends, POST its record and final values to the URL the run named."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from src.services.egress import AddressRefused, EgressGuard, literal_address
from src.services.errors import InvalidRequest
from src.services.serialization import dumps

logger = logging.getLogger(__name__)

# The whole call, from resolving the host to the response's status line.
WEBHOOK_TIMEOUT = 10.0
# At shutdown, calls still in flight get this long: the server must stop within seconds.
DRAIN_TIMEOUT = 2.0
DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOW_HINT = "add it to runs.webhooks_allowed_hosts (WEBHOOKS_ALLOWED_HOSTS) to allow it"


class WebhookSender:
    """Validates webhook URLs when a run is created and calls them, in the background, when it ends.

    A webhook may not reach this host or an internal network unless `guard`'s allow-list says
    so (see `src.services.egress`): at creation an IP literal or a loopback name is refused
    with 422; right before sending, the host is resolved once, every address is checked and
    the request goes to the checked address. Redirects are not followed.
    """

    def __init__(self, client: httpx.AsyncClient, guard: EgressGuard, timeout: float = WEBHOOK_TIMEOUT) -> None:
        self._client = client
        self._guard = guard
        self._timeout = timeout
        self._pending: set[asyncio.Task[None]] = set()

    def validate(self, url: Any) -> str:
        if not isinstance(url, str):
            raise InvalidRequest("webhook must be an http:// or https:// URL")
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise InvalidRequest(f"webhook {url!r} is not a valid URL: {exc}") from None
        if target.scheme not in DEFAULT_PORTS or not target.host:
            raise InvalidRequest(f"webhook must be an http:// or https:// URL, got {url!r}")
        if target.port is not None and not 0 < target.port < 65536:
            raise InvalidRequest(f"webhook {url!r} is not a valid URL: port {target.port} is not 1-65535")
        try:
            self._guard.check_host(_host(target))
        except AddressRefused as exc:
            where = "this host" if exc.this_host else "an internal address"
            raise InvalidRequest(f"webhook {url!r} points at {where} ({exc}); {ALLOW_HINT}") from None
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
        # A receiver's failure must not touch the run: every outcome ends here as one log line,
        # naming the URL without credentials or query (either may carry a secret).
        target = httpx.URL(url)
        where = f"{target.scheme}://{target.netloc.decode('ascii')}{target.path}"
        run_id = payload.get("run_id")
        try:
            async with asyncio.timeout(self._timeout):
                await self._deliver(target, payload)
        except AddressRefused as exc:
            logger.warning("webhook %s for run %s refused: %s; %s", where, run_id, exc, ALLOW_HINT)
        except TimeoutError:
            logger.warning("webhook %s for run %s failed: no answer within %g s", where, run_id, self._timeout)
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            redirect = ", a redirect (not followed)" if exc.response.is_redirect else ""
            logger.warning("webhook %s for run %s failed: the receiver answered %d%s", where, run_id, status, redirect)
        except Exception as exc:
            logger.warning("webhook %s for run %s failed: %s", where, run_id, _reason(exc))

    async def _deliver(self, target: httpx.URL, payload: dict[str, Any]) -> None:
        host = _host(target)
        address = await self._guard.connect_address(host, target.port or DEFAULT_PORTS[target.scheme])
        # The request goes to the address just checked, not to the name (a second lookup could
        # answer differently); the receiver still sees its own name in Host and, over TLS, in
        # SNI, and its certificate is verified against that name.
        extensions = {"sni_hostname": host} if target.scheme == "https" and literal_address(host) is None else {}
        headers = {"Host": target.netloc.decode("ascii"), "Content-Type": "application/json"}
        request = self._client.build_request(
            "POST", target.copy_with(host=str(address)), content=dumps(payload), headers=headers, extensions=extensions
        )
        # Streamed and never read: a receiver cannot make the server buffer a large answer.
        response = await self._client.send(request, stream=True)
        try:
            response.raise_for_status()
        finally:
            await response.aclose()

    async def drain(self) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=DRAIN_TIMEOUT)


def _host(target: httpx.URL) -> str:
    # IDNA-encoded, as the resolver and the Host header need it.
    return target.raw_host.decode("ascii")


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def create_webhook_client(timeout: float = WEBHOOK_TIMEOUT) -> httpx.AsyncClient:
    """The HTTP client for webhooks: no redirects, no kept-alive connections.

    A redirect would lead to an unchecked address. A kept-alive connection is pooled by the
    checked IP, so a later webhook for another name on the same IP would ride a TLS session
    verified for the first name.
    """
    return httpx.AsyncClient(follow_redirects=False, timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0))


async def init_webhooks(guard: EgressGuard) -> AsyncIterator[WebhookSender]:
    """Resource: one HTTP client for every webhook; pending calls finish before it closes."""
    async with create_webhook_client() as client:
        sender = WebhookSender(client, guard)
        try:
            yield sender
        finally:
            await sender.drain()
