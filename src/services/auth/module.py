"""Loading an Auth object and calling it: `authenticate` per request, the `@auth.on` handler per action.

The contract is the LangGraph API's (langgraph_sdk.Auth): `authenticate` receives, by parameter
name, any of `request`, `body`, `path`, `method`, `path_params`, `query_params`, `headers`,
`authorization`; it may be a plain function (run in a worker thread) or a coroutine function.
The handler for (resource, action) is the most specific one registered: (resource, action),
then (resource, "*"), then ("*", action), then ("*", "*"), then the global `@auth.on`; none
means allowed. A handler returns None/True (allowed), False (403) or a filter (filters.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from langgraph_sdk import Auth

from src.services.auth.errors import AuthModuleError, AuthRefused
from src.services.auth.filters import Visibility, parse_filter
from src.services.auth.user import AuthUser, normalise_user
from src.settings import ConfigError

logger = logging.getLogger(__name__)

SPEC_HINT = "expected './path/to/auth.py:auth' (relative to the config file) or 'package.module:auth'"
AUTHENTICATE_PARAMETERS = (
    "request",
    "body",
    "path",
    "method",
    "path_params",
    "query_params",
    "headers",
    "authorization",
)
RETRY_AFTER = {"Retry-After": "1"}
Handler = Callable[..., Any]


def load_auth_object(spec: str, base_dir: str) -> Auth:
    """The Auth object `auth.path` names; any problem is a ConfigError (one line, exit 2)."""
    where = f"auth.path={spec!r}"
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise ConfigError(f"{where} is invalid: {SPEC_HINT}")
    try:
        if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
            path = (Path(base_dir) / module_part).resolve()
            if not path.is_file():
                raise ConfigError(f"{where} is invalid: file {str(path)!r} does not exist; {SPEC_HINT}")
            module = _import_file(path)
        else:
            module = importlib.import_module(module_part)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{where} does not import: {type(exc).__name__}: {exc}".replace("\n", " ")) from None
    target = getattr(module, attr, None)
    if target is None:
        raise ConfigError(f"{where} is invalid: the module has no attribute {attr!r}; {SPEC_HINT}")
    if not isinstance(target, Auth):
        raise ConfigError(
            f"{where} is invalid: {attr!r} is a {type(target).__name__}; expected a langgraph_sdk.Auth object "
            "(auth = Auth() with an @auth.authenticate function)"
        )
    check_auth_object(target, where)
    return target


def _import_file(path: Path) -> Any:
    # A name of its own, the same for the same file: the module's classes must be importable by name
    # (pickling, dataclasses).
    module_name = f"agent_server_auth_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def check_auth_object(auth: Auth, where: str) -> None:
    """An Auth object the server can call: an authenticate function asking only for known parameters."""
    authenticate = auth._authenticate_handler
    if authenticate is None:
        raise ConfigError(
            f"{where} is invalid: the Auth object has no authenticate function; add one with @auth.authenticate"
        )
    try:
        parameters = inspect.signature(authenticate).parameters
    except (TypeError, ValueError):
        raise ConfigError(f"{where} is invalid: its authenticate function has no readable signature") from None
    unknown = [
        name
        for name, parameter in parameters.items()
        if name not in AUTHENTICATE_PARAMETERS
        and parameter.default is parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    if unknown:
        raise ConfigError(
            f"{where} is invalid: authenticate requires parameter(s) {', '.join(unknown)}; it may take any of "
            f"{', '.join(AUTHENTICATE_PARAMETERS)}"
        )


class Headers(Mapping[str, str]):
    """Request headers by case-insensitive name (what `request.headers` offers a Starlette-minded module)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = {name.lower(): value for name, value in headers.items()}

    def __getitem__(self, name: str) -> str:
        return self._headers[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)


@dataclass(frozen=True)
class URL:
    path: str
    query: str


@dataclass(frozen=True)
class RequestParts:
    """What `authenticate` may ask for, gathered by the web layer: the body is read (as JSON, under the
    server's input rules) only when the function asks for `body` or calls `request.json()`."""

    method: str
    path: str
    path_params: Mapping[str, str] = field(default_factory=dict)
    query_params: Mapping[str, str] = field(default_factory=dict)
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    raw_body: bytes = b""
    read_json: Callable[[], Any] = lambda: None


class AuthRequest:
    """The `request` an authenticate function receives: method, url, headers (case-insensitive),
    query_params, path_params, and `await request.body()` / `await request.json()`."""

    def __init__(self, parts: RequestParts) -> None:
        self._parts = parts
        self.method = parts.method
        self.url = URL(parts.path, parts.query_string)
        self.headers = Headers(parts.headers)
        self.query_params = dict(parts.query_params)
        self.path_params = dict(parts.path_params)

    async def body(self) -> bytes:
        return self._parts.raw_body

    async def json(self) -> Any:
        return self._parts.read_json()


def _argument(name: str, parts: RequestParts) -> Any:
    if name == "request":
        return AuthRequest(parts)
    if name == "body":
        return parts.read_json()
    if name == "path":
        return parts.path
    if name == "method":
        return parts.method
    if name == "path_params":
        return dict(parts.path_params)
    if name == "query_params":
        return dict(parts.query_params)
    if name == "headers":
        # As the LangGraph API passes them: lower-case names and values, as bytes.
        return {key.lower().encode("latin-1"): value.encode("latin-1") for key, value in parts.headers.items()}
    return Headers(parts.headers).get("authorization")


class AuthModule:
    """Calls an Auth object (None: auth is off, every call allows). Every call is bounded by `timeout`
    seconds: a module waiting on a slow identity provider answers 503, it does not hold the request."""

    def __init__(self, auth: Auth | None, timeout: float = 10.0) -> None:
        self._auth = auth
        self._timeout = timeout
        self._parameters: tuple[str, ...] = ()
        self._handlers: dict[tuple[str, str], Handler | None] = {}
        if auth is not None and auth._authenticate_handler is not None:
            signature = inspect.signature(auth._authenticate_handler).parameters
            self._parameters = tuple(name for name in signature if name in AUTHENTICATE_PARAMETERS)

    @property
    def enabled(self) -> bool:
        return self._auth is not None

    # --- authentication ---

    async def authenticate(self, parts: RequestParts) -> AuthUser | None:
        """The caller; AuthRefused (401 by default) when the module refuses them. None when auth is off."""
        if self._auth is None or self._auth._authenticate_handler is None:
            return None
        function: Callable[..., Any] = self._auth._authenticate_handler
        arguments = {name: _argument(name, parts) for name in self._parameters}
        try:
            async with asyncio.timeout(self._timeout):
                if inspect.iscoroutinefunction(function):
                    result = await function(**arguments)
                else:  # a plain function may block (an HTTP call to an identity provider): not on the loop
                    result = await asyncio.to_thread(function, **arguments)
                if inspect.isawaitable(result):
                    result = await result
        except Auth.exceptions.HTTPException as exc:
            raise _refusal(exc, "authenticate") from None
        except AssertionError as exc:
            # The LangGraph documentation's modules `assert` on the Authorization header.
            raise AuthRefused(401, str(exc) or "Unauthorized") from None
        except TimeoutError:
            logger.warning("the auth module's authenticate did not answer within %g s", self._timeout)
            raise AuthRefused(
                503, f"authentication did not finish within {self._timeout:g} s; try again", RETRY_AFTER
            ) from None
        except Exception:
            # Most often the module choking on what the client sent (a missing or malformed header):
            # the request is refused as unauthenticated, and the operator finds the traceback here.
            logger.exception("the auth module's authenticate raised; the request is refused with 401")
            raise AuthRefused(401, "authentication failed") from None
        return normalise_user(result)

    # --- authorization ---

    def handler(self, resource: str, action: str) -> Handler | None:
        """The most specific handler registered for (resource, action), or None."""
        key = (resource, action)
        if key not in self._handlers:
            self._handlers[key] = self._resolve(resource, action)
        return self._handlers[key]

    def _resolve(self, resource: str, action: str) -> Handler | None:
        if self._auth is None:
            return None
        registered = self._auth._handlers
        for key in ((resource, action), (resource, "*"), ("*", action), ("*", "*")):
            if registered.get(key):
                return cast(Handler, registered[key][-1])
        global_handlers = self._auth._global_handlers
        return cast(Handler, global_handlers[-1]) if global_handlers else None

    async def authorize(
        self, user: AuthUser | None, resource: str, action: str, value: dict[str, Any]
    ) -> Visibility | None:
        """Ask the handler for (resource, action) about `value` (which it may change in place): None when
        allowed without a filter, the Visibility its filter allows; AuthRefused when it refuses."""
        if self._auth is None:
            return None
        if user is None:  # a route the pipeline let through unauthenticated asked for a decision
            raise AuthRefused(401, "authentication required")
        handler = self.handler(resource, action)
        if handler is None:
            return None
        name = f"for {resource}:{action}"
        context = Auth.types.AuthContext(
            user=user, permissions=user.permissions, resource=cast(Any, resource), action=cast(Any, action)
        )
        try:
            async with asyncio.timeout(self._timeout):
                result = await handler(ctx=context, value=value)
        except Auth.exceptions.HTTPException as exc:
            raise _refusal(exc, f"the handler {name}") from None
        except AssertionError as exc:
            raise AuthRefused(403, str(exc) or "Forbidden") from None
        except TimeoutError:
            logger.warning("the auth handler %s did not answer within %g s", name, self._timeout)
            raise AuthRefused(
                503, f"authorization did not finish within {self._timeout:g} s; try again", RETRY_AFTER
            ) from None
        except Exception as exc:
            logger.exception("the auth handler %s raised", name)
            raise AuthModuleError(
                f"the auth handler {name} raised {type(exc).__name__}; the server log has the details"
            ) from None
        if result is None or result is True:
            return None
        if result is False:
            raise AuthRefused(403, "Forbidden")
        if not isinstance(result, Mapping):
            logger.error("the auth handler %s returned %r", name, result)
            raise AuthModuleError(
                f"the auth handler {name} returned {type(result).__name__}; expected None, True, False or a filter"
            )
        return parse_filter(result, name)


def _refusal(exc: Any, who: str) -> AuthRefused:
    """An Auth.exceptions.HTTPException as the response it asks for; a status that is no error is the module's bug."""
    status = exc.status_code
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        return AuthModuleError(
            f"the auth module's {who} raised HTTPException with status {status!r}; expected 4xx or 5xx"
        )
    return AuthRefused(status, str(exc.detail), exc.headers)
