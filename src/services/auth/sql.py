"""The SQL condition that applies an auth handler's filter (a `Visibility`) to a metadata column.

The filter travels as one jsonb parameter in its normal form (`Visibility.as_json()`):
`[[{"key": k, "op": "eq" | "contains", "value": v}, ...], ...]`, any branch whose conditions
all hold, with a second one, per branch a document the metadata of every row it lets through
contains (`Visibility.containments()`, a jsonb[]), tested first: `@> ANY` is cheap and
index-friendly, the exact test is a subquery per row (on 100,000 threads, a search by owner
took 145 ms with the exact test alone, 20 ms with both). The statement text is the same for
every filter, so nothing a handler returns is ever written into SQL; a NULL filter means none.
Each aggregate's sql.py puts this condition into its own statements (column and placeholder
style are fixed there).
"""

from __future__ import annotations

# A key that is missing makes its condition NULL; coalesce turns that into "does not hold". The
# parentheses matter: -> and @> bind equally, left to right.
_VISIBLE = (
    "({filter}::jsonb IS NULL OR {metadata} @> ANY ({containment}::jsonb[]) AND EXISTS ("
    "SELECT 1 FROM jsonb_array_elements({filter}::jsonb) AS auth_branch (conditions) "
    "WHERE NOT EXISTS ("
    "SELECT 1 FROM jsonb_array_elements(auth_branch.conditions) AS auth_condition (c) "
    "WHERE NOT coalesce(CASE auth_condition.c ->> 'op' "
    "WHEN 'eq' THEN ({metadata} -> (auth_condition.c ->> 'key')) = (auth_condition.c -> 'value') "
    "WHEN 'contains' THEN jsonb_typeof({metadata} -> (auth_condition.c ->> 'key')) = 'array' "
    "AND ({metadata} -> (auth_condition.c ->> 'key')) @> (auth_condition.c -> 'value') "
    "END, false))))"
)


def visible_condition(metadata_column: str, filter_placeholder: str, containment_placeholder: str) -> str:
    """The condition for `metadata_column`, the filter at `filter_placeholder` (used twice) and its
    containment documents at `containment_placeholder`; with positional `%s`, pass filter, containments,
    filter. All three arguments are constants of the caller."""
    return _VISIBLE.format(metadata=metadata_column, filter=filter_placeholder, containment=containment_placeholder)
