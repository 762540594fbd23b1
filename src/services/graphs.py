"""Loading the configured graphs and binding them to the server's checkpointer and store."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore

from src.services.persistence import Checkpointer
from src.settings import ConfigError

# LangGraph's graphs are generic in their state, context, input and output: the server serves any.
Graph = Pregel[Any, Any, Any, Any]
GraphBuilder = StateGraph[Any, Any, Any, Any]

BUILTIN_AGENT_ID = "agent"
SPEC_HINT = "expected './path/to/file.py:attr' (relative to the config file) or 'package.module:attr'"


class GraphNotFound(Exception):
    def __init__(self, graph_id: str, known: list[str]) -> None:
        super().__init__(f"Graph {graph_id!r} not found; this server serves: {', '.join(known) or 'none'}")
        self.graph_id = graph_id


class GraphFactoryError(Exception):
    """A graph factory raised or returned something that is not a graph."""


def _import_file(path: Path, graph_id: str) -> Any:
    module_name = f"agent_server_graphs.{graph_id}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def package_module(path: Path, import_path: list[str]) -> str | None:
    """The dotted name of `path` when it lives in a package on the import path, else None.

    Such a file is imported by that name, as the rest of its package imports it: its relative
    imports (`from .nodes import ...`) work, and it is not loaded a second time under another name.
    """
    for entry in import_path:
        try:
            root = Path(entry or ".").resolve()
        except OSError:
            continue
        if root not in path.parents:
            continue
        parts = path.relative_to(root).with_suffix("").parts
        packages = all((root.joinpath(*parts[:depth]) / "__init__.py").is_file() for depth in range(1, len(parts)))
        if len(parts) > 1 and packages and all(part.isidentifier() for part in parts):
            return ".".join(parts)
    return None


def load_graph_target(graph_id: str, spec: str, base_dir: str) -> Any:
    """Import the object a `graphs:` entry points at; any failure is a ConfigError."""
    where = f"graphs.{graph_id}={spec!r}"
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise ConfigError(f"{where} is invalid: {SPEC_HINT}")
    try:
        if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
            path = (Path(base_dir) / module_part).resolve()
            if not path.is_file():
                raise ConfigError(f"{where} is invalid: file {str(path)!r} does not exist; {SPEC_HINT}")
            name = package_module(path, sys.path)
            module = importlib.import_module(name) if name else _import_file(path, graph_id)
        else:
            module = importlib.import_module(module_part)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{where} does not import: {type(exc).__name__}: {exc}".replace("\n", " ")) from None
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{where} is invalid: module has no attribute {attr!r}; {SPEC_HINT}") from None
    if not isinstance(target, (Pregel, StateGraph)) and not callable(target):
        raise ConfigError(
            f"{where} is invalid: {attr!r} is a {type(target).__name__}; expected a compiled graph, "
            "a StateGraph, or a function returning one"
        )
    return target


def load_graph_targets(specs: Mapping[str, str], base_dir: str, builtin_agent: GraphBuilder) -> dict[str, Any]:
    """Every graph id to its loaded target; the built-in agent unless `graphs` names `agent`."""
    targets: dict[str, Any] = {BUILTIN_AGENT_ID: builtin_agent}
    for graph_id, spec in specs.items():
        targets[graph_id] = load_graph_target(graph_id, spec, base_dir)
    return targets


class GraphRegistry:
    """The graphs this server serves, each bound to the injected checkpointer and store."""

    def __init__(self, targets: Mapping[str, Any], checkpointer: Checkpointer, store: BaseStore) -> None:
        self._checkpointer = checkpointer
        self._store = store
        self._factories: dict[str, Any] = {}
        self._graphs: dict[str, Graph] = {}
        for graph_id, target in targets.items():
            if isinstance(target, (Pregel, StateGraph)):
                self._graphs[graph_id] = self._bind(target)
            else:
                self._factories[graph_id] = target

    @property
    def ids(self) -> list[str]:
        return sorted({*self._graphs, *self._factories})

    def __contains__(self, graph_id: object) -> bool:
        return graph_id in self._graphs or graph_id in self._factories

    def _bind(self, graph: Graph | GraphBuilder) -> Graph:
        if isinstance(graph, StateGraph):
            return graph.compile(checkpointer=self._checkpointer, store=self._store)
        return graph.copy(update={"checkpointer": self._checkpointer, "store": self._store})

    async def get(self, graph_id: str, config: RunnableConfig | None = None) -> Graph:
        """The graph for `graph_id`; factories are called for every run, as in langgraph.json."""
        graph = self._graphs.get(graph_id)
        if graph is not None:
            return graph
        factory = self._factories.get(graph_id)
        if factory is None:
            raise GraphNotFound(graph_id, self.ids)
        try:
            takes_config = bool(inspect.signature(factory).parameters)
            made = factory(config or {}) if takes_config else factory()
            if inspect.isawaitable(made):
                made = await made
        except Exception as exc:
            raise GraphFactoryError(f"graph factory {graph_id!r} failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(made, (Pregel, StateGraph)):
            raise GraphFactoryError(
                f"graph factory {graph_id!r} returned a {type(made).__name__}; "
                "expected a compiled graph or a StateGraph"
            )
        return self._bind(made)
