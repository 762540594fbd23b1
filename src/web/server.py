"""`agent-server` / `python -m src.web`: load the configuration, build the app, serve."""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys
import time
from collections.abc import Sequence

from src.containers import Container
from src.services.database import describe_url
from src.settings import ConfigError, load_settings
from src.web.app import create_app

logger = logging.getLogger("agent_server")
CONFIG_ERROR_EXIT = 2
RUNTIME_ERROR_EXIT = 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agent-server", description="Serve LangGraph graphs over HTTP.")
    parser.add_argument("--config", help="YAML configuration file (default: CONFIG_FILE, else the bundled config.yml)")
    parser.add_argument("--host", help="address to listen on (overrides HOST and server.host)")
    parser.add_argument("--port", help="port to listen on (overrides PORT and server.port)")
    return parser.parse_args(argv)


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


def main(argv: Sequence[str] | None = None) -> None:
    started_at = time.monotonic()
    args = parse_args(argv)
    container = Container()
    try:
        settings = load_settings(args.config, overrides={"server.host": args.host, "server.port": args.port})
        logging.basicConfig(
            level=settings["server"]["log_level"],
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        logging.getLogger("robyn").setLevel(logging.WARNING)  # its per-route lines drown ours
        container.config.from_dict(settings)
        # Import configured graphs and build the model now: a bad one is a config error.
        container.graph_targets()
        check_port_free(settings["server"]["host"], settings["server"]["port"])
    except ConfigError as exc:
        print(f"agent-server: config error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_ERROR_EXIT) from None
    url = settings["database"]["url"]
    logger.info("config file: %s", settings["config_file"])
    logger.info(
        "persistence backend: %s",
        f"postgres ({describe_url(url)})" if url else "memory (set DATABASE_URL for Postgres)",
    )
    app = create_app(container, started_at=started_at)
    app.start(host=settings["server"]["host"], port=settings["server"]["port"], _check_port=False)
