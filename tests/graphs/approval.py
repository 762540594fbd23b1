"""A graph that stops for a human decision with interrupt() and resumes with Command(resume=...)."""

import operator
from typing import Annotated, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph
from langgraph.types import interrupt


class State(TypedDict):
    request: str
    log: Annotated[list[str], operator.add]


def ask(state: State) -> dict:
    get_stream_writer()({"progress": "asking"})
    answer = interrupt({"question": f"approve {state['request']}?"})
    return {"log": [f"answer: {answer}"]}


def act(state: State) -> dict:
    return {"log": ["done"]}


builder = StateGraph(State)
builder.add_node("ask", ask)
builder.add_node("act", act)
builder.add_edge(START, "ask")
builder.add_edge("ask", "act")
graph = builder.compile()
