"""A metrics directory shared by the processes of one server (prometheus-client's multiprocess mode).

prometheus-client decides when it is first imported whether values live in the process or
in files under PROMETHEUS_MULTIPROC_DIR. So a parent that starts several server processes
(`--workers N`) enters `shared_metrics_dir` before it, or any worker, imports the server
(which imports prometheus_client): each worker inherits the variable, writes its figures
there, and a scrape of any of them reports them all. A worker marks its live gauges dead
when it stops (src/services/metrics.py); the parent removes the directory at exit, so a
new server never adds up a previous one's figures. This module must not import
prometheus_client itself.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def shared_metrics_dir(environ: MutableMapping[str, str]) -> Iterator[str]:
    """A fresh directory in `environ[PROMETHEUS_MULTIPROC_DIR]` for the processes started inside;
    removed at the end. One already set in `environ` is used as it is, and kept."""
    existing = environ.get(METRICS_DIR_VARIABLE)
    if existing:
        yield existing
        return
    directory = tempfile.mkdtemp(prefix="agent-server-metrics-")
    environ[METRICS_DIR_VARIABLE] = directory
    try:
        yield directory
    finally:
        environ.pop(METRICS_DIR_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)
