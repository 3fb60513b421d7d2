"""What both dialects share: a loaded definition, its errors, and the run settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from turnout._errors import InvalidArgument, TurnoutError


@dataclass(frozen=True)
class Definition:
    """A parsed, validated Serverless Workflow definition, ready to :func:`register`.

    ``document`` is the raw mapping as read (never mutated); ``source`` is the
    file it came from, when it came from a file, so errors can name it.
    """

    name: str
    version: str
    namespace: str
    dialect: Literal["1.0", "0.8"]
    document: dict[str, Any] = field(repr=False, compare=True)
    source: str | None = None


class DefinitionError(InvalidArgument):
    """A definition that cannot run, with every problem found: where, and what is expected.

    ``problems`` is a list of ``(json_pointer, message)``; ``source`` the file,
    when known. Raised at load time, so nothing starts half-valid.
    """

    def __init__(self, problems: Sequence[tuple[str, str]], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        self.field = "definition"
        self.value = source
        self.expected = "; ".join(f"{path or '/'}: {message}" for path, message in self.problems)
        where = f"'{source}'" if source else "(no file)"
        lines = "\n".join(f"  {path or '/'}: {message}" for path, message in self.problems)
        count = len(self.problems)
        TurnoutError.__init__(
            self, f"invalid workflow definition {where}: {count} problem{'s' if count != 1 else ''}\n{lines}"
        )


class Settings(BaseModel):
    """How declarative workflows reach the outside world (deployment settings, not definition).

    ``endpoints`` rewrites URL prefixes before a request leaves (``{"https://petstore.swagger.io":
    "http://127.0.0.1:8765"}``) for tests and proxies; the history keeps the
    URL the definition wrote. ``timeout`` bounds each outbound HTTP request,
    in seconds. ``sinks`` are URLs to which every emitted CloudEvent is
    POSTed in structured mode. ``secrets`` is what ``$secrets`` holds.
    """

    model_config = ConfigDict(frozen=True)

    endpoints: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0)
    sinks: list[str] = Field(default_factory=list)
    secrets: dict[str, Any] = Field(default_factory=dict)
