"""Server-sent events for run streams, and noticing a client that went away.

Robyn pulls the next chunk of a streaming response only after it has sent the last
one. When the client disconnects, Robyn either drops the stream (the generator is
closed before it finished) or stops pulling and leaves the generator suspended for
good. So a stream closed early, or parked after a yield for longer than
`DISCONNECT_SECONDS`, has lost its client. The run's events keep flowing (and the
stream yields a heartbeat comment when quiet), so a live client always pulls again
within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from robyn import Headers
from robyn.responses import StreamingResponse

from src.services.runs.streams import StreamEvent
from src.services.serialization import dumps

DISCONNECT_SECONDS = 0.5
# A stream parked this long is closed, so that nothing it holds outlives its client.
ABANDON_SECONDS = 30.0
HEARTBEAT = ": heartbeat\n\n"
STREAM_MEDIA_TYPE = "application/octet-stream"  # see sse_response


def format_event(event_id: int | str, event: str, data: Any) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {dumps(data)}\n\n"


def sse_body(
    events: AsyncIterator[StreamEvent | None],
    on_disconnect: Callable[[], None],
    abandon_after: float = ABANDON_SECONDS,
) -> AsyncGenerator[str, None]:
    """Format run events as SSE, with heartbeats; call `on_disconnect` if the client leaves.

    A stream Robyn leaves suspended for good would keep its run's events (and everything
    they reference) alive for as long as the process runs: parked for `abandon_after`
    seconds, it is closed from here, which releases them."""
    holder: list[AsyncGenerator[str, None]] = []
    body = _sse_body(events, on_disconnect, holder, abandon_after)
    holder.append(body)
    return body


async def _sse_body(
    events: AsyncIterator[StreamEvent | None],
    on_disconnect: Callable[[], None],
    holder: list[AsyncGenerator[str, None]],
    abandon_after: float,
) -> AsyncGenerator[str, None]:
    parked_since: list[float] = []
    told: list[bool] = []
    closing: list[asyncio.Future[None]] = []

    def tell() -> None:
        if not told:
            told.append(True)
            on_disconnect()

    async def watch() -> None:
        while True:
            await asyncio.sleep(DISCONNECT_SECONDS / 4)
            parked = time.monotonic() - parked_since[0] if parked_since else 0.0
            if parked > DISCONNECT_SECONDS:
                tell()
            if parked > abandon_after:
                # Another task closes the generator: it runs the finally below, which cancels this one.
                closing.append(asyncio.get_running_loop().create_task(holder[0].aclose()))
                return

    watchdog = asyncio.create_task(watch())
    finished = False
    try:
        async for item in events:
            chunk = HEARTBEAT if item is None else format_event(*item)
            parked_since.append(time.monotonic())
            yield chunk
            parked_since.clear()
        finished = True
    finally:
        # No await here: when Robyn drops an unfinished stream this runs from the
        # generator's finaliser. A stream that did not finish lost its client.
        watchdog.cancel()
        if not finished:
            tell()
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(RuntimeError):  # no loop left: the process is stopping
                    closing.append(asyncio.ensure_future(aclose()))


def sse_response(body: AsyncGenerator[str, None], headers: dict[str, str] | None = None) -> StreamingResponse:
    # Robyn's Rust layer adds Cache-Control (no-cache, no-store, must-revalidate), Pragma and
    # X-Accel-Buffering to every stream, and a second `Cache-Control: no-cache` when the
    # media type is text/event-stream: naming the type in the headers instead leaves one.
    response_headers = Headers({"Content-Type": "text/event-stream", **(headers or {})})
    return StreamingResponse(body, status_code=200, headers=response_headers, media_type=STREAM_MEDIA_TYPE)
