"""langgraph.json, the LangGraph CLI's project file, next to (or instead of) config.yml.

`agent-server --config langgraph.json` reads a LangGraph project as `langgraph dev` and
`langgraph up` do: its graphs, `env` (a dotenv file or an object), `dependencies` (local
directories go on the import path), `http.cors`, `auth`, `store` (`ttl`, `index`) and
`checkpointer.ttl`. Fields the server does not use are named in one warning line each and
otherwise ignored; a field it uses with a bad value is a `ConfigError` (exit 2, one line),
as for config.yml. The server's own settings (database, pool, runs, model) stay in the YAML
file and the environment, and `env` feeds them as the environment does (the real
environment wins). Both files may be given: `--config langgraph.json --config config.yml`,
or `CONFIG_FILE=langgraph.json,config.yml`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import math
import os
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from packaging.requirements import InvalidRequirement, Requirement

from src.settings import DEFAULT_CONFIG_FILE, ConfigError, _cors, load_settings

# Top-level fields of the LangGraph CLI's langgraph.json that this server reads.
USED_FIELDS = frozenset({"graphs", "env", "dependencies", "http", "auth", "store", "checkpointer"})
# Read by editors (a JSON schema for completion), never by a server: accepted without a word.
QUIET_FIELDS = frozenset({"$schema"})
THREAD_TTL_STRATEGIES = ("delete", "keep_latest")
# Defaults of the LangGraph API's checkpointer.ttl: a sweep about every 5 minutes, of at most
# 1000 threads (its documented default).
THREAD_SWEEP_MINUTES = 5.0
THREAD_SWEEP_LIMIT = 1000
# How a dependency names a local directory rather than a package, as the CLI reads it.
LOCAL_PREFIXES = (".", "/", "~")
# Project files that mark a directory as a Python project (for its `src/` layout).
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")


def split_config_files(value: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    """The files `--config` (repeatable) or CONFIG_FILE (comma-separated) name."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, os.PathLike)) else list(value)
    paths = []
    for item in items:
        for part in str(item).split(",") if isinstance(item, str) else [str(item)]:
            if part.strip():
                paths.append(Path(part.strip()).expanduser().resolve())
    return paths


def classify(paths: Sequence[Path]) -> tuple[Path | None, Path | None]:
    """(the YAML file, the langgraph.json file): told apart by the `.json` suffix."""
    yaml_file: Path | None = None
    project_file: Path | None = None
    for path in paths:
        if path.suffix.lower() == ".json":
            if project_file is not None:
                raise ConfigError(f"two JSON config files given ({project_file}, {path}); expected one langgraph.json")
            project_file = path
        else:
            if yaml_file is not None:
                raise ConfigError(f"two YAML config files given ({yaml_file}, {path}); expected one config.yml")
            yaml_file = path
    return yaml_file, project_file


def load_configuration(
    config_files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The validated settings from the given files (else CONFIG_FILE, else the bundled config.yml).

    With a langgraph.json, its `env` is read as a lower layer of the environment, so the
    server's settings see it; the result keeps it under "env" (to be put into the process
    environment, see `apply_project`), the local dependency directories under
    "dependencies" and the warnings under "warnings".
    """
    env = os.environ if environ is None else environ
    yaml_file, project_file = classify(split_config_files(config_files or env.get("CONFIG_FILE") or None))
    if project_file is None:
        return load_settings(yaml_file or DEFAULT_CONFIG_FILE, environ=env, overrides=overrides)
    project = read_project(project_file)
    if "PROMETHEUS_MULTIPROC_DIR" in project["env"]:
        # prometheus-client has read the environment by now: only the real one can set it.
        del project["env"]["PROMETHEUS_MULTIPROC_DIR"]
        project["warnings"].append(
            f"{project_file.name}: env PROMETHEUS_MULTIPROC_DIR is ignored; set it in the process environment"
        )
    merged = {**project["env"], **env}
    return load_settings(yaml_file or DEFAULT_CONFIG_FILE, environ=merged, overrides=overrides, project=project)


def _where(path: Path) -> str:
    return f"config file {str(path)!r}"


def read_project(path: Path) -> dict[str, Any]:
    """A langgraph.json, checked: what load_settings needs of it (see its `project` argument)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{_where(path)} cannot be read: {exc.strerror}; pass an existing file with --config or CONFIG_FILE"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{_where(path)} is not valid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{_where(path)} is invalid: expected a JSON object at the top level")
    base = path.parent
    warnings: list[str] = []
    for field in sorted(set(data) - USED_FIELDS - QUIET_FIELDS):
        warnings.append(f"{path.name}: {field!r} is not used by agent-server; ignored")
    http = _object(data, "http", path)
    for field in sorted(set(http) - {"cors"}):
        warnings.append(f"{path.name}: 'http.{field}' is not used by agent-server; ignored")
    cors = http.get("cors")
    return {
        "file": str(path),
        "dir": str(base),
        "graphs": _graphs(data.get("graphs"), path, warnings),
        "env": _env(data.get("env"), path),
        "dependencies": _dependencies(data.get("dependencies"), path),
        "cors": None if cors is None else _cors(f"{path.name} http.cors", cors),
        "auth": _auth(data.get("auth"), path),
        "store": _store(_object(data, "store", path), path, warnings),
        "checkpointer": _checkpointer(_object(data, "checkpointer", path), path, warnings),
        "warnings": warnings,
    }


def _object(data: Mapping[str, Any], field: str, path: Path, prefix: str = "") -> dict[str, Any]:
    value = data.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path.name}: '{prefix}{field}' is invalid: expected an object, got {json.dumps(value)}")
    return value


def _graphs(value: Any, path: Path, warnings: list[str]) -> dict[str, str]:
    """Graph ids to 'file.py:attr' / 'module:attr'; the CLI's {"path": ..., "description": ...} form too."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path.name}: 'graphs' is invalid: expected an object of graph ids")
    graphs = {}
    for graph_id, spec in value.items():
        if isinstance(spec, dict):
            for field in sorted(set(spec) - {"path"}):
                warnings.append(f"{path.name}: 'graphs.{graph_id}.{field}' is not used by agent-server; ignored")
            spec = spec.get("path")
        if not graph_id or not isinstance(spec, str) or not spec.strip():
            raise ConfigError(
                f"{path.name}: 'graphs.{graph_id}' is invalid: expected './path/to/file.py:attr' or "
                "{'path': './path/to/file.py:attr'}"
            )
        graphs[graph_id] = spec.strip()
    return graphs


def _env(value: Any, path: Path) -> dict[str, str]:
    """`env`: an object of variables, or the path of a dotenv file (relative to langgraph.json)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        env = {}
        for name, text in value.items():
            if isinstance(text, bool) or not isinstance(text, (str, int, float)):
                raise ConfigError(f"{path.name}: 'env.{name}' is invalid: expected a string")
            env[str(name)] = str(text)
        return env
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path.name}: 'env' is invalid: expected an object or the path of a .env file")
    env_file = (path.parent / value.strip()).expanduser().resolve()
    try:
        text = env_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path.name}: 'env' file {str(env_file)!r} cannot be read: {exc.strerror}") from None
    # python-dotenv skips a line it cannot parse with a warning; here it is a config error.
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(
                f"{path.name}: 'env' file {str(env_file)!r} cannot be parsed at line {binding.original.line}"
            )
    return {name: text for name, text in dotenv_values(stream=io.StringIO(text)).items() if text is not None}


def _dependencies(value: Any, path: Path) -> list[str]:
    """The local directories to put on the import path; packages named must be installed."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ConfigError(f"{path.name}: 'dependencies' is invalid: expected a list of paths and package names")
    directories: list[str] = []
    for item in (entry.strip() for entry in value):
        if item.startswith(LOCAL_PREFIXES):
            directory = (path.parent / item).expanduser().resolve()
            if not directory.is_dir():
                raise ConfigError(
                    f"{path.name}: dependency {item!r} is not a directory ({str(directory)!r} does not exist)"
                )
            directories.append(str(directory))
            # A project with the src/ layout (pyproject.toml + src/pkg): pip would install src/pkg.
            if (directory / "src").is_dir() and any((directory / marker).is_file() for marker in PROJECT_MARKERS):
                directories.append(str(directory / "src"))
        else:
            _check_installed(item, path)
    return list(dict.fromkeys(directories))


def _check_installed(item: str, path: Path) -> None:
    """A package dependency must be installed already: this server installs nothing."""
    if "://" in item or item.startswith("git+"):
        raise ConfigError(
            f"{path.name}: dependency {item!r} is a URL; install it yourself (pip install {item!r}) and "
            "name the package instead"
        )
    try:
        requirement = Requirement(item)
    except InvalidRequirement as exc:
        raise ConfigError(f"{path.name}: dependency {item!r} is not a path or a package name: {exc}") from None
    try:
        importlib.metadata.distribution(requirement.name)
        return
    except importlib.metadata.PackageNotFoundError:
        pass
    # Not installed as a distribution of that name: a module of that name will do too.
    module = requirement.name.replace("-", "_")
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(f"{path.name}: dependency {item!r} does not import: install it (pip install {item!r})")


def _auth(value: Any, path: Path) -> dict[str, Any] | None:
    """`auth` is kept for the auth layer: `path` ('file.py:attr' relative to langgraph.json) resolved."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{path.name}: 'auth' is invalid: expected an object")
    auth = dict(value)
    target = auth.get("path")
    if target is not None:
        if not isinstance(target, str) or ":" not in target:
            raise ConfigError(f"{path.name}: 'auth.path' is invalid: expected './path/to/file.py:attr'")
        module, _, attr = target.rpartition(":")
        if module.endswith(".py") or "/" in module:
            module = str((path.parent / module).resolve())
        auth["path"] = f"{module}:{attr}"
    return auth


def _minutes(value: Any, name: str, path: Path, *, required: bool = False) -> float | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"{path.name}: '{name}' is invalid: expected a number of minutes > 0, got {json.dumps(value)}"
        )
    return float(value)


def _store(store: dict[str, Any], path: Path, warnings: list[str]) -> dict[str, Any]:
    for field in sorted(set(store) - {"ttl", "index"}):
        warnings.append(f"{path.name}: 'store.{field}' is not used by agent-server; ignored")
    return {"ttl": _store_ttl(store, path, warnings), "index": _store_index(store, path, warnings)}


def _store_ttl(store: dict[str, Any], path: Path, warnings: list[str]) -> dict[str, Any] | None:
    """store.ttl, LangGraph's TTLConfig: refresh_on_read, default_ttl and sweep_interval_minutes."""
    if store.get("ttl") is None:
        return None
    ttl = _object(store, "ttl", path, "store.")
    for field in sorted(set(ttl) - {"refresh_on_read", "default_ttl", "sweep_interval_minutes"}):
        warnings.append(f"{path.name}: 'store.ttl.{field}' is not used by agent-server; ignored")
    refresh = ttl.get("refresh_on_read", True)
    if not isinstance(refresh, bool):
        raise ConfigError(f"{path.name}: 'store.ttl.refresh_on_read' is invalid: expected true or false")
    return {
        "refresh_on_read": refresh,
        "default_ttl": _minutes(ttl.get("default_ttl"), "store.ttl.default_ttl", path),
        "sweep_interval_minutes": _minutes(ttl.get("sweep_interval_minutes"), "store.ttl.sweep_interval_minutes", path),
    }


def _store_index(store: dict[str, Any], path: Path, warnings: list[str]) -> dict[str, Any] | None:
    """store.index: dims, embed ('provider:model' or './file.py:function') and fields."""
    if store.get("index") is None:
        return None
    index = _object(store, "index", path, "store.")
    for field in sorted(set(index) - {"dims", "embed", "fields"}):
        warnings.append(f"{path.name}: 'store.index.{field}' is not used by agent-server; ignored")
    dims = index.get("dims")
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise ConfigError(
            f"{path.name}: 'store.index.dims' is invalid: expected an integer >= 1, got {json.dumps(dims)}"
        )
    embed = index.get("embed")
    if not isinstance(embed, str) or ":" not in embed:
        raise ConfigError(
            f"{path.name}: 'store.index.embed' is invalid: expected 'provider:model' (e.g. "
            f"'openai:text-embedding-3-small') or './file.py:function', got {json.dumps(embed)}"
        )
    module, _, attr = embed.rpartition(":")
    if module.endswith(".py") or "/" in module:  # a file, relative to langgraph.json
        embed = f"{(path.parent / module).resolve()}:{attr}"
    fields = index.get("fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields)):
        raise ConfigError(f"{path.name}: 'store.index.fields' is invalid: expected a list of field paths")
    return {"dims": dims, "embed": embed, "fields": fields}


def _checkpointer(checkpointer: dict[str, Any], path: Path, warnings: list[str]) -> dict[str, Any]:
    backend = checkpointer.get("backend")
    for field in sorted(set(checkpointer) - {"ttl", "backend"}):
        warnings.append(f"{path.name}: 'checkpointer.{field}' is not used by agent-server; ignored")
    if backend not in (None, "default"):
        warnings.append(f"{path.name}: 'checkpointer.backend' {backend!r} is not used by agent-server; ignored")
    return {"ttl": _thread_ttl(checkpointer, path, warnings)}


def _thread_ttl(checkpointer: dict[str, Any], path: Path, warnings: list[str]) -> dict[str, Any] | None:
    """checkpointer.ttl: strategy, default_ttl (minutes), sweep_interval_minutes and sweep_limit."""
    if checkpointer.get("ttl") is None:
        return None
    ttl = _object(checkpointer, "ttl", path, "checkpointer.")
    for field in sorted(set(ttl) - {"strategy", "default_ttl", "sweep_interval_minutes", "sweep_limit"}):
        warnings.append(f"{path.name}: 'checkpointer.ttl.{field}' is not used by agent-server; ignored")
    strategy = ttl.get("strategy", "delete")
    if strategy not in THREAD_TTL_STRATEGIES:
        raise ConfigError(
            f"{path.name}: 'checkpointer.ttl.strategy' is invalid: expected one of "
            f"{', '.join(THREAD_TTL_STRATEGIES)}, got {json.dumps(strategy)}"
        )
    limit = ttl.get("sweep_limit", THREAD_SWEEP_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(
            f"{path.name}: 'checkpointer.ttl.sweep_limit' is invalid: expected an integer >= 1, got {json.dumps(limit)}"
        )
    interval = _minutes(ttl.get("sweep_interval_minutes"), "checkpointer.ttl.sweep_interval_minutes", path)
    return {
        "strategy": strategy,
        "default_ttl": _minutes(ttl.get("default_ttl"), "checkpointer.ttl.default_ttl", path),
        "sweep_interval_minutes": interval or THREAD_SWEEP_MINUTES,
        "sweep_limit": limit,
    }


def apply_project(settings: Mapping[str, Any], environ: MutableMapping[str, str], import_path: list[str]) -> None:
    """Put langgraph.json's `env` into the process environment (variables already set keep their
    value) and its local dependencies on the import path, before any graph is imported."""
    for name, value in settings["env"].items():
        environ.setdefault(name, value)
    for directory in settings["dependencies"]:
        if directory not in import_path:
            # After the standard library and installed packages, as `langgraph dev` does: a
            # project module named like a stdlib one must not shadow it.
            import_path.append(directory)
