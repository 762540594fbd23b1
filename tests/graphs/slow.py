"""Test graphs served from a config file: a slow counter and a graph factory."""

import asyncio
import operator
from typing import Annotated, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


async def work(state: State, config: RunnableConfig) -> dict:
    delay = float((config.get("configurable") or {}).get("delay", 0.5))
    await asyncio.sleep(delay)
    return {"steps": [f"step {len(state.get('steps') or []) + 1}"]}


builder = StateGraph(State)
builder.add_node("work", work)
builder.add_edge(START, "work")

# An uncompiled StateGraph: the server compiles it with its checkpointer and store.
graph = builder


def make_graph(config: RunnableConfig):
    """A factory taking the run config, as langgraph.json allows."""
    return builder.compile()
