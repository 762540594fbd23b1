"""Build the app around the loaded configuration and serve it (entered through `src.web.cli`)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from src.containers import Container
from src.langgraph_json import apply_project
from src.services.database import describe_url
from src.settings import LOCAL_HOSTS, ConfigError
from src.web.app import create_app
from src.web.logformat import configure_logging
from src.web.preflight import check_port_free, exit_on_config_error
from src.web.supervisor import SupervisorLink

logger = logging.getLogger("agent_server")


def serve(settings: dict[str, Any], started_at: float, supervisor: SupervisorLink | None = None) -> None:
    """Serve the loaded `settings` in this process until stopped; `supervisor` when it is one of
    several workers."""
    container = Container()
    try:
        configure_logging(settings["server"])
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
        if supervisor is None:  # the supervisor checked it for its workers, which share it
            check_port_free(settings["server"]["host"], settings["server"]["port"])
    except ConfigError as exc:
        exit_on_config_error(exc)
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
    app = create_app(container, started_at=started_at, on_ready=supervisor.ready if supervisor else None)
    if supervisor is not None:
        supervisor.watch_parent()
    app.start(host=settings["server"]["host"], port=settings["server"]["port"], _check_port=False)
