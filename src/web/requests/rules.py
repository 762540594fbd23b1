"""The rule for every JSON document a client sends, enforced once, when the body is read.

Both backends must store what they accept and give it back unchanged, and Postgres's
text and jsonb cannot hold everything JSON can say. So a body (and every value in it:
metadata, run input, config, store items, filters) is refused with 422 when it has

- a NUL character (U+0000) in a string or an object key: Postgres text and jsonb refuse it;
- an unpaired surrogate escape ("\\ud800" alone): not Unicode, refused by Postgres and by
  the JSON encoder on the way out;
- NaN, Infinity or a number too large to be finite: not JSON;
- an integer outside the signed 64-bit range: the JSON codecs on the way back (orjson) and
  the store's filters cannot round-trip it;
- objects and arrays nested more than MAX_JSON_DEPTH levels deep: the encoder on the way
  out gives up far sooner than Postgres.

A body that is not UTF-8 or not JSON at all is a 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

from src.services.errors import InvalidRequest, ServiceError

MAX_JSON_DEPTH = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class BadRequest(ServiceError):
    """The request could not be read at all (HTTP 400)."""


def _refuse_constant(name: str) -> Any:
    raise InvalidRequest(f"request body has {name}: numbers must be finite numbers (NaN and Infinity are not JSON)")


def check_text(text: str, where: str) -> None:
    """Refuse what Postgres text and jsonb cannot hold: NUL characters and unpaired surrogates."""
    if "\x00" in text:
        raise InvalidRequest(f"{where} must not contain NUL characters (\\u0000)")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(f"{where} must not contain unpaired surrogates (invalid UTF-16 escapes)") from None


def check_json(value: Any, where: str, depth: int = 0) -> None:
    """Walk a decoded JSON value: storable strings and keys, finite 64-bit-safe numbers, bounded nesting."""
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidRequest(f"{where} must be an integer within 64 bits, got {value}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"{where} must be a finite number, got {value}")
    elif isinstance(value, (dict, list)):
        if depth >= MAX_JSON_DEPTH:
            raise InvalidRequest(
                f"{where} is nested too deeply: more than {MAX_JSON_DEPTH} levels of objects and arrays"
            )
        if isinstance(value, dict):
            for key, item in value.items():
                check_text(key, f"a key in {where}")
                check_json(item, f"{where}[{key!r}]", depth + 1)
        else:
            for index, item in enumerate(value):
                check_json(item, f"{where}[{index}]", depth + 1)
    else:  # not produced by a JSON decoder
        raise InvalidRequest(f"{where} must be JSON, got {type(value).__name__}")


def parse_json(body: bytes) -> Any:
    """A request body as JSON that satisfies the rule above (400 or 422 otherwise)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    check_json(value, "request body")
    return value
