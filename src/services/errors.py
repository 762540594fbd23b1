"""Domain errors; the web layer maps each to an HTTP status code."""

from __future__ import annotations


class ServiceError(Exception):
    """An error the client caused or can act on; its message is the response's detail."""


class InvalidRequest(ServiceError):
    """The request is well-formed JSON but its fields are wrong (HTTP 422)."""


class NotFound(ServiceError):
    """A thread, run, assistant or graph that does not exist (HTTP 404)."""


class ThreadNotFound(NotFound):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"Thread {thread_id!r} not found")


class Conflict(ServiceError):
    """The request clashes with the current state (HTTP 409)."""


class ThreadBusy(Conflict):
    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"Thread {thread_id!r} is already running a run; wait for it to finish "
            "or send multitask_strategy='enqueue' to queue this one"
        )
