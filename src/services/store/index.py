"""store.index from langgraph.json: the embeddings semantic search in the store uses.

`embed` is 'provider:model' for LangChain's `init_embeddings` (the provider's package and
its API key must be there), or './file.py:function' (relative to langgraph.json) or
'package.module:function' naming a function that embeds a list of texts (sync or async),
or a LangChain `Embeddings` object. Anything that cannot be loaded is a ConfigError, raised
at start-up before the server listens.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from langchain.embeddings import init_embeddings
from langchain_core.embeddings import Embeddings
from langgraph.store.base import IndexConfig
from langgraph.store.base.embed import ensure_embeddings

from src.settings import ConfigError

EMBED_HINT = "expected 'provider:model' (e.g. 'openai:text-embedding-3-small') or './file.py:function'"


def _import(module_part: str, base_dir: str) -> Any:
    if module_part.endswith(".py") or "/" in module_part:
        path = (Path(base_dir) / module_part).resolve()
        if not path.is_file():
            raise ConfigError(f"store.index.embed: file {str(path)!r} does not exist; {EMBED_HINT}")
        spec = importlib.util.spec_from_file_location("agent_server_embeddings", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"store.index.embed: {str(path)!r} cannot be loaded as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(module_part)


def load_embeddings(embed: str, base_dir: str) -> Embeddings:
    """The Embeddings `embed` names (see the module docstring)."""
    module_part, _, attr = embed.rpartition(":")
    try:
        if ".py:" in embed or ("." in module_part and "/" not in module_part and not module_part.endswith(".py")):
            target = getattr(_import(module_part, base_dir), attr, None)
            if target is None:
                raise ConfigError(f"store.index.embed={embed!r}: the module has no attribute {attr!r}; {EMBED_HINT}")
            if not isinstance(target, Embeddings) and not callable(target):
                raise ConfigError(f"store.index.embed={embed!r} is a {type(target).__name__}, not a function")
            return ensure_embeddings(target)
        return init_embeddings(embed)
    except ConfigError:
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise ConfigError(f"store.index.embed={embed!r} cannot be loaded: {reason}") from None


def load_store_index(spec: Mapping[str, Any] | None, base_dir: str) -> IndexConfig | None:
    """The LangGraph IndexConfig for store.index, its embeddings loaded; None without one."""
    if spec is None:
        return None
    index: dict[str, Any] = {"dims": spec["dims"], "embed": load_embeddings(spec["embed"], base_dir)}
    if spec.get("fields") is not None:
        index["fields"] = list(spec["fields"])
    return cast(IndexConfig, index)
