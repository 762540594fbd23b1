"""The ready-made Auth object: API keys or bearer JWTs, every user seeing only what they own.

Built from settings (auth.api_keys, auth.jwt_*) as a `langgraph_sdk.Auth` object, exactly as a
user's auth.py would be, and run by the same code.

Authentication: an `x-api-key` header is looked up among the configured keys; an
`Authorization: Bearer <token>` is verified as a JWT (HS256 with auth.jwt_secret, RS256 with
the PEM public key in auth.jwt_public_key_file, or the keys of the JWKS file
auth.jwt_jwks_file), must not be expired (`exp` is required), must carry the configured
audience and issuer when those are set, and names the caller in auth.jwt_identity_claim
(`sub`); auth.jwt_permissions_claim (a list, or a space-separated string such as `scope`)
gives the permissions. Without JWT settings, a bearer token is taken as an API key.

Authorization: threads (and so their runs), assistants and crons carry `metadata.owner`, stamped
on create and kept on update; every read, search, update and delete sees only the caller's own.
Assistants created by the server (each graph's default, `created_by: system`) can be read and
run by everyone, and changed by no one. Store namespaces are prefixed with the caller's identity
(as one label, see `namespace_label`). Anything else is refused (a default deny).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from langgraph_sdk import Auth

from src.services.auth.user import namespace_label
from src.settings import ConfigError

OWNER = "owner"
SYSTEM_ASSISTANTS = {"created_by": "system"}
LEEWAY_SECONDS = 30  # clock skew allowed on exp, nbf and iat
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="agent-server"'}
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="agent-server", error="invalid_token"'}
# HMAC algorithms come only from the secret: a JWKS or a public key never verifies with them.
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


@dataclass(frozen=True)
class BuiltinAuthConfig:
    """The ready-made module's settings, key files read and checked."""

    api_keys: Mapping[str, str] = field(default_factory=dict)  # identity -> key
    jwt_secret: str | None = None
    jwt_public_key: Any = None  # a key object PyJWT verifies RS256 with
    jwks: jwt.PyJWKSet | None = None
    audience: str | None = None
    issuer: str | None = None
    identity_claim: str = "sub"
    permissions_claim: str | None = None

    @property
    def verifies_jwt(self) -> bool:
        return self.jwt_secret is not None or self.jwt_public_key is not None or self.jwks is not None


def _read(setting: str, name: str, base_dir: str) -> str:
    path = (Path(base_dir) / name).resolve()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"auth.{setting}={str(path)!r} cannot be read: {reason}") from None


def builtin_config(section: Mapping[str, Any], base_dir: str) -> BuiltinAuthConfig:
    """The auth section as the ready-made module's config; a key file that does not load is a ConfigError."""
    public_key = None
    if section.get("jwt_public_key_file"):
        pem = _read("jwt_public_key_file", section["jwt_public_key_file"], base_dir)
        try:
            public_key = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).prepare_key(pem)
        except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"auth.jwt_public_key_file is not an RSA public key in PEM form: {exc}") from None
        if not hasattr(public_key, "public_numbers") or hasattr(public_key, "private_numbers"):
            raise ConfigError("auth.jwt_public_key_file must hold a public key, not a private one")
    jwks = None
    if section.get("jwt_jwks_file"):
        text = _read("jwt_jwks_file", section["jwt_jwks_file"], base_dir)
        try:
            jwks = jwt.PyJWKSet.from_dict(json.loads(text))
        except (ValueError, jwt.PyJWKSetError, jwt.InvalidKeyError) as exc:
            raise ConfigError(f"auth.jwt_jwks_file is not a JWKS document with usable keys: {exc}") from None
        if any(key.algorithm_name not in ASYMMETRIC for key in jwks.keys):
            raise ConfigError("auth.jwt_jwks_file holds a symmetric key; use auth.jwt_secret for HS256")
    return BuiltinAuthConfig(
        api_keys=dict(section.get("api_keys") or {}),
        jwt_secret=section.get("jwt_secret"),
        jwt_public_key=public_key,
        jwks=jwks,
        audience=section.get("jwt_audience"),
        issuer=section.get("jwt_issuer"),
        identity_claim=section.get("jwt_identity_claim") or "sub",
        permissions_claim=section.get("jwt_permissions_claim"),
    )


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class Credentials:
    """Who a request's API key or bearer JWT says the caller is."""

    def __init__(self, config: BuiltinAuthConfig) -> None:
        self._config = config
        # Compared as digests, every one of them: the time taken does not tell how much of a key matched.
        self._keys = [(_digest(key), identity) for identity, key in config.api_keys.items()]

    def user(self, headers: Mapping[bytes, bytes]) -> dict[str, Any]:
        api_key = headers.get(b"x-api-key")
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").strip().partition(" ")
        if api_key:
            return self._by_key(api_key.decode("latin-1"))
        if scheme.lower() == "bearer" and token.strip():
            if self._config.verifies_jwt:
                return self._by_token(token.strip())
            return self._by_key(token.strip())
        wanted = "an x-api-key header" if not self._config.verifies_jwt else "an Authorization: Bearer <JWT> header"
        if self._config.verifies_jwt and self._keys:
            wanted = "an x-api-key header or an Authorization: Bearer <JWT> header"
        raise Auth.exceptions.HTTPException(401, f"authentication required: send {wanted}", BEARER_CHALLENGE)

    def _by_key(self, key: str) -> dict[str, Any]:
        presented = _digest(key)
        found = None
        for digest, identity in self._keys:
            if hmac.compare_digest(digest, presented):
                found = identity
        if found is None:
            raise Auth.exceptions.HTTPException(401, "invalid API key", BEARER_CHALLENGE)
        return {"identity": found, "permissions": []}

    def _key_for(self, token: str) -> tuple[Any, list[str]]:
        config = self._config
        if config.jwt_secret is not None:
            return config.jwt_secret, ["HS256"]
        if config.jwt_public_key is not None:
            return config.jwt_public_key, ["RS256"]
        assert config.jwks is not None
        kid = jwt.get_unverified_header(token).get("kid")
        keys = config.jwks.keys
        chosen = (
            next((key for key in keys if key.key_id == kid), None) if kid else (keys[0] if len(keys) == 1 else None)
        )
        if chosen is None:
            raise jwt.InvalidTokenError(f"no key with kid {kid!r} in the JWKS" if kid else "the token names no kid")
        return chosen.key, [chosen.algorithm_name]

    def _by_token(self, token: str) -> dict[str, Any]:
        config = self._config
        try:
            key, algorithms = self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=config.audience,
                issuer=config.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp"], "verify_aud": config.audience is not None},
            )
        except jwt.InvalidTokenError as exc:
            raise Auth.exceptions.HTTPException(401, f"invalid token: {exc}", INVALID_TOKEN) from None
        identity = claims.get(config.identity_claim)
        if not isinstance(identity, str) or not identity:
            raise Auth.exceptions.HTTPException(
                401, f"invalid token: no {config.identity_claim!r} claim naming the caller", INVALID_TOKEN
            )
        permissions: Any = claims.get(config.permissions_claim) if config.permissions_claim else None
        if isinstance(permissions, str):
            permissions = permissions.split()
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            permissions = []
        name = claims.get("name")
        return {
            "identity": identity,
            "display_name": name if isinstance(name, str) and name else identity,
            "permissions": permissions,
        }


# --- authorization: everything is its owner's ---


def _owned(ctx: Auth.types.AuthContext) -> dict[str, Any]:
    return {OWNER: ctx.user.identity}


def _stamp(ctx: Auth.types.AuthContext, value: dict[str, Any], create: bool) -> None:
    """The owner goes into the metadata a create stores, and into an update's, so it cannot be changed."""
    metadata = value.get("metadata")
    if isinstance(metadata, dict):
        metadata[OWNER] = ctx.user.identity
    elif create:
        value["metadata"] = {OWNER: ctx.user.identity}


async def create_owned(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
    _stamp(ctx, value, create=True)
    return _owned(ctx)


async def update_owned(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
    _stamp(ctx, value, create=False)
    return _owned(ctx)


async def only_owned(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
    return _owned(ctx)


async def owned_or_system(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
    return {"$or": [_owned(ctx), dict(SYSTEM_ASSISTANTS)]}


async def own_namespace(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
    label = namespace_label(ctx.user.identity)
    namespace = tuple(value.get("namespace") or ())
    if not namespace or namespace[0] != label:
        value["namespace"] = (label, *namespace)


async def deny(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> bool:
    return False


def build_builtin_auth(config: BuiltinAuthConfig) -> Auth:
    """The ready-made Auth object for `config`."""
    credentials = Credentials(config)
    auth = Auth()

    @auth.authenticate
    async def authenticate(headers: dict[bytes, bytes]) -> dict[str, Any]:
        return credentials.user(headers)

    auth.on(resources="threads", actions=["create", "create_run"])(create_owned)
    auth.on(resources="threads", actions="update")(update_owned)
    auth.on(resources="threads", actions=["read", "delete", "search"])(only_owned)
    auth.on(resources="assistants", actions="create")(create_owned)
    auth.on(resources="assistants", actions="update")(update_owned)
    auth.on(resources="assistants", actions="delete")(only_owned)
    auth.on(resources="assistants", actions=["read", "search"])(owned_or_system)
    auth.on(resources="crons", actions="create")(create_owned)
    auth.on(resources="crons", actions="update")(update_owned)
    auth.on(resources="crons", actions=["read", "delete", "search"])(only_owned)
    auth.on.store(own_namespace)
    auth.on(deny)
    return auth
