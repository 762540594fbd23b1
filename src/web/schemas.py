"""JSON schemas of the request bodies and parameters, as the services validate them.

One constant per request body, grouped by API area; each route names its own in its
`@route(..., doc=Doc(...))`. A body schema lists every field the service reads, with the
values it accepts: a body valid here is one the service takes (it may still answer 404
or 409 about the things it names). Bodies the service checks with `reject_unknown` are
closed (`additionalProperties: false`); a field the service reads as unset when null is
nullable. Enumerations come from the services' own constants, so they cannot drift.

`#/components/schemas/...` that depend on the running server (the graph ids it serves,
whether its store expires items) are filled in by the document builder: `components`.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from src.services import validation
from src.services.assistants import models as assistants
from src.services.crons import models as crons
from src.services.runs import request as runs
from src.services.threads import models as threads
from src.services.validation import MAX_INT
from src.web.apidoc import JsonSchema, Param
from src.web.requests import crons as cron_api
from src.web.requests import store as store_api

GRAPH_ID: JsonSchema = {"$ref": "#/components/schemas/GraphId"}
ASSISTANT_ID: JsonSchema = {"$ref": "#/components/schemas/AssistantId"}
STORE_TTL: JsonSchema = {"$ref": "#/components/schemas/StoreTtl"}
REFRESH_TTL: JsonSchema = {"$ref": "#/components/schemas/RefreshTtl"}
UUID: JsonSchema = {"type": "string", "format": "uuid"}
JSON_OBJECT: JsonSchema = {"type": "object"}
STRING_LIST: JsonSchema = {"type": "array", "items": {"type": "string"}}
COUNT: JsonSchema = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
# A page size: the server answers at most MAX_LIMIT items at once.
PAGE_LIMIT: JsonSchema = {"type": "integer", "minimum": 0, "maximum": validation.MAX_LIMIT}


def nullable(schema: JsonSchema) -> JsonSchema:
    """`schema` or null: the services read a null field as one left out."""
    return {"anyOf": [schema, {"type": "null"}]}


def enum(values: tuple[str, ...], description: str = "") -> JsonSchema:
    schema: JsonSchema = {"type": "string", "enum": list(values)}
    if description:
        schema["description"] = description
    return schema


def closed(properties: dict[str, JsonSchema], required: tuple[str, ...] = (), **extra: Any) -> JsonSchema:
    """An object with exactly these fields (the service refuses any other)."""
    schema: JsonSchema = {"type": "object", "properties": properties, "additionalProperties": False, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def components(graph_ids: list[str], store_ttl: bool) -> dict[str, JsonSchema]:
    """The shared schemas that depend on this server: the graphs it serves, whether its store expires items."""
    graph_id: JsonSchema = {"type": "string", "description": "The id of a graph this server serves"}
    if graph_ids:
        graph_id["enum"] = list(graph_ids)
    ttl: JsonSchema = {
        "type": "number",
        "minimum": store_api.MIN_TTL_MINUTES,
        "maximum": store_api.MAX_TTL_MINUTES,
        "description": "Minutes until the item expires",
    }
    if not store_ttl:  # the store cannot expire items: a ttl, or refresh_ttl true, is a 422
        ttl = {"type": "null", "description": "This server's store does not expire items"}
    return {
        "GraphId": graph_id,
        "AssistantId": {
            "description": "An assistant id, or a served graph id for that graph's default assistant",
            "anyOf": [UUID, {"$ref": "#/components/schemas/GraphId"}],
        },
        "StoreTtl": ttl,
        "RefreshTtl": {"type": "boolean"} if store_ttl else {"type": "boolean", "enum": [False]},
    }


# --- shared pieces -----------------------------------------------------------------

METADATA = nullable({"type": "object", "description": "Free-form JSON metadata"})
# Keys starting with "__" (in the config and its configurable) are LangGraph's own: refused.
NOT_INTERNAL: JsonSchema = {"not": {"pattern": "^__"}}
CONFIG: JsonSchema = {
    "type": "object",
    "description": "The LangGraph API's Config; other keys are passed to the graph's config as they are",
    "properties": {
        "tags": STRING_LIST,
        "recursion_limit": {"type": "integer", "minimum": 1},
        "configurable": nullable({**JSON_OBJECT, "propertyNames": NOT_INTERNAL}),
        "metadata": nullable({"type": "object", "description": "Merged into the run's metadata"}),
    },
    "propertyNames": {"not": {"anyOf": [{"pattern": "^__"}, {"const": "callbacks"}]}},
}
# A checkpoint as the server hands it out (state, history): clients send it back as they got it.
CHECKPOINT = closed(
    {
        key: nullable({"type": "string"} if kind is str else JSON_OBJECT)
        for key, kind in validation.CHECKPOINT_FIELDS.items()
    }
)
CHECKPOINT_OR_ID = nullable({"anyOf": [{"type": "string", "description": "A checkpoint id"}, CHECKPOINT]})
SORT_ORDER = nullable(enum(threads.SORT_ORDERS))

# --- assistants --------------------------------------------------------------------

NON_EMPTY: JsonSchema = {"type": "object", "minProperties": 1}
# The LangGraph API answers 400 when both are given: config.configurable and context mirror each other.
_NOT_CONFIGURABLE_AND_CONTEXT: JsonSchema = {
    "not": {
        "type": "object",
        "required": ["config", "context"],
        "properties": {
            "config": {
                "type": "object",
                "required": ["configurable"],
                "properties": {"configurable": NON_EMPTY},
            },
            "context": NON_EMPTY,
        },
    }
}
ASSISTANT_CREATE = closed(
    {
        "assistant_id": nullable(UUID),
        "graph_id": GRAPH_ID,
        "config": nullable(CONFIG),
        "context": nullable(JSON_OBJECT),
        "metadata": METADATA,
        "if_exists": nullable(enum(assistants.IF_EXISTS)),
        "name": nullable({"type": "string"}),
        "description": nullable({"type": "string"}),
    },
    ("graph_id",),
    **_NOT_CONFIGURABLE_AND_CONTEXT,
)
ASSISTANT_PATCH = closed(
    {
        "graph_id": nullable(GRAPH_ID),
        "config": nullable(CONFIG),
        "context": nullable(JSON_OBJECT),
        "metadata": METADATA,
        "name": nullable({"type": "string"}),
        "description": nullable({"type": "string"}),
    },
    **_NOT_CONFIGURABLE_AND_CONTEXT,
)
_ASSISTANT_FILTER: dict[str, JsonSchema] = {
    "metadata": METADATA,
    "graph_id": nullable(GRAPH_ID),
    "name": nullable({"type": "string", "description": "Part of the name, any case"}),
}
ASSISTANT_PAGE_LIMIT = nullable({"type": "integer", "minimum": 1, "maximum": validation.MAX_LIMIT})
ASSISTANT_SEARCH = closed(
    {
        **_ASSISTANT_FILTER,
        "limit": ASSISTANT_PAGE_LIMIT,
        "offset": nullable(COUNT),
        "sort_by": nullable(enum(assistants.SORT_FIELDS)),
        "sort_order": SORT_ORDER,
        "select": nullable({"type": "array", "items": enum(assistants.ASSISTANT_FIELDS)}),
    }
)
ASSISTANT_COUNT = closed(_ASSISTANT_FILTER)
ASSISTANT_VERSIONS = closed({"metadata": METADATA, "limit": ASSISTANT_PAGE_LIMIT, "offset": nullable(COUNT)})
VERSION: JsonSchema = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
ASSISTANT_SET_LATEST = closed({"version": VERSION}, ("version",))

XRAY = Param(
    "xray",
    {"anyOf": [{"type": "boolean"}, {"type": "integer", "minimum": 1}]},
    "Include subgraphs: true, or how many levels deep",
)
RECURSE = Param("recurse", {"type": "boolean"}, "Also list the subgraphs' subgraphs")
DELETE_THREADS = Param("delete_threads", {"type": "boolean", "enum": [False]}, "Not supported yet: true is a 422")
# The SDKs send the version in the body; the query form is read only when the body has none.
LATEST_VERSION = Param("version", VERSION, "Read only when the body has no version")

# --- threads -----------------------------------------------------------------------

THREAD_CREATE = closed(
    {
        "thread_id": nullable(UUID),
        "metadata": METADATA,
        "if_exists": nullable(enum(threads.IF_EXISTS)),
    }
)
_THREAD_FILTER: dict[str, JsonSchema] = {
    "metadata": METADATA,
    "values": nullable({"type": "object", "description": "Values the thread's state contains"}),
    "status": nullable(enum(threads.THREAD_STATUSES)),
}
THREAD_SEARCH = closed(
    {
        **_THREAD_FILTER,
        "ids": nullable({"type": "array", "items": UUID}),
        "limit": nullable(PAGE_LIMIT),
        "offset": nullable(COUNT),
        "sort_by": nullable(enum(threads.THREAD_SORTS)),
        "sort_order": SORT_ORDER,
        "select": nullable({"type": "array", "items": enum(threads.THREAD_FIELDS)}),
    }
)
THREAD_COUNT = closed(_THREAD_FILTER)
THREAD_PATCH = closed({"metadata": METADATA})
THREAD_STATE_AT = closed(
    {"checkpoint": CHECKPOINT, "subgraphs": nullable({"type": "boolean"})},
    ("checkpoint",),
)
THREAD_STATE_UPDATE = closed(
    {
        "values": nullable({"anyOf": [JSON_OBJECT, {"type": "array", "items": JSON_OBJECT}]}),
        "as_node": nullable({"type": "string", "description": "The node the update is applied as"}),
        "checkpoint": CHECKPOINT_OR_ID,
        "checkpoint_id": nullable({"type": "string"}),
    }
)
THREAD_HISTORY = closed(
    {
        "limit": nullable(PAGE_LIMIT),
        "before": CHECKPOINT_OR_ID,
        "metadata": METADATA,
        "checkpoint": CHECKPOINT_OR_ID,
    }
)
SUBGRAPHS = Param("subgraphs", {"type": "boolean"}, "Include the state of subgraphs")
HISTORY_LIMIT = Param("limit", PAGE_LIMIT, "How many states, newest first (10 unless given)")
HISTORY_BEFORE = Param("before", {"type": "string"}, "Only states before this checkpoint id")

# --- runs --------------------------------------------------------------------------

NODE_NAMES = nullable({"anyOf": [{"const": "*"}, STRING_LIST]})
STREAM_MODE = enum(runs.STREAM_MODES)
SEND: JsonSchema = {"type": "object", "properties": {"node": {"type": "string"}, "input": {}}, "required": ["node"]}
COMMAND = closed(
    {
        "resume": {"description": "The value `interrupt()` returns when the run resumes"},
        "update": nullable(
            {"anyOf": [JSON_OBJECT, {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2}}]}
        ),
        "goto": nullable(
            {"anyOf": [{"type": "string"}, SEND, {"type": "array", "items": {"anyOf": [{"type": "string"}, SEND]}}]}
        ),
    }
)
RUN_CREATE = closed(
    {
        "assistant_id": ASSISTANT_ID,
        "input": nullable({"anyOf": [JSON_OBJECT, {"type": "array"}]}),
        "command": nullable(COMMAND),
        "config": nullable(CONFIG),
        "context": nullable(JSON_OBJECT),
        "metadata": METADATA,
        "multitask_strategy": nullable(enum(runs.MULTITASK_STRATEGIES, "What to do when the thread is busy")),
        "if_not_exists": nullable(enum(runs.IF_NOT_EXISTS, "What to do when the thread does not exist")),
        "interrupt_before": NODE_NAMES,
        "interrupt_after": NODE_NAMES,
        "checkpoint": nullable(CHECKPOINT),
        "checkpoint_id": nullable({"type": "string"}),
        "checkpoint_during": nullable({"type": "boolean"}),
        "durability": nullable(enum(runs.DURABILITY)),
        "stream_mode": nullable({"anyOf": [STREAM_MODE, {"type": "array", "items": STREAM_MODE}]}),
        "stream_subgraphs": nullable({"type": "boolean"}),
        "on_disconnect": nullable(enum(runs.ON_DISCONNECT)),
        "on_completion": nullable(enum(runs.ON_COMPLETION, "Stateless runs: keep or delete their thread")),
        "stream_resumable": nullable({"type": "boolean"}),
        "webhook": nullable({"type": "string", "format": "uri", "description": "An http(s) URL, called at the end"}),
    },
    ("assistant_id",),
    # Either input or command, never both.
    **{
        "not": {
            "type": "object",
            "required": ["input", "command"],
            "properties": {"input": {"type": ["object", "array"]}, "command": {"type": "object"}},
        }
    },
)
RUN_CANCEL_MANY: JsonSchema = {
    **closed(
        {
            "thread_id": nullable(UUID),
            "run_ids": nullable({"type": "array", "items": UUID, "minItems": 1}),
            "status": nullable(enum(("pending", "running", "all"))),
        }
    ),
    # At least one of them names the runs.
    "anyOf": [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in ("thread_id", "run_ids", "status")
    ],
}
RUN_LIST = (
    Param("limit", PAGE_LIMIT, "How many runs, newest first (10 unless given)"),
    Param("offset", COUNT),
    Param("status", enum(runs.RUN_STATUSES)),
)
CANCEL_ACTION = Param("action", enum(runs.CANCEL_ACTIONS), "rollback also deletes the run and its checkpoints")
CANCEL_WAIT = Param("wait", {"type": "boolean"}, "Answer (204) once the run has stopped; else 202 at once")
JOIN_STREAM = (
    Param("stream_mode", {"type": "array", "items": STREAM_MODE}, "Only these modes' events"),
    Param("cancel_on_disconnect", {"type": "boolean"}, "Cancel the run when this client goes away"),
    Param(
        "Last-Event-ID",
        {"type": "string", "pattern": "^[0-9]+$"},
        "Resume after this event id",
        location="header",
    ),
)
THREAD_STREAM = (
    Param("stream_mode", {"type": "array", "items": enum(runs.THREAD_STREAM_MODES)}, "run_modes and/or lifecycle"),
    Param("stream_modes", {"type": "string"}, "The same, comma-separated, as the LangGraph API reads it"),
    Param("Last-Event-ID", {"type": "string"}, "Resume after this event id (<run_id>:<n>)", location="header"),
)

# --- crons -------------------------------------------------------------------------

# A cron keeps the fields of the runs it creates (checked as a run's when it is made).
_CRON_RUN_FIELDS = {name: RUN_CREATE["properties"][name] for name in cron_api.RUN_FIELDS}
# The service takes any schedule croniter reads (lists, ranges, steps, names, @hourly, a 6th
# field for seconds); the pattern documents the common 5-field subset, every one of which
# fires (days of the month up to 28: "0 0 31 2 *" never comes).
_EVERY = r"(\*(/[1-9][0-9]?)?)"
_SCHEDULE_PATTERN = (
    rf"^({_EVERY}|[1-5]?[0-9]) ({_EVERY}|1?[0-9]|2[0-3]) ({_EVERY}|[1-9]|1[0-9]|2[0-8]) "
    rf"({_EVERY}|[1-9]|1[0-2]) ({_EVERY}|[0-6])$"
)
_CRON_FIELDS: dict[str, JsonSchema] = {
    "schedule": {
        "type": "string",
        "pattern": _SCHEDULE_PATTERN,
        "description": "A cron schedule: minute hour day-of-month month day-of-week, in UTC unless timezone says",
    },
    "timezone": nullable(enum(tuple(sorted(zoneinfo.available_timezones())), "The IANA zone the schedule is read in")),
    "end_time": nullable({"type": "string", "format": "date-time", "description": "No firing after it"}),
    "enabled": nullable({"type": "boolean"}),
}
CRON_CREATE = closed({**_CRON_RUN_FIELDS, **_CRON_FIELDS}, ("assistant_id", "schedule"))
STATELESS_CRON_CREATE = closed(
    {
        **_CRON_RUN_FIELDS,
        **_CRON_FIELDS,
        "on_run_completed": nullable(enum(crons.ON_RUN_COMPLETED, "Keep or delete each run's thread")),
    },
    ("assistant_id", "schedule"),
)
# A PATCH changes neither the assistant nor how runs meet a busy thread; null leaves a field
# as it is (but end_time: null clears it), so at least one field must change something.
_CRON_PATCH_FIELDS = {
    name: schema
    for name, schema in STATELESS_CRON_CREATE["properties"].items()
    if name not in ("assistant_id", "multitask_strategy", "checkpoint_during")
}
CRON_PATCH: JsonSchema = {
    **closed(_CRON_PATCH_FIELDS),
    "anyOf": [{"required": ["end_time"]}]
    + [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in _CRON_PATCH_FIELDS
        if name != "end_time"
    ],
}
_CRON_FILTER: dict[str, JsonSchema] = {
    "assistant_id": nullable({"type": "string"}),
    "thread_id": nullable(UUID),
    "metadata": METADATA,
}
CRON_SEARCH = closed(
    {
        **_CRON_FILTER,
        "enabled": nullable({"type": "boolean"}),
        "limit": nullable({"type": "integer", "minimum": 1, "maximum": validation.MAX_LIMIT}),
        "offset": nullable(COUNT),
        "sort_by": nullable(enum(crons.SORT_FIELDS)),
        "sort_order": nullable(enum(crons.SORT_ORDERS)),
        "select": nullable({"type": "array", "items": enum(crons.CRON_FIELDS)}),
    }
)
CRON_COUNT = closed(_CRON_FILTER)

# --- store -------------------------------------------------------------------------

_LABEL: JsonSchema = {"type": "string", "minLength": 1, "pattern": r"^[^.]+$"}
NAMESPACE: JsonSchema = {
    "type": "array",
    "items": _LABEL,
    "description": f"Labels (non-empty, no '.'); at most {store_api.MAX_TEXT_BYTES} bytes once dot-joined",
}
KEY: JsonSchema = {
    "type": "string",
    "minLength": 1,
    "maxLength": store_api.MAX_TEXT_BYTES,
    "description": f"At most {store_api.MAX_TEXT_BYTES} bytes in UTF-8",
}
# A filter field: a value to equal, or operators ($gt... compare numbers).
_FILTER_CONDITION: JsonSchema = {
    "anyOf": [
        {"type": ["string", "number", "boolean", "null", "array"]},
        closed(
            {
                operator: {"type": "number"} if operator in store_api.COMPARISON_OPERATORS else {}
                for operator in store_api.FILTER_OPERATORS
            },
            minProperties=1,
        ),
    ]
}
STORE_PUT = closed(
    {
        "namespace": {**NAMESPACE, "minItems": 1, "description": "Not empty; its first label is not 'langgraph'"},
        "key": KEY,
        "value": JSON_OBJECT,
        "index": nullable({"anyOf": [{"const": False}, STRING_LIST]}),
        "ttl": nullable(STORE_TTL),
    },
    ("namespace", "key", "value"),
)
STORE_DELETE = closed({"namespace": nullable(NAMESPACE), "key": KEY}, ("key",))
STORE_SEARCH = closed(
    {
        "namespace_prefix": nullable(NAMESPACE),
        "filter": nullable({"type": "object", "additionalProperties": _FILTER_CONDITION}),
        "limit": nullable(PAGE_LIMIT),
        "offset": nullable(COUNT),
        "query": nullable({"type": "string", "description": "Ignored without an embedding index"}),
        "refresh_ttl": nullable(REFRESH_TTL),
    }
)
_PATTERN: JsonSchema = {"type": "array", "items": _LABEL, "description": "Labels; '*' matches any one label"}
STORE_NAMESPACES = closed(
    {
        "prefix": nullable(_PATTERN),
        "suffix": nullable(_PATTERN),
        "max_depth": nullable({"type": "integer", "minimum": 1, "maximum": MAX_INT}),
        "limit": nullable(PAGE_LIMIT),
        "offset": nullable(COUNT),
    }
)
STORE_GET = (
    Param(
        "namespace",
        {"type": "string", "pattern": r"^[^.]+(\.[^.]+)*$"},
        "The namespace's labels joined with '.'",
        required=True,
    ),
    Param("key", KEY, required=True),
    Param("refresh_ttl", REFRESH_TTL, "Restart the item's TTL"),
)

# --- path parameters, by name --------------------------------------------------------

PATH_PARAMS: dict[str, JsonSchema] = {
    "thread_id": UUID,
    "run_id": UUID,
    "assistant_id": ASSISTANT_ID,
    "checkpoint_id": {"type": "string", "minLength": 1},
    "namespace": {"type": "string", "minLength": 1, "description": "A subgraph namespace"},
    "cron_id": UUID,
}
