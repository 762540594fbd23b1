"""Checks before a server process starts, shared by a single server and the `--workers` parent.

Nothing here imports Robyn or the container: the parent of several workers uses it too.
"""

from __future__ import annotations

import errno
import socket
import sys
from typing import NoReturn

from src.settings import ConfigError, redact

CONFIG_ERROR_EXIT = 2
RUNTIME_ERROR_EXIT = 1


def exit_on_config_error(exc: ConfigError) -> NoReturn:
    """The one line a bad configuration gets, before logging starts; exit code 2."""
    print(f"agent-server: config error: {redact(str(exc))}", file=sys.stderr, flush=True)
    raise SystemExit(CONFIG_ERROR_EXIT) from None


def check_port_free(host: str, port: int) -> None:
    # Robyn would prompt on stdin for another port; say what is wrong and stop instead.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc.strerror}"
            raise ConfigError(f"port {host}:{port} {reason}; set PORT or --port to a free port") from None
