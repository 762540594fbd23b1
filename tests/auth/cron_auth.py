"""Records what the cron routes ask (SEEN: resource, action, a copy of the value) and answers as the
caller says: `x-answer: false` refuses (403); otherwise a crons:create stamps `stamped` in the metadata."""

import copy

from langgraph_sdk import Auth

SEEN: list[tuple[str, str, dict]] = []
auth = Auth()


@auth.authenticate
async def authenticate(headers: dict) -> dict:
    return {"identity": "ada", "answer": headers.get(b"x-answer", b"").decode()}


@auth.on.crons
@auth.on.threads.create_run
async def record(ctx: Auth.types.AuthContext, value: dict) -> bool | None:
    SEEN.append((ctx.resource, ctx.action, copy.deepcopy(value)))
    if ctx.user["answer"] == "false":
        return False
    if (ctx.resource, ctx.action) == ("crons", "create"):
        value["metadata"] = {**(value.get("metadata") or {}), "stamped": ctx.user.identity}
    return None
