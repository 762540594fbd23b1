"""What the auth module answers instead of the route: a refusal with its status, or its own failure."""

from __future__ import annotations

from collections.abc import Mapping

from src.services.errors import ServiceError


class AuthRefused(ServiceError):
    """The auth module refused the request (or could not decide in time): answered with `status`
    and `headers`, the body `{"detail": ...}` as for every error."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.headers = dict(headers or {})


class AuthModuleError(AuthRefused):
    """The auth module misbehaved (returned something the contract does not allow, or raised): a bug in
    the server's configuration, answered with 500 and a detail naming the handler, never a decision."""

    def __init__(self, detail: str) -> None:
        super().__init__(500, detail)
