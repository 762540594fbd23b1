"""Turning graph state (messages, interrupts, snapshots) into JSON-ready values."""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel


def to_jsonable(value: Any) -> Any:
    """A copy of `value` made of dicts, lists, strings, numbers, booleans and None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # as orjson writes NaN and Infinity: JSON has neither
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump())
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return to_jsonable(value._asdict())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def dumps(value: Any) -> str:
    """JSON text; orjson encodes plain data natively and asks `to_jsonable` only for the rest.

    What orjson refuses (integers beyond 64 bits, unpaired surrogates, nesting beyond 255
    levels: a graph can produce them, and data stored before the input rules existed may
    hold them) is encoded by the standard library, with surrogates escaped, so that
    nothing stored can make a read fail."""
    try:
        return orjson.dumps(value, default=to_jsonable, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(to_jsonable(value), ensure_ascii=True, allow_nan=False)
