"""Authentication only, no @auth.on handler: every authenticated request is allowed, nothing filtered."""

from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> str:
    if not authorization:
        raise Auth.exceptions.HTTPException(401, "send a token")
    return authorization
