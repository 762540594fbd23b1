"""The project's graph: it imports a sibling module two ways (absolute and relative)."""

from typing import TypedDict

from langgraph.graph import END, START, StateGraph

from my_agent.nodes import greet

from .prompts import SUFFIX


class State(TypedDict, total=False):
    name: str
    greeting: str


builder = StateGraph(State)
builder.add_node("greet", greet)
builder.add_edge(START, "greet")
builder.add_edge("greet", END)
graph = builder.compile()
assert SUFFIX == "!"


def make_graph():
    return builder.compile()
