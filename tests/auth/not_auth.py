"""Auth files the server must refuse at start-up."""

from langgraph_sdk import Auth

auth = {"identity": "not an Auth object"}

no_authenticate = Auth()

strange_parameters = Auth()


@strange_parameters.authenticate
async def authenticate(token: str) -> str:
    return token
