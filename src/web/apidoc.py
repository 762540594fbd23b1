"""What the OpenAPI document says about one route: its body, parameters and status codes.

A route class passes a `Doc` to `@route`, next to the handler, so a handler and its
contract are read together; the JSON schemas themselves live in `src.web.schemas`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

JsonSchema = dict[str, Any]


@dataclass(frozen=True)
class Param:
    """A query or header parameter (path parameters are described by name in `schemas.PATH_PARAMS`)."""

    name: str
    schema: JsonSchema
    description: str = ""
    location: Literal["query", "header"] = "query"
    required: bool = False


@dataclass(frozen=True)
class Doc:
    """The documented contract of one route.

    `body` is the JSON schema of the request body, None when the route reads no body;
    `body_required` is false where an empty body reads as `{}`. `responses` lists every
    status code the route answers with; 400 (unreadable body or query string) is added
    wherever a body or a query parameter is read. `media_type` is the 200 answer's
    (errors are always JSON).
    """

    responses: tuple[int, ...] = (200,)
    body: JsonSchema | None = None
    body_required: bool = True
    params: tuple[Param, ...] = ()
    media_type: str = "application/json"
    description: str = ""
