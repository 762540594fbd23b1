"""The built-in agent and its offline model, in process on in-memory persistence."""

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from src.services.agent import TOOLS, build_agent, create_chat_model
from src.services.offline_model import OfflineChatModel
from src.settings import ConfigError


@pytest.fixture
def agent():
    return build_agent(OfflineChatModel()).compile(checkpointer=InMemorySaver(), store=InMemoryStore())


async def say(agent, thread: str, text: str, user: str = "u1") -> str:
    config = {"configurable": {"thread_id": thread, "user_id": user}}
    result = await agent.ainvoke({"messages": [{"role": "user", "content": text}]}, config)
    return result["messages"][-1].content


def test_offline_model_is_deterministic_and_answers_from_the_conversation():
    model = OfflineChatModel()
    history = [HumanMessage("Hi, my name is Grace Hopper."), AIMessage("Nice to meet you!")]
    assert model.invoke([*history, HumanMessage("What is my name?")]).content == "Your name is Grace Hopper."
    assert model.invoke([HumanMessage("what's my name")]).content == "I don't know your name yet."
    assert model.invoke([HumanMessage("hello")]).content == "You said: hello"
    first = model.bind_tools([]).invoke([HumanMessage("remember that I like tea")])
    assert first.tool_calls == []  # without tools bound it never calls one


def test_offline_model_calls_memory_tools_when_bound():
    model = OfflineChatModel().bind_tools(TOOLS)
    call = model.invoke([HumanMessage("Remember that I live in Oslo.")])
    assert call.tool_calls[0]["name"] == "remember"
    assert call.tool_calls[0]["args"] == {"fact": "I live in Oslo"}
    again = model.invoke([HumanMessage("Remember that I live in Oslo.")])
    assert again.tool_calls[0]["id"] == call.tool_calls[0]["id"]
    recall = model.invoke([HumanMessage("What do you remember about me?")])
    assert recall.tool_calls[0]["name"] == "recall"
    answer = model.invoke([ToolMessage("Here is what I remember: x.", tool_call_id="c", name="recall")])
    assert answer.content == "Here is what I remember: x."


async def test_multi_turn_memory_within_a_thread_and_isolation_between_threads(agent):
    assert await say(agent, "t1", "my name is Ada") == "Nice to meet you, Ada!"
    assert await say(agent, "t1", "what is my name?") == "Your name is Ada."
    assert await say(agent, "t2", "what is my name?") == "I don't know your name yet."


async def test_long_term_memory_crosses_threads_per_user(agent):
    assert await say(agent, "a", "remember that I like green tea") == "I'll remember that I like green tea."
    assert await say(agent, "b", "what do you remember about me?") == "Here is what I remember: I like green tea."
    other = await say(agent, "c", "what do you remember about me?", user="u2")
    assert other == "I don't remember anything about you yet."


def test_model_config_errors_are_config_errors():
    assert isinstance(create_chat_model("offline:deterministic"), OfflineChatModel)
    with pytest.raises(ConfigError, match="the offline provider has one model"):
        create_chat_model("offline:smart")
    with pytest.raises(ConfigError, match="model.name='nosuchprovider:x' cannot be used"):
        create_chat_model("nosuchprovider:x")
