"""Load the configuration, build the app and serve it (entered through `src.web.cli`)."""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys

from src.containers import Container
from src.langgraph_json import apply_project, load_configuration
from src.services.database import describe_url
from src.settings import LOCAL_HOSTS, ConfigError, redact
from src.web.app import create_app
from src.web.logformat import log_formatter

logger = logging.getLogger("agent_server")
CONFIG_ERROR_EXIT = 2
RUNTIME_ERROR_EXIT = 1


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


def serve(config_files: list[str] | None, host: str | None, port: str | None, started_at: float) -> None:
    container = Container()
    try:
        settings = load_configuration(config_files, overrides={"server.host": host, "server.port": port})
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(log_formatter(settings["server"]["log_format"]))
        logging.basicConfig(level=settings["server"]["log_level"], handlers=[handler])
        logging.getLogger("robyn").setLevel(logging.WARNING)  # its per-route lines drown ours
        for warning in settings["warnings"]:
            logger.warning("%s", warning)
        # Graphs read langgraph.json's env and import its local dependencies: both before they load.
        apply_project(settings, os.environ, sys.path)
        container.config.from_dict(settings)
        # Import configured graphs, build the model and load the store's embeddings now: a bad
        # one is a config error.
        container.graph_targets()
        container.store_index()
        container.auth_module()  # the auth module too (auth.path, key files)
        check_port_free(settings["server"]["host"], settings["server"]["port"])
    except ConfigError as exc:
        print(f"agent-server: config error: {redact(str(exc))}", file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_ERROR_EXIT) from None
    url = settings["database"]["url"]
    if settings["auth"]["mode"] == "off":
        exposed = settings["server"]["host"] not in LOCAL_HOSTS
        logger.log(
            logging.WARNING if exposed else logging.INFO,
            "auth is off: every client that reaches this port can read and change every thread, run and "
            "store item; configure auth (README, Auth) before exposing the server",
        )
    else:
        logger.info("auth: %s", settings["auth"]["path"] or "the ready-made module (API keys / JWT)")
    logger.info("config file: %s", settings["config_file"])
    if settings["project_file"]:
        logger.info("project file: %s", settings["project_file"])
    logger.info(
        "persistence backend: %s",
        f"postgres ({describe_url(url)})" if url else "memory (set DATABASE_URL for Postgres)",
    )
    app = create_app(container, started_at=started_at)
    app.start(host=settings["server"]["host"], port=settings["server"]["port"], _check_port=False)
