"""A TCP proxy for fault injection: put it between a server and Postgres, then break the link.

`cut()` resets every open connection (both sides see the connection reset, as when a
network path or a proxy dies), `refuse()` closes the listening socket so that new
connections are refused (as when Postgres is down), `outage()` does both, and `restore()`
listens on the same port again. Threads, not asyncio, so that a test can drive it from
plain code while the server under test runs in another process.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CHUNK = 65536
# SO_LINGER on, zero seconds: close() sends a RST instead of a FIN.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)
UPSTREAM_CONNECT_TIMEOUT = 5.0


class FaultProxy:
    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # The same port again after refuse(), although closed connections linger in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name=f"faultproxy:{self.port}", daemon=True).start()
        return self

    def cut(self) -> int:
        """Reset every open connection; return how many there were."""
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            for sock in pair:
                _reset(sock)
        return len(pairs)

    def refuse(self) -> None:
        """Stop listening: new connections are refused until restore()."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()

    def outage(self) -> None:
        """The database is gone: new connections refused, open ones reset."""
        self.refuse()
        self.cut()

    def restore(self) -> None:
        if self._listener is None:
            self.start()

    def stop(self) -> None:
        self.outage()

    @contextmanager
    def down(self) -> Iterator[None]:
        self.outage()
        try:
            yield
        finally:
            self.restore()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # refuse() closed the listener
            try:
                upstream = socket.create_connection(self.target, timeout=UPSTREAM_CONNECT_TIMEOUT)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            pair = (client, upstream)
            with self._lock:
                if self._listener is not listener:  # refused meanwhile: this one is cut too
                    _reset(client)
                    _reset(upstream)
                    continue
                self._pairs.add(pair)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, source, sink), daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket], source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        # One side ended (or was cut): end the other too, as the network would.
        with self._lock:
            known = pair in self._pairs
            self._pairs.discard(pair)
        if known:
            for sock in pair:
                _close(sock)


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
        # SHUT_RD wakes a thread blocked in recv() on it without sending anything.
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
