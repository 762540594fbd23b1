"""The `auth` section of config.yml: which Auth object runs, and the ready-made one's settings.

Secrets (API keys, the JWT secret) never appear in an error message: a bad one is named by its
setting (and, for API keys, the identity it belongs to) only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What runs: nothing, the Auth object at auth.path, or the ready-made one (builtin.py).
MODES = ("off", "custom", "builtin")
BUILTIN_CREDENTIALS = ("api_keys", "jwt_secret", "jwt_public_key_file", "jwt_jwks_file")
JWT_KEYS = ("jwt_secret", "jwt_public_key_file", "jwt_jwks_file")
MIN_API_KEY_LENGTH = 16
# RFC 7518 asks for an HMAC key at least as long as the hash: 32 bytes for HS256.
MIN_JWT_SECRET_BYTES = 32


class AuthConfigError(Exception):
    """A bad auth setting. src.settings reports it as a config error (one line, exit 2): this module
    cannot raise ConfigError itself, src.settings imports it."""


def parse_api_keys(name: str, value: Any) -> dict[str, str] | None:
    """Identity to API key: a YAML mapping, or 'identity:key' pairs, comma-separated (AUTH_API_KEYS)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, Mapping):
        pairs = [(str(identity), key) for identity, key in value.items()]
    else:
        entries = value if isinstance(value, list) else str(value).split(",")
        pairs = []
        for entry in entries:
            identity, sep, key = str(entry).strip().partition(":")
            if not str(entry).strip():
                continue
            if not sep:
                raise AuthConfigError(
                    f"{name} is invalid (values not shown): an entry has no ':'; expected identity:key pairs, "
                    "comma-separated, e.g. AUTH_API_KEYS=alice:<key>,bob:<key>"
                )
            pairs.append((identity.strip(), key.strip()))
    keys: dict[str, str] = {}
    for identity, key in pairs:
        if not identity:
            raise AuthConfigError(f"{name} is invalid (values not shown): an API key has an empty identity")
        if not isinstance(key, str) or len(key) < MIN_API_KEY_LENGTH:
            raise AuthConfigError(
                f"{name} is invalid (values not shown): the key of {identity!r} is shorter than "
                f"{MIN_API_KEY_LENGTH} characters"
            )
        if identity in keys:
            raise AuthConfigError(f"{name} is invalid (values not shown): {identity!r} has two keys")
        if key in keys.values():
            raise AuthConfigError(f"{name} is invalid (values not shown): two identities share one key")
        keys[identity] = key
    return keys or None


def parse_jwt_secret(name: str, value: Any) -> str | None:
    if value is None or not str(value).strip():
        return None
    secret = str(value).strip()
    if len(secret.encode("utf-8")) < MIN_JWT_SECRET_BYTES:
        raise AuthConfigError(
            f"{name} is invalid (value not shown): an HS256 secret needs at least {MIN_JWT_SECRET_BYTES} bytes"
        )
    return secret


def resolve_auth(section: dict[str, Any]) -> dict[str, Any]:
    """The section with `mode` set; AuthConfigError when it asks for two things at once."""
    builtin = [key for key in BUILTIN_CREDENTIALS if section.get(key)]
    if section.get("path") and builtin:
        raise AuthConfigError(
            f"auth.path and auth.{builtin[0]} are both set: auth.path names your own Auth object, the auth.api_keys "
            "and auth.jwt_* settings configure the ready-made one; set one or the other"
        )
    jwt_keys = [key for key in JWT_KEYS if section.get(key)]
    if len(jwt_keys) > 1:
        raise AuthConfigError(
            f"auth.{jwt_keys[0]} and auth.{jwt_keys[1]} are both set: the ready-made auth verifies JWTs with one "
            "key: an HS256 secret, an RS256 public key file or a JWKS file"
        )
    mode = "custom" if section.get("path") else "builtin" if builtin else "off"
    return {**section, "mode": mode}
