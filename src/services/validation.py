"""Checking request fields: one set of helpers, so every endpoint words its errors alike.

Each helper raises `InvalidRequest` (HTTP 422) naming the field, what it got and what
it expects. Query parameters arrive as text and have their own helpers.
"""

from __future__ import annotations

import uuid
from typing import Any

from src.services.errors import InvalidRequest

# Postgres's integer: larger limits and offsets would fail in the database instead.
MAX_INT = 2**31 - 1
# The most items one page of a search or list may ask for, as in the LangGraph API.
MAX_LIMIT = 1000
# A checkpoint as the server hands it out (state, history); clients send it back as they got it.
CHECKPOINT_FIELDS: dict[str, type] = {
    "thread_id": str,
    "checkpoint_ns": str,
    "checkpoint_id": str,
    "checkpoint_map": dict,
}
TRUE_TEXTS = frozenset({"true", "1", "yes"})
FALSE_TEXTS = frozenset({"false", "0", "no"})


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def parse_uuid(value: Any, field: str) -> str:
    """Ids are UUIDs, as in the LangGraph API; return the canonical form."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidRequest(f"{field} must be a UUID, got {value!r}") from None


def require_object(payload: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidRequest(f"{what} must be a JSON object, got {json_type(payload)}")
    return payload


def optional_object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise InvalidRequest(f"{key} must be an object, got {json_type(value)}")
    return value


def optional_string(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidRequest(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{key} must be a string, got {json_type(value)}")
    return value


def checkpoint_object(value: Any, field: str = "checkpoint") -> dict[str, Any]:
    """A checkpoint object: its known fields of their types (null means unset), no others.
    The checkpointer fails on an id or namespace that is no string, so it must never get one."""
    checkpoint = require_object(value, field)
    for key, item in checkpoint.items():
        kind = CHECKPOINT_FIELDS.get(key)
        if kind is None:
            reject_unknown({key: item}, frozenset(CHECKPOINT_FIELDS))
        elif item is not None and not isinstance(item, kind):
            expected = "a string" if kind is str else "an object"
            raise InvalidRequest(f"{field}.{key} must be {expected}, got {json_type(item)}")
    return checkpoint


def reject_unknown(body: dict[str, Any], known: frozenset[str], unsupported: frozenset[str] = frozenset()) -> None:
    """Refuse fields this endpoint does not know, and name those it knows but does not honour."""
    for key, value in body.items():
        if key in known or value is None or value is False:  # clients send unset options as null/false
            continue
        if key in unsupported:
            raise InvalidRequest(f"{key} is not supported by this server yet")
        raise InvalidRequest(f"unknown field {key!r}; expected one of {', '.join(sorted(known))}")


def choice(body: dict[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = body.get(key)
    if value is None:
        return default
    if value not in choices:
        raise InvalidRequest(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _bounded(key: str, value: int, minimum: int, maximum: int) -> int:
    if not minimum <= value <= maximum:
        raise InvalidRequest(f"{key} must be between {minimum} and {maximum}, got {value}")
    return value


def integer(body: dict[str, Any], key: str, default: int, minimum: int = 0, maximum: int = MAX_INT) -> int:
    value = body.get(key)
    if value is None:
        return default
    # JSON has one number type: 10.0 is the integer 10 (JSON Schema agrees), 10.5 is not.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{key} must be an integer, got {json_type(value)}")
    return _bounded(key, value, minimum, maximum)


def query_integer(value: str | None, key: str, default: int, minimum: int = 0, maximum: int = MAX_INT) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(f"{key} must be an integer, got {value!r}") from None
    return _bounded(key, number, minimum, maximum)


def query_flag(value: str | None, key: str) -> bool | None:
    """A boolean query parameter (httpx writes true/false); None when absent."""
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in TRUE_TEXTS:
        return True
    if lowered in FALSE_TEXTS:
        return False
    raise InvalidRequest(f"{key} must be true or false, got {value!r}")


def json_contains(document: Any, pattern: Any) -> bool:
    """Postgres's jsonb containment (@>), for filtering in-memory records the same way."""
    if isinstance(pattern, dict):
        return isinstance(document, dict) and all(
            key in document and json_contains(document[key], value) for key, value in pattern.items()
        )
    if isinstance(pattern, list):
        return isinstance(document, list) and all(
            any(json_contains(item, wanted) for item in document) for wanted in pattern
        )
    if isinstance(pattern, bool) or isinstance(document, bool):
        return type(pattern) is type(document) and pattern == document
    if isinstance(pattern, (int, float)) and isinstance(document, (int, float)):
        return pattern == document  # jsonb compares numbers by value: 1 matches 1.0
    return type(pattern) is type(document) and pattern == document
