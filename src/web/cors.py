"""CORS: which browser origins may call the server, as the LangGraph API's `http.cors` section says.

Browser apps (Agent Chat UI, any `useStream` page) run on another origin than the
server, so every response carries the CORS headers and preflights (OPTIONS) are
answered here. The semantics are Starlette's `CORSMiddleware`, which the LangGraph
API uses: `*` allows any origin (without credentials), otherwise the request's origin
is echoed when it is listed or matches `allow_origin_regex`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
# What the LangGraph API exposes by default; the SDKs read these (run id, pagination, reconnects).
DEFAULT_EXPOSE_HEADERS = ("content-location", "location", "x-pagination-total", "x-pagination-next")
DEFAULT_MAX_AGE = 600


class CorsRefused(Exception):
    """A preflight that this policy does not allow; the message says why (HTTP 400)."""


@dataclass(frozen=True)
class CorsPolicy:
    allow_origins: tuple[str, ...] = ("*",)
    allow_methods: tuple[str, ...] = ("*",)
    allow_headers: tuple[str, ...] = ("*",)
    allow_credentials: bool = False
    allow_origin_regex: str | None = None
    expose_headers: tuple[str, ...] = DEFAULT_EXPOSE_HEADERS
    max_age: int = DEFAULT_MAX_AGE
    # Derived once in __post_init__: every response asks.
    _any_origin: bool = field(init=False, repr=False)
    _regex: re.Pattern[str] | None = field(init=False, repr=False)
    _simple: dict[str, str] = field(init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CorsPolicy:
        """From the validated `http.cors` section (see src/settings.py)."""
        return cls(
            allow_origins=tuple(settings["allow_origins"]),
            allow_methods=tuple(method.upper() for method in settings["allow_methods"]),
            allow_headers=tuple(header.lower() for header in settings["allow_headers"]),
            allow_credentials=settings["allow_credentials"],
            allow_origin_regex=settings["allow_origin_regex"],
            expose_headers=tuple(settings["expose_headers"]),
            max_age=settings["max_age"],
        )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_any_origin", "*" in self.allow_origins)
        object.__setattr__(self, "_regex", re.compile(self.allow_origin_regex) if self.allow_origin_regex else None)
        simple: dict[str, str] = {}
        if self.allow_credentials:
            simple["Access-Control-Allow-Credentials"] = "true"
        if self.expose_headers:
            simple["Access-Control-Expose-Headers"] = ", ".join(self.expose_headers)
        object.__setattr__(self, "_simple", simple)

    def origin_allowed(self, origin: str) -> bool:
        if self._any_origin:
            return True
        return origin in self.allow_origins or (self._regex is not None and self._regex.fullmatch(origin) is not None)

    def _origin_headers(self, origin: str) -> dict[str, str]:
        # `*` cannot be combined with credentials: browsers then need the origin echoed.
        if self._any_origin and not self.allow_credentials and not self._regex:
            return {"Access-Control-Allow-Origin": "*"}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """Headers for an ordinary response to a request from `origin` (none without an allowed origin)."""
        if origin is None or not self.origin_allowed(origin):
            return {}
        return {**self._origin_headers(origin), **self._simple}

    def preflight(self, origin: str, method: str, request_headers: str | None, private_network: bool) -> dict[str, str]:
        """The headers of a successful preflight; CorsRefused when origin, method or a header is not allowed."""
        if not self.origin_allowed(origin):
            raise CorsRefused(f"Disallowed CORS origin {origin!r}")
        if "*" not in self.allow_methods and method.upper() not in self.allow_methods:
            raise CorsRefused(f"Disallowed CORS method {method!r}")
        asked = [h.strip().lower() for h in (request_headers or "").split(",") if h.strip()]
        if "*" not in self.allow_headers:
            refused = [h for h in asked if h not in self.allow_headers]
            if refused:
                raise CorsRefused(f"Disallowed CORS headers: {', '.join(refused)}")
        headers = self._origin_headers(origin)
        headers["Access-Control-Allow-Methods"] = ", ".join(
            ALL_METHODS if "*" in self.allow_methods else self.allow_methods
        )
        if asked:
            headers["Access-Control-Allow-Headers"] = ", ".join(asked)
        headers["Access-Control-Max-Age"] = str(self.max_age)
        if self.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        if private_network:
            # Chrome's Private Network Access: a public page may call a server on a private address.
            headers["Access-Control-Allow-Private-Network"] = "true"
        if "Vary" in headers:
            headers["Vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        return headers
