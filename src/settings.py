"""Configuration: defaults from a YAML file, overridden by environment variables.

Every value is checked here, before anything starts, so that a bad setting stops the
server with one line naming the setting, the bad value and what is expected.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from src.services.auth.settings import AuthConfigError, parse_api_keys, parse_jwt_secret, resolve_auth
from src.services.egress import LOOPBACK_NETWORKS, parse_allowed_host

DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent.parent / "config.yml"
LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "[::1]"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
URL_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# The password of a URL's user info: up to the last @ before the path (a password may hold ? or #).
URL_PASSWORD = re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s:/?#@]*:)[^\s/]*(?=@)", re.IGNORECASE)
# A value redacted already, inside quotes (as in "DATABASE_URL='...password=***'"): redacting
# the text again must leave the closing quote alone.
REDACTED = r"\*\*\*(?=['\"])"
# libpq's secret parameters in a URL's query string. A value holds no blank, so a colon and a
# blank after it are the message going on ("cannot connect to <url>: <reason>").
QUERY_PASSWORD = re.compile(rf"(?P<keep>[?&](?:ssl)?password=)(?:{REDACTED}|(?:[^&#\s:]|:(?!\s))*)", re.IGNORECASE)
# ... and in key=value form: a value is quoted ('...' with \' escapes, maybe unterminated in a
# broken string) or runs to the next unescaped blank; blanks around = are allowed.
KEY_VALUE_PASSWORD = re.compile(
    rf"(?P<keep>(?<![\w?&])(?:ssl)?password\s*=\s*)"
    rf"(?:{REDACTED}|'(?:[^'\\]|\\.)*(?:'|\Z)|(?:\\.|[^\s\\:]|:(?!\s))*)",
    re.IGNORECASE,
)
# What libpq quotes in its messages about a string it cannot parse may be part of a password.
QUOTED_FRAGMENT = re.compile(r'"[^"]*"')


class ConfigError(Exception):
    """A setting has a bad value; the message is the one line shown to the user."""


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    env: str
    parse: Callable[[str, Any], Any]

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"


def redact(text: str) -> str:
    """`text` with every connection-string secret in it replaced by ***, for logs and error messages.

    Covers a URL's password (scheme://user:***@host), password and sslpassword query
    parameters (?password=***) and libpq key=value passwords, quoted or not
    (password=*** for password='two words'). Every message that may hold a connection
    string goes through here.
    """
    text = URL_PASSWORD.sub(r"\g<keep>***", text)
    text = QUERY_PASSWORD.sub(r"\g<keep>***", text)
    return KEY_VALUE_PASSWORD.sub(r"\g<keep>***", text)


def _describe(name: str, value: Any) -> str:
    shown = redact(value) if isinstance(value, str) else value
    return f"{name}={shown!r}"


def _integer(minimum: int) -> Callable[[str, Any], int]:
    def parse(name: str, value: Any) -> int:
        try:
            number = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or number < minimum:
            raise ConfigError(f"{_describe(name, value)} is invalid: expected an integer >= {minimum}")
        return number

    return parse


def _seconds(allow_zero: bool) -> Callable[[str, Any], float]:
    def parse(name: str, value: Any) -> float:
        try:
            number = float(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not (number >= 0 if allow_zero else number > 0) or number == float("inf"):
            bound = ">= 0" if allow_zero else "> 0"
            raise ConfigError(f"{_describe(name, value)} is invalid: expected a number of seconds {bound}")
        return number

    return parse


def _optional_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _text(name: str, value: Any) -> str:
    text = _optional_text(name, value)
    if text is None:
        raise ConfigError(f"{_describe(name, value)} is invalid: expected a non-empty string")
    return text


def _log_level(name: str, value: Any) -> str:
    level = str(value).strip().upper()
    if level == "WARN":
        level = "WARNING"
    if level not in LOG_LEVELS:
        raise ConfigError(f"{_describe(name, value)} is invalid: expected one of {', '.join(LOG_LEVELS)}")
    return level


def _log_format(name: str, value: Any) -> str:
    text = str(value).strip().lower()
    if text not in LOG_FORMATS:
        raise ConfigError(f"{_describe(name, value)} is invalid: expected one of {', '.join(LOG_FORMATS)}")
    return text


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", "", "none"):
        return False
    raise ConfigError(f"{_describe(name, value)} is invalid: expected true or false")


def _allowed_hosts(name: str, value: Any) -> tuple[str, ...]:
    """Comma-separated (or, in YAML, a list of) host names, IP addresses and CIDR networks."""
    if value is None:
        return ()
    entries = value if isinstance(value, list) else str(value).split(",")
    allowed = []
    for entry in entries:
        if not str(entry).strip():
            continue
        normal = parse_allowed_host(str(entry))
        if normal is None:
            raise ConfigError(
                f"{_describe(name, value)} is invalid: {str(entry).strip()!r} is not a host name, IP address "
                "or CIDR network; expected a comma-separated list such as 'hooks.internal,10.0.0.0/8'"
            )
        allowed.append(normal)
    return tuple(dict.fromkeys(allowed))


def _port(name: str, value: Any) -> int:
    port = _integer(0)(name, value)
    if port > 65535:
        raise ConfigError(f"{_describe(name, value)} is invalid: expected a TCP port 0-65535")
    return port


def _model_name(name: str, value: Any) -> str:
    text = _text(name, value)
    provider, _, model = text.partition(":")
    if not provider or not model:
        raise ConfigError(
            f"{_describe(name, value)} is invalid: expected 'provider:model', "
            "e.g. 'offline:deterministic' or 'openai:gpt-4o-mini'"
        )
    return text


def _mask_fragment(match: re.Match[str]) -> str:
    return match.group() if match.group() == '"="' else '"..."'


def normalise_database_url(name: str, value: Any) -> str | None:
    """Check a Postgres connection string; add sslmode=disable for a local server that names no sslmode.

    Either a postgresql:// (or postgres://) URL or libpq key=value pairs, parsed by libpq itself
    so that a string it would refuse stops the server here, as a config error. Local servers
    have no TLS, and libpq's default (prefer) costs a round trip per connection; a remote
    server keeps whatever the string says.
    """
    dsn = _optional_text(name, value)
    if dsn is None:
        return None
    scheme = URL_SCHEME.match(dsn)
    if scheme and scheme.group().lower() not in ("postgresql://", "postgres://"):
        raise ConfigError(
            f"{_describe(name, dsn)} is invalid: expected a URL starting with postgresql:// or postgres://"
        )
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        # libpq quotes the part it could not read, which may be a piece of the password.
        reason = QUOTED_FRAGMENT.sub(_mask_fragment, " ".join(str(exc).split()))
        if scheme:
            raise ConfigError(f"{_describe(name, dsn)} is invalid: {reason}") from None
        # Which part of broken key=value pairs is the password cannot be told: show none of it.
        raise ConfigError(
            f"{name} is invalid (value not shown, it may hold a password): {reason}; expected a "
            "postgresql:// URL or libpq key=value pairs, values with blanks in single quotes"
        ) from None
    for port in str(info.get("port") or "").split(","):
        if port and not port.isdigit():
            raise ConfigError(f"{_describe(name, dsn)} is invalid: port {port!r} is not a number")
    # No host means a Unix socket; hostaddr, when given, is where libpq really connects.
    hosts = str(info.get("host") or "").lower().split(",")
    hosts += [address for address in str(info.get("hostaddr") or "").split(",") if address]
    if "sslmode" in info or not all(host in LOCAL_HOSTS or host.startswith("/") for host in hosts):
        return dsn
    if not scheme:
        return make_conninfo(dsn, sslmode="disable")
    # Appended as text: re-assembling the URL would drop the // of postgresql:///db?host=/socket.
    base, _, query = dsn.partition("?")
    return f"{base}?{query}&sslmode=disable" if query else f"{base}?sslmode=disable"


# The LangGraph API's http.cors fields and their defaults (the API's own: any origin).
CORS_DEFAULTS: dict[str, Any] = {
    "allow_origins": ["*"],
    "allow_methods": ["*"],
    "allow_headers": ["*"],
    "allow_credentials": False,
    "allow_origin_regex": None,
    "expose_headers": ["content-location", "location", "x-pagination-total", "x-pagination-next"],
    "max_age": 600,
}
CORS_LISTS = ("allow_origins", "allow_methods", "allow_headers", "expose_headers")


def _cors(name: str, value: Any) -> dict[str, Any]:
    """The http.cors section: a mapping in YAML, JSON text in CORS_CONFIG; missing fields take defaults."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name} is invalid: expected a JSON object of CORS settings ({exc.msg})") from None
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name} is invalid: expected a mapping of CORS settings ({', '.join(CORS_DEFAULTS)})")
    unknown = sorted(set(value) - set(CORS_DEFAULTS))
    if unknown:
        raise ConfigError(f"{name} has an unknown field {unknown[0]!r}; expected one of {', '.join(CORS_DEFAULTS)}")
    cors = {**CORS_DEFAULTS, **{k: v for k, v in value.items() if v is not None}}
    for key in CORS_LISTS:
        if not isinstance(cors[key], list) or not all(isinstance(item, str) and item for item in cors[key]):
            raise ConfigError(f"{name}.{key}={cors[key]!r} is invalid: expected a list of non-empty strings")
    if not isinstance(cors["allow_credentials"], bool):
        raise ConfigError(f"{name}.allow_credentials={cors['allow_credentials']!r} is invalid: expected true or false")
    if isinstance(cors["max_age"], bool) or not isinstance(cors["max_age"], int) or cors["max_age"] < 0:
        raise ConfigError(f"{name}.max_age={cors['max_age']!r} is invalid: expected an integer >= 0 (seconds)")
    if cors["allow_origin_regex"] is not None:
        try:
            re.compile(cors["allow_origin_regex"])
        except (re.error, TypeError) as exc:
            raise ConfigError(f"{name}.allow_origin_regex is invalid: {exc}") from None
    return cors


LOOPBACK_HOST_NAMES = ("localhost", ".localhost", "127.0.0.1", "::1")


def _host_names(name: str, value: Any) -> list[str] | None:
    """Host header names the server answers: a list (YAML) or comma-separated text; `*` is any;
    a leading dot matches subdomains. None: derived from server.host (see load_settings)."""
    if value is None:
        return None
    items = value if isinstance(value, list) else str(value).split(",")
    hosts = [str(item).strip().lower() for item in items if str(item).strip()]
    for host in hosts:
        if host != "*" and not re.fullmatch(r"\.?[a-z0-9_.\-:\[\]]+", host):
            raise ConfigError(
                f"{_describe(name, value)} is invalid: {host!r} is not a host name; expected names "
                "like api.example.com or .example.com (subdomains), IP addresses, or *"
            )
    if not hosts:
        raise ConfigError(f"{_describe(name, value)} is invalid: expected host names, or * for any")
    return hosts


def _auth(parse: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    """An auth setting's parser (src/services/auth/settings.py), its errors reported as config errors."""

    def checked(name: str, value: Any) -> Any:
        try:
            return parse(name, value)
        except AuthConfigError as exc:
            raise ConfigError(str(exc)) from None

    return checked


def _origins(name: str, value: Any) -> list[str]:
    origins = [origin.strip() for origin in str(value).split(",") if origin.strip()]
    if not origins:
        raise ConfigError(f"{_describe(name, value)} is invalid: expected comma-separated origins, or *")
    return origins


SETTINGS: tuple[Setting, ...] = (
    Setting("server", "host", "HOST", _text),
    Setting("server", "port", "PORT", _port),
    Setting("server", "log_level", "LOG_LEVEL", _log_level),
    Setting("server", "log_format", "LOG_FORMAT", _log_format),
    Setting("server", "access_log", "ACCESS_LOG", _boolean),
    Setting("server", "workers", "WORKERS", _integer(1)),
    Setting("server", "max_body_bytes", "MAX_BODY_BYTES", _integer(1024)),
    Setting("server", "allowed_hosts", "ALLOWED_HOSTS", _host_names),
    Setting("http", "cors", "CORS_CONFIG", _cors),
    # auth: a user's Auth object (path), or the ready-made one (api_keys, jwt_*); see README "Auth".
    Setting("auth", "path", "AUTH_PATH", _optional_text),
    Setting("auth", "api_keys", "AUTH_API_KEYS", _auth(parse_api_keys)),
    Setting("auth", "jwt_secret", "AUTH_JWT_SECRET", _auth(parse_jwt_secret)),
    Setting("auth", "jwt_public_key_file", "AUTH_JWT_PUBLIC_KEY_FILE", _optional_text),
    Setting("auth", "jwt_jwks_file", "AUTH_JWT_JWKS_FILE", _optional_text),
    Setting("auth", "jwt_audience", "AUTH_JWT_AUDIENCE", _optional_text),
    Setting("auth", "jwt_issuer", "AUTH_JWT_ISSUER", _optional_text),
    Setting("auth", "jwt_identity_claim", "AUTH_JWT_IDENTITY_CLAIM", _text),
    Setting("auth", "jwt_permissions_claim", "AUTH_JWT_PERMISSIONS_CLAIM", _optional_text),
    Setting("auth", "timeout", "AUTH_TIMEOUT", _seconds(allow_zero=False)),
    Setting("database", "url", "DATABASE_URL", normalise_database_url),
    Setting("database", "pool_min_size", "DATABASE_POOL_MIN_SIZE", _integer(0)),
    Setting("database", "pool_max_size", "DATABASE_POOL_MAX_SIZE", _integer(1)),
    Setting("database", "pool_timeout", "DATABASE_POOL_TIMEOUT", _seconds(allow_zero=False)),
    Setting("database", "connect_timeout", "DATABASE_CONNECT_TIMEOUT", _seconds(allow_zero=False)),
    Setting("database", "pool_check_idle", "DATABASE_POOL_CHECK_IDLE", _seconds(allow_zero=True)),
    Setting("runs", "max_concurrency", "RUNS_MAX_CONCURRENCY", _integer(1)),
    Setting("runs", "max_events_per_run", "RUNS_MAX_EVENTS_PER_RUN", _integer(100)),
    Setting("runs", "finished_kept", "RUNS_FINISHED_KEPT", _integer(0)),
    Setting("runs", "finished_kept_seconds", "RUNS_FINISHED_KEPT_SECONDS", _seconds(allow_zero=True)),
    Setting("runs", "lease_seconds", "RUNS_LEASE_SECONDS", _seconds(allow_zero=False)),
    Setting("runs", "heartbeat_seconds", "RUNS_HEARTBEAT_SECONDS", _seconds(allow_zero=False)),
    Setting("runs", "poll_seconds", "RUNS_POLL_SECONDS", _seconds(allow_zero=False)),
    Setting("runs", "max_attempts", "RUNS_MAX_ATTEMPTS", _integer(1)),
    Setting("runs", "webhooks_allowed_hosts", "WEBHOOKS_ALLOWED_HOSTS", _allowed_hosts),
    Setting("runs", "webhooks_allow_loopback", "WEBHOOKS_ALLOW_LOOPBACK", _boolean),
    Setting("crons", "poll_seconds", "CRONS_POLL_SECONDS", _seconds(allow_zero=False)),
    Setting("model", "name", "MODEL", _model_name),
    Setting("model", "base_url", "MODEL_BASE_URL", _optional_text),
    Setting("model", "api_key", "MODEL_API_KEY", _optional_text),
)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"config file {str(path)!r} cannot be read: {exc.strerror}; "
            "pass an existing file with --config or CONFIG_FILE"
        ) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} is invalid: expected a mapping of sections at the top level")
    return data


def _section(data: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"config file {str(path)!r}: section {name!r} is invalid: expected a mapping")
    return section


def _check_known(data: Mapping[str, Any], path: Path) -> None:
    known = {s.section for s in SETTINGS} | {"graphs"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"config file {str(path)!r}: unknown section {unknown[0]!r}; expected one of {', '.join(sorted(known))}"
        )
    for section_name in data:
        if section_name == "graphs":
            continue
        extra = sorted(set(_section(data, section_name, path)) - {s.key for s in SETTINGS if s.section == section_name})
        if extra:
            raise ConfigError(f"config file {str(path)!r}: unknown setting {section_name}.{extra[0]!r}")


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    project: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the validated configuration dictionary the container is loaded from.

    Precedence, lowest first: the YAML file, what `project` (a langgraph.json read by
    src/langgraph_json.py) says, environment variables, `overrides` (command-line flags,
    as {"server.port": 8000}).
    """
    env = os.environ if environ is None else environ
    path = Path(config_file or env.get("CONFIG_FILE") or DEFAULT_CONFIG_FILE).expanduser().resolve()
    data = _read_yaml(path)
    _check_known(data, path)
    if project is not None and project["cors"] is not None:
        data = {**data, "http": {**_section(data, "http", path), "cors": project["cors"]}}
    if project is not None and project["auth"] is not None and project["auth"].get("path"):
        # langgraph.json's auth.path (resolved against that file) is auth.path; AUTH_PATH still wins.
        data = {**data, "auth": {**_section(data, "auth", path), "path": project["auth"]["path"]}}
    result: dict[str, Any] = {"config_file": str(path), "config_dir": str(path.parent)}
    result.update(_read_settings(data, path, env, overrides or {}))
    _check_combinations(result)
    _derive(result)
    _add_graphs_and_project(result, data, path, project)
    # prometheus-client reads it when imported, so only the process environment can set it
    # (see src/services/metrics.py): several server processes then share their figures.
    metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR") or None
    if metrics_dir is not None and not Path(metrics_dir).is_dir():
        raise ConfigError(
            f"{_describe('PROMETHEUS_MULTIPROC_DIR', metrics_dir)} is invalid: expected an existing directory"
        )
    result["metrics"] = {"multiprocess_dir": metrics_dir}
    # Whether threads expire (checkpointer.ttl with a default_ttl), for the container's selector.
    ttl = result["checkpointer"]["ttl"]
    result["thread_ttl"] = "on" if ttl is not None and ttl.get("default_ttl") is not None else "off"
    return result


def _read_settings(
    data: Mapping[str, Any], path: Path, env: Mapping[str, str], flags: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Every setting of SETTINGS, parsed, by section: flag, else environment, else file, else default."""
    # Another file only has to name what it changes: the bundled file holds every default.
    defaults = _read_yaml(DEFAULT_CONFIG_FILE) if path != DEFAULT_CONFIG_FILE else {}
    sections: dict[str, dict[str, Any]] = {}
    for setting in SETTINGS:
        section = {**_section(defaults, setting.section, DEFAULT_CONFIG_FILE), **_section(data, setting.section, path)}
        value, name = section.get(setting.key), setting.path
        if setting.env in env:
            value, name = env[setting.env], setting.env
        if flags.get(setting.path) is not None:
            value, name = flags[setting.path], f"--{setting.key}"
        sections.setdefault(setting.section, {})[setting.key] = setting.parse(name, value)
    if "CORS_ALLOW_ORIGINS" in env:  # as in the LangGraph API: overrides allow_origins alone
        sections["http"]["cors"]["allow_origins"] = _origins("CORS_ALLOW_ORIGINS", env["CORS_ALLOW_ORIGINS"])
    return sections


def _check_combinations(result: Mapping[str, Any]) -> None:
    """Settings that are valid one by one but not together."""
    database, runs, server = result["database"], result["runs"], result["server"]
    if database["pool_min_size"] > database["pool_max_size"]:
        raise ConfigError(
            f"database.pool_min_size={database['pool_min_size']} is greater than "
            f"database.pool_max_size={database['pool_max_size']}: expected min <= max "
            "(DATABASE_POOL_MIN_SIZE / DATABASE_POOL_MAX_SIZE)"
        )
    if runs["heartbeat_seconds"] >= runs["lease_seconds"]:
        raise ConfigError(
            f"runs.heartbeat_seconds={runs['heartbeat_seconds']:g} is not less than "
            f"runs.lease_seconds={runs['lease_seconds']:g}: a lease must outlast several heartbeats "
            "(RUNS_HEARTBEAT_SECONDS / RUNS_LEASE_SECONDS)"
        )
    if server["workers"] > 1 and not database["url"]:
        raise ConfigError(
            f"server.workers={server['workers']} needs Postgres: in-memory persistence lives in one "
            "process; set DATABASE_URL, or WORKERS=1"
        )


def _derive(result: dict[str, Any]) -> None:
    """Settings worked out from others: aliases, defaults that depend on the host, the choices
    the container's selectors read."""
    runs, server = result["runs"], result["server"]
    if runs["webhooks_allow_loopback"]:
        # The older switch, kept as an alias: it adds this host's loopback networks to the allow-list.
        runs["webhooks_allowed_hosts"] = tuple(dict.fromkeys((*runs["webhooks_allowed_hosts"], *LOOPBACK_NETWORKS)))
    if server["allowed_hosts"] is None:
        # A server on a loopback address answers loopback names only: a web page the user
        # visits cannot reach it through a DNS name of its own (DNS rebinding).
        loopback = server["host"] in LOCAL_HOSTS
        server["allowed_hosts"] = list(LOOPBACK_HOST_NAMES) if loopback else ["*"]
    try:  # which Auth object runs (auth.mode: off, custom, builtin), for the container's selector
        result["auth"] = resolve_auth(result["auth"])
    except AuthConfigError as exc:
        raise ConfigError(str(exc)) from None
    # The backend, chosen once here for the container's selectors.
    result["persistence"] = "postgres" if result["database"]["url"] else "memory"


def _add_graphs_and_project(
    result: dict[str, Any], data: Mapping[str, Any], path: Path, project: Mapping[str, Any] | None
) -> None:
    """The graphs (from config.yml or langgraph.json, not both) and what only langgraph.json sets."""
    graphs = data.get("graphs") or {}
    if not isinstance(graphs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in graphs.items()):
        raise ConfigError(
            f"config file {str(path)!r}: section 'graphs' is invalid: expected graph_id: 'path/to/file.py:attr' entries"
        )
    result["graphs"] = dict(graphs)
    # Without a langgraph.json, none of this is configured.
    result.update(
        project_file=None,
        store={"ttl": None, "index": None},
        checkpointer={"ttl": None},
        env={},
        dependencies=[],
        warnings=[],
    )
    if project is None:
        return
    if graphs and project["graphs"]:
        raise ConfigError(
            f"graphs are defined in both {str(path)!r} and {project['file']!r}: keep them in langgraph.json"
        )
    if project["graphs"]:
        # Graph paths are relative to the file that names them.
        result["graphs"], result["config_dir"] = dict(project["graphs"]), project["dir"]
    result.update(
        project_file=project["file"],
        store=project["store"],
        checkpointer=project["checkpointer"],
        env=dict(project["env"]),
        dependencies=list(project["dependencies"]),
        warnings=list(project["warnings"]),
    )
