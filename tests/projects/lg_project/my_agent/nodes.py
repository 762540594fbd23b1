"""A sibling module of graph.py, imported by its package name."""

import os
from typing import Any

from .prompts import SUFFIX


def greet(state: dict[str, Any]) -> dict[str, Any]:
    # Read at run time: GREETING comes from the project's .env file.
    return {"greeting": f"{os.environ['GREETING']}, {state['name']}{SUFFIX}"}
