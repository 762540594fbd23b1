"""Shows which handler the server picked: each refuses with its own name (403), so the response tells."""

from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> str:
    return "someone"


def answer(name: str):
    async def handler(ctx: Auth.types.AuthContext, value: dict) -> None:
        raise Auth.exceptions.HTTPException(403, f"{name} for {ctx.resource}:{ctx.action} with {sorted(value)}")

    return handler


auth.on.threads.create(answer("threads.create"))
auth.on.threads(answer("threads.*"))
auth.on(actions="read")(answer("*.read"))
auth.on(answer("global"))
