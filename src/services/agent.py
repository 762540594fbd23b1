"""The built-in graph `agent`: a tool-calling agent with per-user long-term memory."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, cast

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import InjectedStore, ToolNode, tools_condition
from langgraph.store.base import BaseStore

from src.services.auth.user import USER_ID_KEY, namespace_label
from src.services.graphs import GraphBuilder
from src.services.offline_model import OfflineChatModel
from src.settings import ConfigError

MEMORY_NAMESPACE = "memories"
ANONYMOUS_USER = "anonymous"
FACT_KEY_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")


def user_namespace(config: RunnableConfig) -> tuple[str, str]:
    """Memories are kept per user. With auth, the authenticated caller's, under (identity, "memories"):
    the namespace that is theirs when the store is scoped by identity prefix (the ready-made auth, the
    LangGraph documentation's store handler), and a `user_id` the client sends is only a claim, ignored.
    Without auth, ("memories", config.configurable.user_id), else one anonymous user."""
    configurable = config.get("configurable") or {}
    identity = configurable.get(USER_ID_KEY)
    if identity:
        return (namespace_label(str(identity)), MEMORY_NAMESPACE)
    return (MEMORY_NAMESPACE, str(configurable.get("user_id") or ANONYMOUS_USER))


@tool
async def remember(fact: str, config: RunnableConfig, store: Annotated[BaseStore, InjectedStore()]) -> str:
    """Save a fact about the user to long-term memory, shared by all of the user's threads."""
    # The key derives from the text, so telling the same fact twice keeps one copy.
    key = str(uuid.uuid5(FACT_KEY_NAMESPACE, fact.strip().lower()))
    await store.aput(user_namespace(config), key, {"fact": fact.strip()})
    return f"I'll remember that {fact.strip()}."


@tool
async def recall(query: str, config: RunnableConfig, store: Annotated[BaseStore, InjectedStore()]) -> str:
    """List the facts remembered about the user, from any of their threads."""
    items = await store.asearch(user_namespace(config), limit=50)
    if not items:
        return "I don't remember anything about you yet."
    facts = sorted((item.value.get("fact", "") for item in items), key=str.lower)
    return "Here is what I remember: " + "; ".join(facts) + "."


TOOLS = [remember, recall]


def create_chat_model(name: str, base_url: str | None = None, api_key: str | None = None) -> BaseChatModel:
    """The configured chat model: the offline one, or any provider `init_chat_model` knows."""
    provider, _, model = name.partition(":")
    if provider == "offline":
        if model != "deterministic":
            raise ConfigError(f"model.name={name!r} is invalid: the offline provider has one model, 'deterministic'")
        return OfflineChatModel()
    kwargs: dict[str, Any] = {k: v for k, v in (("base_url", base_url), ("api_key", api_key)) if v is not None}
    try:
        return cast(BaseChatModel, init_chat_model(model, model_provider=provider, **kwargs))
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"model.name={name!r} cannot be used: {exc}".replace("\n", " ")) from None


def build_agent(model: BaseChatModel) -> GraphBuilder:
    """The agent's graph, uncompiled: the graph registry binds checkpointer and store."""
    bound = model.bind_tools(TOOLS)

    async def call_model(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"], config)]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    return graph
