"""The SQL condition that applies an auth handler's filter (a `Visibility`) to a metadata column.

The filter travels as one jsonb parameter in its normal form (`Visibility.as_json()`):
`[[{"key": k, "op": "eq" | "contains", "value": v}, ...], ...]`, any branch whose conditions
all hold. The statement text is the same for every filter, so nothing a handler returns is
ever written into SQL; a NULL parameter means no filter. Each aggregate's sql.py puts this
condition into its own statements (column and placeholder style are fixed there).
"""

from __future__ import annotations

# A key that is missing makes its condition NULL; coalesce turns that into "does not hold". The
# parentheses matter: -> and @> bind equally, left to right.
_VISIBLE = (
    "({filter}::jsonb IS NULL OR EXISTS ("
    "SELECT 1 FROM jsonb_array_elements({filter}::jsonb) AS auth_branch (conditions) "
    "WHERE NOT EXISTS ("
    "SELECT 1 FROM jsonb_array_elements(auth_branch.conditions) AS auth_condition (c) "
    "WHERE NOT coalesce(CASE auth_condition.c ->> 'op' "
    "WHEN 'eq' THEN ({metadata} -> (auth_condition.c ->> 'key')) = (auth_condition.c -> 'value') "
    "WHEN 'contains' THEN jsonb_typeof({metadata} -> (auth_condition.c ->> 'key')) = 'array' "
    "AND ({metadata} -> (auth_condition.c ->> 'key')) @> (auth_condition.c -> 'value') "
    "END, false))))"
)


def visible_condition(metadata_column: str, placeholder: str) -> str:
    """The condition for `metadata_column`, with the filter at `placeholder` (used twice: with
    positional `%s`, pass the parameter twice). Both arguments are constants of the caller."""
    return _VISIBLE.format(metadata=metadata_column, filter=placeholder)
