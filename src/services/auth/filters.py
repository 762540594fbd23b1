"""What an auth handler's filter lets a caller see, and how records are matched against it.

A handler returns a filter on a record's metadata, with the LangGraph API's grammar:

- `{"key": value}` or `{"key": {"$eq": value}}`: the metadata's `key` equals `value` (JSON
  equality: any JSON value, objects and lists included; 1 equals 1.0, true does not equal 1);
- `{"key": {"$contains": value}}`: the metadata's `key` is a list holding `value`; with a list,
  `{"$contains": [a, b]}`, holding every one of them (Postgres's jsonb containment `@>`);
- several keys: all of them must hold;
- `{"$or": [filter, ...]}`, `{"$and": [filter, ...]}`: any / all of the filters, nested at most
  two levels deep, as the LangGraph runtime accepts them; next to other keys they are ANDed.

The filter is turned into a `Visibility`: its disjunctive normal form, a list of branches each
a list of conditions. That form is data, so the same constant SQL statement applies every filter
(src/services/auth/sql.py, with the form as one jsonb parameter) and `matches` applies it to
in-memory records with the same results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from src.services.auth.errors import AuthModuleError
from src.services.serialization import to_jsonable
from src.services.validation import json_contains

Operator = Literal["eq", "contains"]
# The deepest nesting of $or/$and the LangGraph runtime accepts.
MAX_NESTING = 2
# A filter's normal form grows with the product of its $or lists: more branches than this is
# a filter no SQL statement should evaluate per row.
MAX_BRANCHES = 64


@dataclass(frozen=True)
class Condition:
    key: str
    op: Operator
    value: Any  # JSON; for "contains", a list


@dataclass(frozen=True)
class Visibility:
    """The records a caller may see: metadata satisfying every condition of at least one branch."""

    branches: tuple[tuple[Condition, ...], ...]

    def matches(self, metadata: Mapping[str, Any] | None) -> bool:
        document = metadata or {}
        return any(all(_holds(condition, document) for condition in branch) for branch in self.branches)

    def as_json(self) -> list[list[dict[str, Any]]]:
        """The parameter of the SQL condition in src/services/auth/sql.py."""
        return [[{"key": c.key, "op": c.op, "value": c.value} for c in branch] for branch in self.branches]

    def containments(self) -> list[dict[str, Any]]:
        """Per branch, a jsonb document the metadata of every record that branch lets through contains
        (`@>`): equality and list membership both imply containment. The SQL tests this cheap condition
        (which an index can serve) before the exact one, and so skips the exact one for most hidden rows.
        A key a branch names twice is left out (its conditions may not merge into one document)."""
        documents = []
        for branch in self.branches:
            keys = [condition.key for condition in branch]
            documents.append({c.key: c.value for c in branch if keys.count(c.key) == 1})
        return documents

    def either(self, other: Visibility) -> Visibility:
        """Records this or `other` lets through."""
        return Visibility(self.branches + other.branches)

    def equalities(self) -> dict[str, Any] | None:
        """{key: value} when this is one branch of equalities only (what a store filter can say), else None."""
        if len(self.branches) != 1 or any(c.op != "eq" for c in self.branches[0]):
            return None
        found: dict[str, Any] = {}
        for condition in self.branches[0]:
            if condition.key in found and not json_equal(found[condition.key], condition.value):
                return None
            found[condition.key] = condition.value
        return found


def equals(key: str, value: Any) -> Visibility:
    return Visibility(((Condition(key, "eq", value),),))


def json_equal(left: Any, right: Any) -> bool:
    """Postgres's jsonb equality: numbers by value, booleans only equal to booleans, objects by keys."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return type(left) is type(right) and left == right


def _holds(condition: Condition, metadata: Mapping[str, Any]) -> bool:
    if condition.key not in metadata:
        return False
    actual = metadata[condition.key]
    if condition.op == "eq":
        return json_equal(actual, condition.value)
    return isinstance(actual, list) and json_contains(actual, condition.value)


def parse_filter(raw: Any, handler: str) -> Visibility | None:
    """A handler's filter as a Visibility; None for an empty one (nothing to filter).

    A filter outside the grammar is the auth module's bug: AuthModuleError (500), naming `handler`.
    """
    if not isinstance(raw, Mapping):
        raise AuthModuleError(f"the auth handler {handler} returned a filter that is not an object")
    if not raw:
        return None
    branches = _normal_form(raw, handler, 0)
    return Visibility(tuple(tuple(branch) for branch in branches))


def _product(left: list[list[Condition]], right: list[list[Condition]], handler: str) -> list[list[Condition]]:
    combined = [a + b for a in left for b in right]
    if len(combined) > MAX_BRANCHES:
        raise AuthModuleError(
            f"the auth handler {handler} returned a filter with more than {MAX_BRANCHES} alternatives once "
            "its $or lists are multiplied out; simplify it"
        )
    return combined


def _groups(value: Any, operator: str, handler: str, depth: int) -> list[Mapping[str, Any]]:
    if depth >= MAX_NESTING:
        raise AuthModuleError(
            f"the auth handler {handler} returned a filter nesting $or/$and more than {MAX_NESTING} levels deep"
        )
    if not isinstance(value, list) or not value or not all(isinstance(group, Mapping) for group in value):
        raise AuthModuleError(
            f"the auth handler {handler} returned a filter whose {operator} is not a non-empty list of filters"
        )
    return value


def _normal_form(raw: Mapping[str, Any], handler: str, depth: int) -> list[list[Condition]]:
    branches: list[list[Condition]] = [[]]
    for key, value in raw.items():
        if not isinstance(key, str):
            raise AuthModuleError(f"the auth handler {handler} returned a filter with a key that is not a string")
        if key == "$or":
            alternatives = [
                branch
                for group in _groups(value, key, handler, depth)
                for branch in _normal_form(group, handler, depth + 1)
            ]
            branches = _product(branches, alternatives, handler)
        elif key == "$and":
            for group in _groups(value, key, handler, depth):
                branches = _product(branches, _normal_form(group, handler, depth + 1), handler)
        else:
            condition = _condition(key, value, handler)
            branches = [[*branch, condition] for branch in branches]
    return branches


def _condition(key: str, value: Any, handler: str) -> Condition:
    if not isinstance(value, Mapping):
        return Condition(key, "eq", to_jsonable(value))
    if len(value) != 1:
        raise AuthModuleError(
            f"the auth handler {handler} returned a filter whose {key!r} is an object with {len(value)} keys; "
            'expected one operator, {"$eq": value} or {"$contains": value} (to match an object, use $eq)'
        )
    operator, operand = next(iter(value.items()))
    if operator == "$eq":
        return Condition(key, "eq", to_jsonable(operand))
    if operator == "$contains":
        wanted = operand if isinstance(operand, list) else [operand]
        return Condition(key, "contains", to_jsonable(wanted))
    raise AuthModuleError(
        f"the auth handler {handler} returned a filter with operator {operator!r} on {key!r}; expected $eq or $contains"
    )
