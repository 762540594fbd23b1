"""The container wired with in-memory fakes: no Postgres connection is ever attempted."""

import asyncio
from pathlib import Path

import pytest
from dependency_injector import providers
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from src.containers import Container, provide, shutdown
from src.services.assistants.repository import MemoryAssistantRepository
from src.services.crons.repository import MemoryCronRepository
from src.services.health import MemoryBackend
from src.services.runs.notifier import Notifier
from src.services.runs.repository import MemoryRunRepository
from src.services.runs.stats import MemoryRunCounter
from src.services.threads.repository import MemoryTables, MemoryThreadRepository
from src.settings import load_settings
from tests.conftest import TEST_CONFIG
from tests.inprocess import ApiError, Assistants, InProcessApi, Runs, Threads

ROOT = Path(__file__).resolve().parent.parent
# A URL nobody listens on: any attempt to use it would fail the test loudly.
UNREACHABLE = "postgresql://nobody:secret@127.0.0.1:1/nowhere"


def make_container() -> Container:
    container = Container()
    container.config.from_dict(load_settings(TEST_CONFIG, environ={"DATABASE_URL": UNREACHABLE}))
    return container


def user(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def test_overriding_pool_means_no_connection(tmp_path, monkeypatch):
    async def refuse(*args, **kwargs):
        raise AssertionError("a Postgres connection was attempted")

    monkeypatch.setattr("psycopg.AsyncConnection.connect", refuse)
    container = make_container()
    saver, store = InMemorySaver(), InMemoryStore()
    tables = MemoryTables()
    # The config names Postgres: every provider that would use it is replaced by a fake.
    with (
        container.checkpointer.override(providers.Object(saver)),
        container.store.override(providers.Object(store)),
        container.thread_repository.override(providers.Object(MemoryThreadRepository(tables))),
        container.run_repository.override(providers.Object(MemoryRunRepository(tables))),
        container.assistant_repository.override(providers.Object(MemoryAssistantRepository())),
        container.backend.override(providers.Object(MemoryBackend())),
        container.run_notifier.override(providers.Object(Notifier())),
        container.cron_repository.override(providers.Object(MemoryCronRepository(tables))),
        container.run_counter.override(providers.Object(MemoryRunCounter(tables))),
        container.pool_or_none.override(providers.Object(None)),
    ):
        api = await InProcessApi(container).start()
        graphs = await provide(container.graphs)
        assert graphs.ids == ["agent", "approval", "factory", "slow"]
        threads, runs = Threads(api), Runs(api)
        thread = await threads.create({"metadata": {"owner": "test"}})
        result = await runs.wait(thread["thread_id"], {"assistant_id": "agent", "input": user("my name is Ada")})
        assert result["messages"][-1]["content"] == "Nice to meet you, Ada!"
        # The fake saver got the checkpoints: the graph was bound to the injected one.
        assert list(saver.list({"configurable": {"thread_id": thread["thread_id"]}}))
        health = await provide(container.health_service)
        assert await health.health() == (True, {"status": "ok", "persistence": "memory"})
        await shutdown(container)


async def test_in_memory_backend_without_database_url(tmp_path):
    container = Container()
    container.config.from_dict(load_settings(ROOT / "config.yml", environ={}))
    await provide(container.application)
    assert isinstance(await provide(container.checkpointer), InMemorySaver)
    assert isinstance(await provide(container.store), InMemoryStore)
    info = (await provide(container.health_service)).info()
    assert info["persistence"]["backend"] == "memory"
    assert info["graphs"] == ["agent"]
    await shutdown(container)


@pytest.fixture
async def services(tmp_path):
    """The thread and run routes in process, on memory persistence (the URL in the config is never used)."""
    container = make_container()
    with container.config.persistence.override("memory"):
        api = await InProcessApi(container).start()
        yield Threads(api), Runs(api)
        await api.stop()


async def test_bad_requests_raise_domain_errors(services):
    threads, runs = services
    thread_id = (await threads.create({}))["thread_id"]
    with pytest.raises(ApiError, match="422: .*thread_id must be a UUID"):
        await threads.get("not-a-uuid")
    with pytest.raises(ApiError, match="404: .*not found"):
        await threads.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(ApiError, match="409: .*already exists"):
        await threads.create({"thread_id": thread_id})
    assert (await threads.create({"thread_id": thread_id, "if_exists": "do_nothing"}))["thread_id"] == thread_id
    with pytest.raises(ApiError, match="422: .*metadata must be an object"):
        await threads.create({"metadata": "x"})
    with pytest.raises(ApiError, match="422: .*request body must be a JSON object"):
        await runs.wait(thread_id, ["assistant_id"])
    with pytest.raises(ApiError, match="422: .*assistant_id is required"):
        await runs.wait(thread_id, {"input": {}})
    with pytest.raises(ApiError, match="404: .*Assistant 'nope' not found"):
        await runs.wait(thread_id, {"assistant_id": "nope"})
    with pytest.raises(ApiError, match="422: .*multitask_strategy must be one of"):
        await runs.wait(thread_id, {"assistant_id": "agent", "multitask_strategy": "sometimes"})
    with pytest.raises(ApiError, match="422: .*points at this host"):
        await runs.wait(thread_id, {"assistant_id": "agent", "webhook": "http://127.0.0.1:1/"})
    with pytest.raises(ApiError, match="422: .*unknown field 'colour'"):
        await runs.wait(thread_id, {"assistant_id": "agent", "colour": "red"})
    with pytest.raises(ApiError, match="404: .*if_not_exists='create'"):
        await runs.wait("00000000-0000-0000-0000-000000000001", {"assistant_id": "agent"})
    # The refused run gave back the turn it took on that thread: the next run is not stuck behind it.
    created = {"assistant_id": "slow", "input": {"steps": []}, "if_not_exists": "create"}
    result = await asyncio.wait_for(runs.wait("00000000-0000-0000-0000-000000000001", created), 5)
    assert result["steps"] == ["step 1"]


async def test_same_thread_runs_are_rejected_or_queued_never_interleaved(services):
    threads, runs = services
    thread_id = (await threads.create({}))["thread_id"]
    slow = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0.3}}}
    first = asyncio.create_task(runs.wait(thread_id, slow))
    await asyncio.sleep(0.05)
    with pytest.raises(ApiError, match="409: .*already running a run"):
        await runs.wait(thread_id, {**slow, "multitask_strategy": "reject"})
    queued = asyncio.create_task(runs.wait(thread_id, {**slow, "multitask_strategy": "enqueue"}))
    assert (await first)["steps"] == ["step 1"]
    # The queued run started from the first one's checkpoint: no update lost.
    assert (await queued)["steps"] == ["step 1", "step 2"]
    # Other threads are not blocked by a busy one.
    other = (await threads.create({}))["thread_id"]
    assert (await runs.wait(other, slow))["steps"] == ["step 1"]


async def test_runs_reuse_the_assistant_they_resolved_until_it_changes():
    class CountingAssistants(MemoryAssistantRepository):
        gets = 0

        async def get(self, assistant_id, visible=None):
            CountingAssistants.gets += 1
            return await super().get(assistant_id, visible)

    container = make_container()
    with (
        container.config.persistence.override("memory"),
        container.assistant_repository.override(providers.Object(CountingAssistants())),
    ):
        api = await InProcessApi(container).start()
        assistants, threads, runs = await provide(container.assistant_service), Threads(api), Runs(api)
        thread = (await threads.create({}))["thread_id"]
        slow = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 0.0}}}
        before = CountingAssistants.gets
        for _ in range(3):
            await runs.wait(thread, slow)
        assert CountingAssistants.gets - before == 1
        # A change made through this server is seen by the very next run.
        await Assistants(api).patch("slow", {"metadata": {"team": "a"}})
        resolved_now = await assistants.resolve("slow")
        assert resolved_now["version"] == 2 and resolved_now["metadata"]["team"] == "a"
        # What a run gets is its own copy: merging into it leaves the cache alone.
        resolved_now["config"]["configurable"] = {"delay": 99}
        assert (await assistants.resolve("slow"))["config"] == {}
        await shutdown(container)
