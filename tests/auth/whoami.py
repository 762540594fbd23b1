"""A graph that reports the caller the server runs it as: the reserved configurable keys and LangGraph's
runtime.server_info.user (which needs an object with an identity attribute)."""

from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime


class State(TypedDict, total=False):
    user: Any
    user_id: Any
    permissions: Any
    identity_attribute: Any
    server_user: Any
    claimed_user_id: Any


async def whoami(state: State, config: RunnableConfig, runtime: Runtime) -> dict:
    configurable = config.get("configurable") or {}
    user = configurable.get("langgraph_auth_user")
    server_info = getattr(runtime, "server_info", None)
    server_user = getattr(server_info, "user", None) if server_info is not None else None
    return {
        "user": dict(user) if user is not None else None,
        "user_id": configurable.get("langgraph_auth_user_id"),
        "permissions": configurable.get("langgraph_auth_permissions"),
        "identity_attribute": getattr(user, "identity", None),
        "server_user": getattr(server_user, "identity", None),
        "claimed_user_id": configurable.get("user_id"),
    }


builder = StateGraph(State)
builder.add_node("whoami", whoami)
builder.add_edge(START, "whoami")
graph = builder
