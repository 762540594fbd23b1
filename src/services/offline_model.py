"""A small deterministic chat model that needs no network and no key.

It is the default model so the server works out of the box and tests are repeatable.
It answers from the conversation it is given (it knows the user's name if the user
said it earlier in the thread) and calls the memory tools when asked to remember or
recall something. It is rule-based, not a language model.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

NAME_STATEMENT = re.compile(r"\bmy name is\s+([^\s.,!?;]+(?:\s+[A-Z][^\s.,!?;]*)*)", re.IGNORECASE)
NAME_QUESTION = re.compile(r"\b(what(?:'s| is) my name|who am i)\b", re.IGNORECASE)
REMEMBER = re.compile(r"^\s*(?:please\s+)?remember(?:\s+that)?\s+(.+?)\s*[.!]?\s*$", re.IGNORECASE | re.DOTALL)
RECALL = re.compile(
    r"\b(what do you (?:remember|know) about me|what do you remember|recall)\b",
    re.IGNORECASE,
)
TOOL_CALL_NAMESPACE = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


class OfflineChatModel(BaseChatModel):
    """Rule-based offline chat model ("offline:deterministic")."""

    tool_names: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "offline-deterministic"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        names = [convert_to_openai_tool(tool)["function"]["name"] for tool in tools]
        return self.model_copy(update={"tool_names": names})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Pure computation: no need for the default thread-pool hop.
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])

    def reply(self, messages: Sequence[BaseMessage]) -> AIMessage:
        if not messages:
            return AIMessage(content="Hello! How can I help?")
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(content=self._after_tool(last))
        text = _text(last).strip()
        remember = REMEMBER.match(text)
        if remember and "remember" in self.tool_names:
            return self._call("remember", {"fact": remember.group(1)}, len(messages), text)
        if RECALL.search(text) and "recall" in self.tool_names:
            return self._call("recall", {"query": text}, len(messages), text)
        if NAME_QUESTION.search(text):
            name = self._known_name(messages)
            return AIMessage(content=f"Your name is {name}." if name else "I don't know your name yet.")
        told = NAME_STATEMENT.search(text)
        if told:
            return AIMessage(content=f"Nice to meet you, {told.group(1)}!")
        return AIMessage(content=f"You said: {text}")

    @staticmethod
    def _known_name(messages: Sequence[BaseMessage]) -> str | None:
        for message in reversed(messages):
            if isinstance(message, HumanMessage):
                found = NAME_STATEMENT.search(_text(message))
                if found:
                    return found.group(1)
        return None

    @staticmethod
    def _call(name: str, args: dict[str, Any], position: int, text: str) -> AIMessage:
        call_id = "call_" + uuid.uuid5(TOOL_CALL_NAMESPACE, f"{position}:{name}:{text}").hex[:24]
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])

    @staticmethod
    def _after_tool(result: ToolMessage) -> str:
        content = _text(result)
        if result.status == "error":
            return f"The {result.name} tool failed: {content}"
        if result.name == "recall":
            return content
        return content or "Done."
