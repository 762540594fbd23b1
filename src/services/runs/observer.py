"""What the run service tells an observer (the server's metrics) about its runs."""

from __future__ import annotations

from typing import Protocol


class RunObserver(Protocol):
    def run_created(self, run_id: str) -> None:
        """A run was stored (pending or already running)."""

    def run_finished(self, run_id: str, status: str) -> None:
        """A run this process executed ended: success, error, interrupted, ..."""


class NoRunObserver:
    def run_created(self, run_id: str) -> None:
        pass

    def run_finished(self, run_id: str, status: str) -> None:
        pass
