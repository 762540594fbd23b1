"""A `config` as runs and assistants accept it: the LangGraph API's Config schema, checked.

LangGraph reads these fields while it runs a graph, so a wrong type would fail inside the
run instead of answering the client; and keys of `configurable` that start with `__` are
LangGraph's own (its checkpointer, store, stream writers): a client must not set them.
"""

from __future__ import annotations

from typing import Any

from src.services.errors import InvalidRequest
from src.services.validation import integer, json_type, optional_object

INTERNAL_PREFIX = "__"


def parse_config(body: dict[str, Any], field: str = "config") -> dict[str, Any] | None:
    """The `config` object of a body, or None; 422 naming the field that is wrong."""
    config = optional_object(body, field)
    if config is None:
        return None
    for key in config:
        if key.startswith(INTERNAL_PREFIX) or key == "callbacks":
            raise InvalidRequest(f"{field}.{key} cannot be set by a client")
    tags = config.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags)):
        raise InvalidRequest(f"{field}.tags must be a list of strings")
    if config.get("recursion_limit") is not None:
        config = {**config, "recursion_limit": integer(config, "recursion_limit", 0, 1)}
    for key in ("configurable", "metadata"):
        value = config.get(key)
        if value is not None and not isinstance(value, dict):
            raise InvalidRequest(f"{field}.{key} must be an object, got {json_type(value)}")
    for key in config.get("configurable") or {}:
        if key.startswith(INTERNAL_PREFIX):
            raise InvalidRequest(f"{field}.configurable.{key} is reserved for the server")
    return config
