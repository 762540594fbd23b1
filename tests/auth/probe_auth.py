"""Misbehaves on request. authenticate reads the x-mode header and reports every parameter it was given;
the handlers read the caller's mode (ctx.user["mode"])."""

import asyncio

from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def authenticate(
    request, body, path: str, method: str, path_params: dict, query_params: dict, headers: dict, authorization
):
    mode = headers.get(b"x-mode", b"").decode()
    if mode == "raise":
        raise RuntimeError("the identity provider is down")
    if mode == "garbage":
        return 42
    if mode == "no-identity":
        return {"name": "ada"}
    if mode == "slow":
        await asyncio.sleep(5)
    if mode == "refuse":
        raise Auth.exceptions.HTTPException(401, "no entry", {"WWW-Authenticate": "Bearer"})
    if mode == "throttle":
        raise Auth.exceptions.HTTPException(429)
    if mode == "redirect":
        raise Auth.exceptions.HTTPException(302)
    if mode == "assert":
        assert authorization, "send a token"
    return {
        "identity": "ada.lovelace@example.com",
        "permissions": ["read"],
        "display_name": "Ada",
        "mode": mode,
        "not_json": object(),
        "seen": {
            "path": path,
            "method": method,
            "path_params": path_params,
            "query_params": query_params,
            "authorization": authorization,
            "request": [request.method, request.url.path, request.headers.get("X-MODE"), await request.json()],
            "body": body,
        },
    }


@auth.on.threads.read
async def read(ctx: Auth.types.AuthContext, value: dict):
    mode = ctx.user["mode"]
    if mode == "handler-raise":
        raise ValueError("oops")
    if mode == "handler-garbage":
        return 42
    if mode == "handler-bad-filter":
        return {"owner": {"$gt": 1}}
    if mode == "handler-slow":
        await asyncio.sleep(5)
    if mode == "handler-assert":
        assert False, "nope"  # noqa: B011 - auth modules assert, as LangGraph's documentation does
    if mode == "handler-false":
        return False
    if mode == "handler-http":
        raise Auth.exceptions.HTTPException(429, "slow down", {"Retry-After": "7"})
    if mode == "handler-bad-status":
        raise Auth.exceptions.HTTPException(302)
    if mode == "seen":
        raise Auth.exceptions.HTTPException(403, repr(ctx.user["seen"]))
    return None


@auth.on.threads.create
async def create(ctx: Auth.types.AuthContext, value: dict):
    if ctx.user["mode"] == "metadata-garbage":
        value["metadata"] = ["not", "an", "object"]
    return None


@auth.on.store
async def store(ctx: Auth.types.AuthContext, value: dict):
    mode = ctx.user["mode"]
    if mode == "ns-dot":
        value["namespace"] = (ctx.user.identity, *value["namespace"])
    elif mode == "ns-langgraph":
        value["namespace"] = ("langgraph", *value["namespace"])
    elif mode == "store-contains":
        return {"tags": {"$contains": "x"}}
    elif mode == "store-filter":
        return {"owner": "ada"}
    return None
