"""Serverless Workflow 0.8 data flow: expressions, filters and merging.

0.8 merges action results and event data into the state data. The spec
defines merging for two values of one type (objects: key by key, the new
value winning; arrays: concatenated without duplicates; numbers and strings:
overwritten) and forbids mixing arrays and objects. What it leaves open is
decided here, once, and documented in docs/declarative-0.8.md:

- objects merge deeply (a nested object is merged, not replaced);
- a null result changes nothing (a function with no result, a sysout log);
- anything fills a null or missing place;
- a non-object result with no ``toStateData``, merged into object state data,
  goes back where the ``results`` (or event ``data``) path took it from:
  ``results: ${ .greeting }`` adds ``greeting`` to the state data;
- otherwise, two values that do not merge (a scalar and anything, an array
  and an object) are not mixed: the new value replaces the old one, as the
  spec says for numbers and strings.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ._expressions import ExpressionError, evaluate, is_expression, unwrap
from ._v08_model import Workflow08
from ._v08_parse import JQ_VARIABLES, expand_functions


class MergeError(ValueError):
    """A ``toStateData`` or ``outputCollection`` path that goes through a value that is no container."""

    def __init__(self, where: str, target: Any, value: Any) -> None:
        super().__init__(
            f"{where}: cannot put data inside a {_kind(target)} of the state data; "
            "expected a path through objects (and arrays) only"
        )
        self.where = where


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "JSON object"
    if isinstance(value, list):
        return "JSON array"
    return f"JSON {type(value).__name__}".replace("str", "string").replace("NoneType", "null")


def merge(target: Any, value: Any, *, where: str = "") -> Any:
    """``value`` merged into ``target`` by the rules above; inputs are not modified."""
    if value is None:
        return copy.deepcopy(target)
    if target is None:
        return copy.deepcopy(value)
    if isinstance(target, Mapping) and isinstance(value, Mapping):
        merged = copy.deepcopy(dict(target))
        for key, item in value.items():
            merged[key] = (
                merge(merged.get(key), item, where=f"{where}/{key}") if key in merged else copy.deepcopy(item)
            )
        return merged
    if isinstance(target, list) and isinstance(value, list):
        merged_list = copy.deepcopy(target)
        for item in value:
            if item not in merged_list:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(value)


class Expressions:
    """Evaluates a definition's jq with its ``$CONST``, ``$SECRETS`` and ``$WORKFLOW``.

    ``fn:name`` calls of expression functions are expanded first; both bare
    and ``${ }``-wrapped expressions are accepted wherever 0.8 expects one.
    """

    def __init__(self, workflow: Workflow08, *, secrets: Mapping[str, Any], instance_id: str) -> None:
        self.workflow = workflow
        self.variables = {
            "CONST": workflow.constants,
            "SECRETS": dict(secrets),
            "WORKFLOW": {"id": workflow.id, "instanceId": instance_id, "version": workflow.version},
        }
        assert set(self.variables) == set(JQ_VARIABLES)

    def _text(self, expression: str, where: str) -> str:
        text = unwrap(expression)
        try:
            return expand_functions(text if text is not None else expression, self.workflow)
        except ValueError as exc:
            raise ExpressionError(expression, where, str(exc)) from None

    def value(self, expression: str, data: Any, *, where: str) -> Any:
        """The first result of ``expression`` over ``data`` (None when there is none)."""
        return evaluate(self._text(expression, where), data, self.variables, where=where)

    def condition(self, expression: str, data: Any, *, where: str) -> bool:
        """A condition holds when its result is neither false nor null (jq truthiness)."""
        result = self.value(expression, data, where=where)
        return result is not None and result is not False

    def render(self, value: Any, data: Any, *, where: str, bare: bool = False) -> Any:
        """Every ``${ }`` string inside ``value`` evaluated; with ``bare``, ``.path`` strings too."""
        if isinstance(value, str):
            if is_expression(value):
                return self.value(value, data, where=where)
            if bare and value.startswith("."):
                try:
                    return self.value(value, data, where=where)
                except ExpressionError:
                    return value  # a text that merely starts with a dot
            return value
        if isinstance(value, Mapping):
            return {k: self.render(v, data, where=f"{where}/{k}", bare=bare) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, data, where=f"{where}/{i}", bare=bare) for i, v in enumerate(value)]
        return value

    def path(self, expression: str, data: Any, *, where: str) -> list[Any]:
        """The location ``expression`` names in ``data`` (jq ``path()``), e.g. ``.a.b`` -> ``["a", "b"]``."""
        text = self._text(expression, where)
        try:
            found = evaluate(f"path({text})", data, self.variables, where=where)
        except ExpressionError as exc:
            raise ExpressionError(
                expression, where, f"expected a path such as '.a.b' that says where data goes ({exc.reason})"
            ) from None
        if not isinstance(found, list):
            raise ExpressionError(
                expression, where, "expected a path such as '.a.b' that says where data goes"
            )
        return found

    def is_path(self, expression: str) -> bool:
        """Whether ``expression`` is a plain path (``.a``, ``.a.b``) rather than a computation."""
        try:
            found = evaluate(f"path({self._text(expression, '')})", None, self.variables)
        except ExpressionError:
            return False
        return isinstance(found, list) and bool(found)


def get_path(data: Any, path: list[Any]) -> Any:
    """The value at ``path`` in ``data``, None when any step is missing."""
    for step in path:
        if isinstance(data, Mapping) and isinstance(step, str):
            data = data.get(step)
        elif isinstance(data, list) and isinstance(step, int) and -len(data) <= step < len(data):
            data = data[step]
        else:
            return None
    return data


def set_path(data: Any, path: list[Any], value: Any, *, where: str) -> Any:
    """A copy of ``data`` with ``value`` at ``path``, creating the objects on the way."""
    if not path:
        return copy.deepcopy(value)
    step, rest = path[0], path[1:]
    if data is None:
        data = [] if isinstance(step, int) else {}
    if isinstance(data, Mapping) and isinstance(step, str):
        updated = dict(data)
        updated[step] = set_path(data.get(step), rest, value, where=where)
        return updated
    if isinstance(data, list) and isinstance(step, int):
        updated_list = list(data)
        while len(updated_list) <= step:
            updated_list.append(None)
        updated_list[step] = set_path(updated_list[step], rest, value, where=where)
        return updated_list
    raise MergeError(where, data, {step: value})


def merge_into(
    exprs: Expressions,
    state_data: Any,
    value: Any,
    *,
    to_state_data: str | None,
    selected_by: str | None,
    where: str,
) -> Any:
    """Merge an action result (or event data) into the state data, as 0.8 and our rules say.

    ``selected_by`` is the ``results``/``data`` filter that produced ``value``:
    a non-object value with no ``toStateData`` goes back to that path.
    """
    if value is None:
        return state_data
    target_expr = to_state_data
    if (
        target_expr is None
        and selected_by is not None
        and isinstance(state_data, Mapping)
        and not isinstance(value, Mapping)
        and exprs.is_path(selected_by)
    ):
        target_expr = selected_by
    if target_expr is None:
        return merge(state_data, value, where=where)
    path = exprs.path(target_expr, state_data, where=where)
    current = get_path(state_data, path)
    return set_path(state_data, path, merge(current, value, where=where), where=where)
