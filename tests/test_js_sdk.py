"""The JS/TS SDK conformance suite (tests/js, node's test runner) against the real server, memory and Postgres.

`make test` installs tests/js/node_modules from the lockfile first (`npm ci`). A missing Node.js or
a missing install fails this test: it never skips.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, ServerProcess

JS_DIR = ROOT / "tests" / "js"
SDK_PACKAGE = JS_DIR / "node_modules" / "@langchain" / "langgraph-sdk" / "package.json"
NODE_TIMEOUT = 180.0


def node_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the JS SDK suite needs Node.js 20 or newer", pytrace=False)
    if not SDK_PACKAGE.is_file():
        pytest.fail(
            f"{JS_DIR.relative_to(ROOT)}/node_modules is missing: run `make test`, or `npm ci` in "
            f"{JS_DIR.relative_to(ROOT)}",
            pytrace=False,
        )
    # The test files themselves, not the directory: every Node.js version takes a list of files.
    files = sorted(str(path.relative_to(ROOT)) for path in JS_DIR.glob("*.test.mjs"))
    assert files, f"no *.test.mjs files in {JS_DIR}"
    return [node, "--test", "--test-reporter=spec", "--test-force-exit", *files]


def test_js_sdk_conformance(api_server: ServerProcess) -> None:
    command = node_command()
    env = {**os.environ, "LANGGRAPH_API_URL": api_server.url, "NO_COLOR": "1"}
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"node --test did not finish within {NODE_TIMEOUT:.0f} s:\n{output}", pytrace=False)
    output = f"{result.stdout}\n{result.stderr}".strip()
    counts = {name: int(count) for name, count in re.findall(r"^ℹ (tests|pass|fail) (\d+)$", output, re.MULTILINE)}
    if result.returncode != 0 or not counts.get("tests") or counts.get("pass") != counts.get("tests"):
        pytest.fail(
            f"node --test exited with {result.returncode} against {api_server.url} ({counts}):\n{output}",
            pytrace=False,
        )
