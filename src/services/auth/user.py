"""The authenticated caller: what `authenticate` returned, normalised as the LangGraph API does."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import orjson

from src.services.auth.errors import AuthModuleError

# The configurable keys a run carries its caller in, as the LangGraph API sets them. Reserved:
# a client that sends them is refused, so a graph can trust them.
USER_KEY = "langgraph_auth_user"
USER_ID_KEY = "langgraph_auth_user_id"
PERMISSIONS_KEY = "langgraph_auth_permissions"
RESERVED_CONFIGURABLE_KEYS = (USER_KEY, USER_ID_KEY, PERMISSIONS_KEY)
BASE_FIELDS = ("identity", "display_name", "is_authenticated", "permissions")
EXPECTED = (
    "expected a string identity, a dict with 'identity' (and optionally 'permissions', 'display_name', "
    "'is_authenticated'), or an object with an identity attribute"
)


class AuthUser:
    """The caller, as handlers see it (`ctx.user`): `identity`, `display_name`, `is_authenticated`,
    `permissions`, and every other field authenticate returned, by attribute or by key."""

    __slots__ = ("_fields", "_source")

    def __init__(self, fields: dict[str, Any], source: Any = None) -> None:
        self._fields = fields
        self._source = source

    @property
    def identity(self) -> str:
        return str(self._fields["identity"])

    @property
    def display_name(self) -> str:
        return str(self._fields["display_name"])

    @property
    def is_authenticated(self) -> bool:
        return bool(self._fields["is_authenticated"])

    @property
    def permissions(self) -> Sequence[str]:
        return list(self._fields["permissions"])

    def __getattr__(self, name: str) -> Any:
        # Fields beyond the four (a dict's keys, an object's own attributes) read through. Private names
        # never do: copy and pickle look for them before __init__ has set _fields.
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._fields:
            return self._fields[name]
        if self._source is not None and not isinstance(self._source, Mapping):
            return getattr(self._source, name)
        raise AttributeError(name)

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def get(self, key: str, default: Any = None) -> Any:
        return self._fields.get(key, default)

    def keys(self) -> Any:
        return self._fields.keys()

    def items(self) -> Any:
        return self._fields.items()

    def dict(self) -> dict[str, Any]:
        return dict(self._fields)

    def stored(self) -> ConfigUser:
        """The caller as a run carries it (`config.configurable.langgraph_auth_user`): the fields
        that are JSON, so the run can be stored and executed by another process."""
        kept: dict[str, Any] = {}
        for key, value in self._fields.items():
            try:
                orjson.dumps(value)
            except TypeError:
                continue  # not JSON: cannot travel with the run
            kept[key] = value
        return ConfigUser(kept)

    def __repr__(self) -> str:
        return f"AuthUser(identity={self.identity!r})"


class ConfigUser(dict[str, Any]):
    """The caller in a run's config: a plain JSON object that also answers `user.identity` (as the
    LangGraph API's user object does, and as LangGraph's `runtime.server_info.user` requires)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def restore_caller(configurable: MutableMapping[str, Any]) -> None:
    """For a run read back from storage (another process executing it): its caller, stored as a plain
    JSON object, answers `user.identity` again, as it did when the run was created."""
    user = configurable.get(USER_KEY)
    if isinstance(user, dict) and not isinstance(user, ConfigUser):
        configurable[USER_KEY] = ConfigUser(user)


def _permissions(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not all(isinstance(p, str) for p in value):
        raise AuthModuleError(
            f"the auth module's authenticate returned permissions that are not a list of strings: {value!r}"
        )
    return list(value)


def _object_fields(user: Any) -> dict[str, Any]:
    for method in ("model_dump", "dict"):
        dump = getattr(user, method, None)
        if callable(dump):
            try:
                fields = dump()
            except TypeError:
                continue
            if isinstance(fields, Mapping):
                return {str(k): v for k, v in fields.items()}
    return {}


def normalise_user(result: Any) -> AuthUser:
    """`authenticate`'s result as an AuthUser; anything else is the module's bug (AuthModuleError)."""
    permissions: Any = None
    if isinstance(result, tuple) and len(result) == 2:  # (permissions, user), as the LangGraph API accepts
        permissions, result = result
    if isinstance(result, str):
        fields: dict[str, Any] = {"identity": result}
    elif isinstance(result, Mapping) and "identity" in result:
        fields = {str(k): v for k, v in result.items()}
    elif not isinstance(result, Mapping) and hasattr(result, "identity"):
        fields = _object_fields(result)
        for name in BASE_FIELDS:
            if hasattr(result, name):
                fields[name] = getattr(result, name)
    else:
        raise AuthModuleError(f"the auth module's authenticate returned {type(result).__name__}; {EXPECTED}")
    identity = fields.get("identity")
    if not isinstance(identity, str) or not identity:
        raise AuthModuleError(
            f"the auth module's authenticate returned identity {identity!r}; expected a non-empty string"
        )
    fields["permissions"] = _permissions(permissions if permissions is not None else fields.get("permissions"))
    fields.setdefault("display_name", identity)
    fields["is_authenticated"] = bool(fields.get("is_authenticated", True))
    return AuthUser(fields, result)


def namespace_label(identity: str) -> str:
    """An identity as one store namespace label: labels cannot hold '.', the Postgres store's separator
    (an identity like 'ada.l@example.com' would otherwise be refused, or read as two labels). '%' is
    escaped too, so two identities never share a label."""
    return identity.replace("%", "%25").replace(".", "%2E")
