"""The server's settings, and the API token read from the environment as Dapr reads it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .._errors import InvalidArgument

TOKEN_HEADER = "dapr-api-token"
"""The header that carries the API token (Dapr's name, so Dapr clients send it unchanged)."""

TOKEN_ENV = ("TURNOUT_API_TOKEN", "DAPR_API_TOKEN")
"""Where the token is read from, first found wins (Dapr's sidecar reads DAPR_API_TOKEN)."""

DEFAULT_MAX_BODY = 4 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_WAIT = 300.0
DEFAULT_WAIT = 30.0


def token_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The API token from TURNOUT_API_TOKEN, else DAPR_API_TOKEN; None (no token required) when unset."""
    env = os.environ if environ is None else environ
    for name in TOKEN_ENV:
        value = env.get(name)
        if value:
            return value
    return None


@dataclass(frozen=True)
class ServerConfig:
    """What the application enforces, whichever way it is served.

    ``api_token`` is kept out of ``repr`` so that no log line or traceback
    that shows the config shows the token.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY
    """Larger request bodies are refused with 413."""
    max_json_depth: int = DEFAULT_MAX_DEPTH
    """Deeper nesting of arrays and objects in a payload is refused with 400."""
    max_wait_seconds: float = DEFAULT_MAX_WAIT
    """The longest long-poll ``wait`` a client may ask for."""
    api_token: str | None = field(default=None, repr=False)
    """When set, every route but health needs this value in the ``dapr-api-token`` header."""

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise InvalidArgument("max body size", self.max_body_bytes, "a positive number of bytes")
        if self.max_json_depth < 1:
            raise InvalidArgument("max JSON depth", self.max_json_depth, "a positive integer")
        if self.max_wait_seconds <= 0:
            raise InvalidArgument("max wait", self.max_wait_seconds, "a positive number of seconds")
        if self.api_token is not None and not self.api_token:
            raise InvalidArgument("api token", "", "a non-empty token, or none at all")
