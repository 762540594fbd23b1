"""The matrix test's own auth module: records private to their owner (as the ready-made module), but
written as a user would, with a permission rule that answers 403, and no exception for the graphs'
default assistants (as in LangGraph's documentation: they are hidden from reads, but runnable)."""

from langgraph_sdk import Auth

USERS = {
    "Bearer alice-token": {"identity": "alice", "permissions": ["threads:delete"], "team": "red"},
    "Bearer bob-token": {"identity": "bob", "permissions": [], "team": "blue"},
}

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> dict:
    user = USERS.get(authorization or "")
    if user is None:
        raise Auth.exceptions.HTTPException(401, "who are you?", {"WWW-Authenticate": "Bearer"})
    return user


def owner(ctx: Auth.types.AuthContext) -> dict:
    return {"owner": ctx.user.identity}


@auth.on(resources=["threads", "assistants", "crons"], actions=["create", "create_run"])
async def stamp_owner(ctx: Auth.types.AuthContext, value: dict) -> dict:
    value.setdefault("metadata", {})["owner"] = ctx.user.identity
    return owner(ctx)


@auth.on(resources=["threads", "assistants", "crons"], actions="update")
async def keep_owner(ctx: Auth.types.AuthContext, value: dict) -> dict:
    if isinstance(value.get("metadata"), dict):
        value["metadata"]["owner"] = ctx.user.identity
    return owner(ctx)


@auth.on.threads.delete
@auth.on.crons.delete  # the same permission: whoever may delete threads may delete their crons
async def delete_needs_permission(ctx: Auth.types.AuthContext, value: dict) -> dict | bool:
    if "threads:delete" not in ctx.permissions:
        return False
    return owner(ctx)


@auth.on(resources=["threads", "crons"], actions=["read", "search"])
@auth.on(resources="assistants", actions=["read", "search", "delete"])
async def only_owner(ctx: Auth.types.AuthContext, value: dict) -> dict:
    return owner(ctx)


@auth.on.store
async def own_namespace(ctx: Auth.types.AuthContext, value: dict) -> None:
    namespace = tuple(value.get("namespace") or ())
    if not namespace or namespace[0] != ctx.user.identity:
        value["namespace"] = (ctx.user.identity, *namespace)
