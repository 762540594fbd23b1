"""The JSON schemas of the graph behind an assistant: input, output, state, config and context."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from langchain_core.utils.pydantic import create_model
from pydantic import TypeAdapter

from src.services.graphs import Graph

logger = logging.getLogger(__name__)

# Keys the LangGraph API leaves out of an assistant's config schema: the server sets them.
EXCLUDED_CONFIG_SCHEMA = ("__pregel_checkpointer", "__pregel_store", "checkpoint_id", "checkpoint_ns", "thread_id")


def _attempt(graph: Any, what: str, compute: Callable[[], Any]) -> Any:
    """A schema, or None (logged) when the graph cannot describe it, as the LangGraph API does."""
    try:
        return compute()
    except Exception as exc:
        reason = " ".join(str(exc).split())
        logger.warning("cannot build the %s schema of graph %s: %s: %s", what, graph.name, type(exc).__name__, reason)
        return None


def _state_jsonschema(graph: Graph) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in graph.stream_channels_list:
        update_type = getattr(graph.channels[key], "UpdateType", Any)  # managed values have none
        try:
            create_model(key, __root__=(update_type, None)).model_json_schema()
            fields[key] = (update_type, None)
        except Exception:
            fields[key] = (Any, None)
    return create_model(graph.get_name("State"), **fields).model_json_schema()


def _configurable_jsonschema(graph: Graph) -> dict[str, Any]:
    """The `configurable` part of the config schema: the graph's context schema, less server-set keys."""
    if graph.context_schema is None:
        return {}
    schema: dict[str, Any] = TypeAdapter(graph.context_schema).json_schema()
    for key in EXCLUDED_CONFIG_SCHEMA:
        schema.get("properties", {}).pop(key, None)
    return schema


def graph_schemas(graph: Graph) -> dict[str, Any]:
    """input/output/state/config/context JSON schemas; each None when it cannot be built."""
    return {
        "input_schema": _attempt(graph, "input", graph.get_input_jsonschema),
        "output_schema": _attempt(graph, "output", graph.get_output_jsonschema),
        "state_schema": _attempt(graph, "state", lambda: _state_jsonschema(graph)),
        "config_schema": _attempt(graph, "config", lambda: _configurable_jsonschema(graph)),
        "context_schema": _attempt(graph, "context", graph.get_context_jsonschema),
    }
