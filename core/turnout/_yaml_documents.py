"""YAML documents with the line each starts on, duplicate keys refused.

A module of its own so that PyYAML is imported when a component file is
read, not by every process that imports Turnout.
"""

from __future__ import annotations

from typing import Any

import yaml


class YamlProblem(ValueError):
    """Text that is not valid YAML; the message says where and why."""


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (PyYAML would silently keep the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            line = key_node.start_mark.line + 1
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first at line {first})", key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    detail = f"{problem} ({context})" if context else problem
    return f"not valid YAML{where}: {detail}"


def load_documents(text: str) -> list[tuple[int, Any]]:
    """The non-empty documents of ``text``, each with its first line; ``YamlProblem`` if it is not YAML."""
    loader = _Loader(text)
    documents: list[tuple[int, Any]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            document = loader.construct_document(node)
            if document is not None:
                documents.append((node.start_mark.line + 1, document))
    except yaml.YAMLError as exc:
        raise YamlProblem(_yaml_problem(exc)) from exc
    finally:
        loader.dispose()
    return documents
