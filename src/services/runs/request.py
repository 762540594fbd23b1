"""A run's creation request, validated (the web layer parses it), and the choices it takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from src.services.auth.user import restore_caller
from src.services.serialization import to_jsonable

MULTITASK_STRATEGIES = ("reject", "enqueue", "interrupt", "rollback")
IF_NOT_EXISTS = ("reject", "create")
ON_DISCONNECT = ("cancel", "continue")
ON_COMPLETION = ("delete", "keep")
CANCEL_ACTIONS = ("interrupt", "rollback")
DURABILITY = ("sync", "async", "exit")
STREAM_MODES = (
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "events",
    "debug",
    "custom",
    "checkpoints",
    "tasks",
)
RUN_STATUSES = ("pending", "running", "success", "error", "timeout", "interrupted")
THREAD_STREAM_MODES = ("run_modes", "lifecycle")


@dataclass
class RunRequest:
    """A validated run creation body."""

    assistant_id: str
    graph_input: Any
    config: RunnableConfig
    context: dict[str, Any] | None
    metadata: dict[str, Any]
    stream_modes: list[str]
    subgraphs: bool
    multitask_strategy: str
    if_not_exists: str
    on_disconnect: str
    on_completion: str
    options: dict[str, Any]
    kwargs: dict[str, Any]
    webhook: str | None = None
    graph_id: str = ""  # set from the assistant
    stateless: bool = False  # on a temporary thread of its own (deleted after, on_completion=delete)
    # Auth: the metadata of a thread this run creates (stateless, or if_not_exists='create'): the
    # run's metadata as the auth handler stamped it, so the creator can see the thread (web/auth.py).
    thread_metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The request as JSON, stored with the run so that any process can execute it."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in STORED_FIELDS}
        if isinstance(self.graph_input, Command):
            goto = self.graph_input.goto
            fields["command"] = {"resume": self.graph_input.resume, "update": self.graph_input.update, "goto": goto}
            fields["graph_input"] = None
        else:
            fields["command"], fields["graph_input"] = None, self.graph_input
        return cast(dict[str, Any], to_jsonable(fields))

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> RunRequest:
        graph_input = stored["graph_input"]
        if stored.get("command") is not None:
            command = stored["command"]
            update = command.get("update")
            if isinstance(update, list):
                update = [tuple(item) if isinstance(item, list) else item for item in update]
            graph_input = Command(resume=command.get("resume"), update=update, goto=command.get("goto") or ())
        request = cls(**{name: stored[name] for name in STORED_FIELDS if name in stored}, graph_input=graph_input)
        restore_caller(request.config.get("configurable", {}))  # auth: the caller answers user.identity again
        return request


# Every field but the input, which is stored as `graph_input`, or as `command` for a Command.
STORED_FIELDS = (
    "assistant_id",
    "config",
    "context",
    "metadata",
    "stream_modes",
    "subgraphs",
    "multitask_strategy",
    "if_not_exists",
    "on_disconnect",
    "on_completion",
    "options",
    "kwargs",
    "webhook",
    "graph_id",
    "stateless",
    "thread_metadata",
)


def apply_assistant(request: RunRequest, assistant: dict[str, Any]) -> None:
    """Start from the assistant's config and context; what the run sends wins."""
    base = assistant.get("config") or {}
    request.assistant_id, request.graph_id = assistant["assistant_id"], assistant["graph_id"]
    config: dict[str, Any] = {**base, **request.config}
    config["configurable"] = {**(base.get("configurable") or {}), **request.config["configurable"]}
    config["metadata"] = {**(base.get("metadata") or {}), **request.config.get("metadata", {})}
    request.config = cast(RunnableConfig, config)
    if assistant.get("context") or request.context is not None:
        request.context = {**(assistant.get("context") or {}), **(request.context or {})}


@dataclass(frozen=True)
class CancelSelection:
    """Which runs a bulk cancel names: by id, by thread, by status (`all` for both)."""

    run_ids: set[str] | None = None
    thread_id: str | None = None
    status: str | None = None
