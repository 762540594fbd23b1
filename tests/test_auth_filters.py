"""Auth filters: the grammar handlers may return, and the same matches in memory and in Postgres's SQL
(threads and crons)."""

import uuid
from datetime import UTC, datetime

import pytest

from src.containers import Container, provide, resolved
from src.services.auth.errors import AuthModuleError
from src.services.auth.filters import MAX_BRANCHES, Condition, Visibility, equals, parse_filter
from src.services.crons.models import CronFilter, NewCron
from src.services.crons.repository import CronRepository, MemoryCronRepository
from src.services.threads.models import ThreadFilter
from src.services.threads.repository import MemoryTables, MemoryThreadRepository, ThreadRepository
from src.settings import load_settings
from tests.conftest import TEST_CONFIG

# Thread metadata, by name, that the filters below are matched against.
DOCUMENTS = {
    "d1": {"owner": "alice", "tags": ["a", "b"], "n": 1, "flag": True, "obj": {"x": 1, "y": [1, 2]}},
    "d2": {"owner": "bob", "tags": ["b"], "n": 1.0, "flag": 1, "obj": {"x": 1}},
    "d3": {"owner": ["alice"], "tags": "a", "n": "1"},
    "d4": {},
    "d5": {"owner": None, "tags": [["a"], {"k": "v", "w": 2}], "dotted.key": "x"},
}
# A handler's filter, and the documents it lets through (jsonb semantics: 1 equals 1.0, true is no 1).
CASES = [
    ({"owner": "alice"}, {"d1"}),
    ({"owner": {"$eq": "alice"}}, {"d1"}),
    ({"owner": {"$eq": ["alice"]}}, {"d3"}),
    ({"owner": None}, {"d5"}),
    ({"n": 1}, {"d1", "d2"}),
    ({"n": "1"}, {"d3"}),
    ({"flag": True}, {"d1"}),
    ({"flag": 1}, {"d2"}),
    ({"obj": {"$eq": {"x": 1}}}, {"d2"}),
    ({"obj": {"$eq": {"y": [1, 2], "x": 1}}}, {"d1"}),
    ({"tags": {"$contains": "a"}}, {"d1"}),
    ({"tags": {"$contains": ["a", "b"]}}, {"d1"}),
    ({"tags": {"$contains": ["b"]}}, {"d1", "d2"}),
    ({"tags": {"$contains": []}}, {"d1", "d2", "d5"}),
    ({"tags": {"$contains": {"k": "v"}}}, {"d5"}),
    ({"tags": {"$contains": [["a"]]}}, {"d5"}),
    ({"dotted.key": "x"}, {"d5"}),
    ({"owner": "alice", "n": 1}, {"d1"}),
    ({"owner": "alice", "n": "1"}, set()),
    ({"missing": {"$contains": "a"}}, set()),
    ({"$or": [{"owner": "alice"}, {"owner": "bob"}]}, {"d1", "d2"}),
    ({"$and": [{"n": 1}, {"tags": {"$contains": "b"}}]}, {"d1", "d2"}),
    ({"$or": [{"owner": "bob"}, {"$and": [{"n": "1"}, {"tags": "a"}]}]}, {"d2", "d3"}),
    ({"owner": "alice", "$or": [{"flag": True}, {"n": 5}]}, {"d1"}),
    ({"$or": [{"$or": [{"n": "1"}, {"owner": None}]}, {"owner": "bob"}]}, {"d2", "d3", "d5"}),
    ({"$or": [{"n": 1, "flag": True}, {"n": 1, "flag": 1}]}, {"d1", "d2"}),  # n shared, flag not (true is no 1)
    ({"$or": [{"obj": {"$eq": {"x": 1}}}, {"obj": {"$eq": {"x": 1}}, "n": 1.0}]}, {"d2"}),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_each_operator_matches_in_memory(raw, expected):
    visible = parse_filter(raw, "for threads:read")
    assert visible is not None
    assert {name for name, document in DOCUMENTS.items() if visible.matches(document)} == expected


def test_the_normal_form():
    assert parse_filter({}, "h") is None  # an empty filter filters nothing, as in the LangGraph runtime
    assert parse_filter({"a": 1, "b": {"$contains": "x"}}, "h") == Visibility(
        ((Condition("a", "eq", 1), Condition("b", "contains", ["x"])),)
    )
    either = parse_filter({"a": 1, "$or": [{"b": 2}, {"c": 3}]}, "h")
    assert either == Visibility(
        ((Condition("a", "eq", 1), Condition("b", "eq", 2)), (Condition("a", "eq", 1), Condition("c", "eq", 3)))
    )
    assert parse_filter({"when": uuid.UUID(int=1)}, "h") == equals("when", str(uuid.UUID(int=1)))
    assert equals("owner", "a").either(equals("created_by", "system")).matches({"created_by": "system"})
    assert equals("a", 1).equalities() == {"a": 1}
    assert parse_filter({"$or": [{"a": 1}, {"a": 2}]}, "h").equalities() is None
    assert parse_filter({"a": {"$contains": "x"}}, "h").equalities() is None
    # Per branch, what its rows' metadata contains, which the SQL tests first with @> ANY
    assert parse_filter({"a": [1], "$or": [{"b": True}, {"t": {"$contains": "x"}}]}, "h").containments() == [
        {"a": [1], "b": True},
        {"a": [1], "t": ["x"]},
    ]
    assert parse_filter({"a": 1, "$and": [{"a": {"$contains": 1}}, {"b": 2}]}, "h").containments() == [{"b": 2}]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (["owner"], "not an object"),
        ({"owner": {"$ne": "a"}}, "operator '$ne' on 'owner'; expected $eq or $contains"),
        ({"owner": {"$eq": "a", "$contains": "b"}}, "an object with 2 keys"),
        ({"owner": {}}, "an object with 0 keys"),
        ({"$or": {"a": 1}}, "$or is not a non-empty list of filters"),
        ({"$or": []}, "$or is not a non-empty list of filters"),
        ({"$and": ["a"]}, "$and is not a non-empty list of filters"),
        ({"$or": [{"$or": [{"$or": [{"a": 1}]}]}]}, "more than 2 levels deep"),
        ({"$and": [{"$or": [{"a": i} for i in range(9)]}, {"$or": [{"b": i} for i in range(9)]}]}, "alternatives"),
    ],
)
def test_filters_outside_the_grammar_are_the_modules_bug(raw, detail):
    with pytest.raises(AuthModuleError) as refused:
        parse_filter(raw, "for threads:search")
    assert refused.value.status == 500
    assert detail in str(refused.value) and "for threads:search" in str(refused.value)
    assert MAX_BRANCHES < 81


@pytest.fixture(params=["memory", "postgres"])
async def repository(request):
    if request.param == "memory":
        yield MemoryThreadRepository(MemoryTables())
        return
    container = Container()
    url = request.getfixturevalue("pg_url")
    container.config.from_dict(load_settings(TEST_CONFIG, environ={"DATABASE_URL": url}))
    yield await provide(container.thread_repository)
    await resolved(container.shutdown_resources())


async def test_sql_and_memory_apply_every_filter_alike(repository: ThreadRepository):
    ids = {}
    for name, metadata in DOCUMENTS.items():
        ids[name] = str(uuid.uuid4())
        assert await repository.create_thread(ids[name], metadata) is not None
    names = {thread_id: name for name, thread_id in ids.items()}
    for raw, expected in CASES:
        visible = parse_filter(raw, "h")
        where = ThreadFilter(ids=list(ids.values()), visible=visible)
        found = await repository.search_threads(where, limit=100, offset=0, sort_by="thread_id", sort_order="asc")
        assert {names[t["thread_id"]] for t in found} == expected, raw
        assert await repository.count_threads(where) == len(expected), raw
        for name, thread_id in ids.items():
            assert (await repository.get_thread(thread_id, visible) is not None) == (name in expected), (raw, name)


@pytest.fixture(params=["memory", "postgres"])
async def cron_repository(request):
    if request.param == "memory":
        yield MemoryCronRepository(MemoryTables())
        return
    container = Container()
    url = request.getfixturevalue("pg_url")
    container.config.from_dict(load_settings(TEST_CONFIG, environ={"DATABASE_URL": url}))
    yield await provide(container.cron_repository)
    await resolved(container.shutdown_resources())


def new_cron(metadata: dict) -> NewCron:
    return {
        "cron_id": str(uuid.uuid4()),
        "assistant_id": str(uuid.uuid4()),
        "thread_id": None,
        "user_id": None,
        "caller": None,
        "schedule": "0 0 1 1 *",
        "timezone": None,
        "payload": {},
        "metadata": metadata,
        "on_run_completed": "delete",
        "enabled": True,
        "end_time": None,
        "next_run_date": datetime(2100, 1, 1, tzinfo=UTC),
    }


async def test_crons_apply_every_filter_alike_in_sql_and_memory(cron_repository: CronRepository):
    """Search, count, get, update and delete of crons: the rows each filter lets through, no others."""
    crons = {name: new_cron(metadata) for name, metadata in DOCUMENTS.items()}
    for cron in crons.values():
        assert await cron_repository.create_cron(cron) is not None
    names = {cron["cron_id"]: name for name, cron in crons.items()}
    assistants = {cron["assistant_id"] for cron in crons.values()}

    def touched(cron):
        return {**cron, "enabled": False}

    for raw, expected in CASES:
        visible = parse_filter(raw, "h")
        found = [
            cron
            for assistant_id in assistants  # only this test's crons: the database may hold others
            for cron in await cron_repository.search_crons(
                CronFilter(assistant_id=assistant_id, visible=visible), 10, 0, "cron_id", "asc"
            )
        ]
        assert {names[c["cron_id"]] for c in found} == expected, raw
        counted = sum(
            [await cron_repository.count_crons(CronFilter(assistant_id=a, visible=visible)) for a in assistants]
        )
        assert counted == len(expected), raw
        for name, cron in crons.items():
            assert (await cron_repository.get_cron(cron["cron_id"], visible) is not None) == (name in expected), raw
            updated = await cron_repository.update_cron(cron["cron_id"], touched, visible)
            assert (updated is not None) == (name in expected), (raw, name)
    # delete: a hidden cron stays; a visible one goes
    alice = parse_filter({"owner": "alice"}, "h")
    assert not await cron_repository.delete_cron(crons["d2"]["cron_id"], alice)
    assert await cron_repository.get_cron(crons["d2"]["cron_id"]) is not None
    assert await cron_repository.delete_cron(crons["d1"]["cron_id"], alice)
    assert await cron_repository.get_cron(crons["d1"]["cron_id"]) is None
