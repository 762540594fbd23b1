"""Test graphs served from a config file: a slow counter and a graph factory."""

import asyncio
import operator
from typing import Annotated, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


async def work(state: State, config: RunnableConfig) -> dict:
    configurable = config.get("configurable") or {}
    await asyncio.sleep(float(configurable.get("delay", 0.5)))
    if configurable.get("fail"):
        raise RuntimeError(f"asked to fail: {configurable['fail']}")
    return {"steps": [f"step {len(state.get('steps') or []) + 1}"]}


builder = StateGraph(State)
builder.add_node("work", work)
builder.add_edge(START, "work")

# An uncompiled StateGraph: the server compiles it with its checkpointer and store.
graph = builder


def make_graph(config: RunnableConfig):
    """A factory taking the run config, as langgraph.json allows."""
    return builder.compile()
