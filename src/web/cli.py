"""`agent-server` and `python -m src.web`: parse the command line, then serve.

Robyn parses `sys.argv` when it is imported (a `Config()` default argument) and would
answer `--help` with its own flags, so this module reads the command line and clears it
before the server module, and with it Robyn, is imported.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence


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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    started_at = time.monotonic()
    args = parse_args(argv)
    sys.argv = sys.argv[:1]  # leave Robyn nothing to parse
    from src.web.server import serve  # noqa: PLC0415 - must come after the sys.argv reset above

    serve(args.config, args.host, args.port, started_at)
