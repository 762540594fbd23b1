"""`agent-server` and `python -m src.web`: parse the command line, then serve.

Robyn parses `sys.argv` when it is imported (a `Config()` default argument) and would
answer `--help` with its own flags, so this module reads the command line and clears it
before the server module, and with it Robyn, is imported. With `server.workers` above 1
this process imports neither: it supervises that many worker processes (src/web/supervisor.py),
each started with this same command line plus `--worker-of`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from src.langgraph_json import load_configuration
from src.settings import ConfigError
from src.web.logformat import configure_logging
from src.web.metrics_dir import shared_metrics_dir
from src.web.preflight import check_port_free, exit_on_config_error
from src.web.supervisor import SupervisorLink, supervise


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agent-server", description="Serve LangGraph graphs over HTTP.")
    parser.add_argument(
        "--config",
        action="append",
        help="config.yml and/or a LangGraph project's langgraph.json; may be given twice "
        "(default: CONFIG_FILE, comma-separated, else the bundled config.yml)",
    )
    parser.add_argument("--host", help="address to listen on (overrides HOST and server.host)")
    parser.add_argument("--port", help="port to listen on (overrides PORT and server.port)")
    parser.add_argument(
        "--workers",
        help="server processes sharing the port (overrides WORKERS and server.workers; above 1 needs Postgres)",
    )
    # Set by the supervising process on the workers it starts; not for people.
    parser.add_argument("--worker-of", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    started_at = time.monotonic()
    args = parse_args(argv)
    sys.argv = sys.argv[:1]  # leave Robyn nothing to parse
    overrides = {"server.host": args.host, "server.port": args.port, "server.workers": args.workers}
    try:
        settings = load_configuration(args.config, overrides=overrides)
        supervising = settings["server"]["workers"] > 1 and args.worker_of is None
        if supervising:
            check_port_free(settings["server"]["host"], settings["server"]["port"])
    except ConfigError as exc:
        exit_on_config_error(exc)
    if supervising:
        configure_logging(settings["server"])
        with shared_metrics_dir(os.environ):
            raise SystemExit(supervise(settings, args.config))
    link = None
    if args.worker_of is not None and args.ready_fd is not None:
        link = SupervisorLink(args.worker_of, args.ready_fd)
    from src.web.server import serve  # noqa: PLC0415 - must come after the sys.argv reset above

    serve(settings, started_at, link)
