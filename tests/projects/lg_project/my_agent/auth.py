"""The project's auth, named by langgraph.json's auth.path: bearer tokens, private threads."""

from langgraph_sdk import Auth

TOKENS = {"ada-token": "ada", "bo-token": "bo"}

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="send a bearer token")
    return TOKENS[token]


@auth.on.threads
async def private_threads(ctx: Auth.types.AuthContext, value: dict) -> dict:
    """Threads (and their runs) belong to whoever created them."""
    if isinstance(value.get("metadata"), dict):
        value["metadata"]["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}
