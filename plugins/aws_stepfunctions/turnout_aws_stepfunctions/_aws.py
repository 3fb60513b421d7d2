"""boto3 behind the event loop: a thread pool, throttling retries, and AWS errors made Turnout errors.

boto3 is blocking, so every call runs on a small thread pool owned by the
component (boto3 clients are thread-safe; sessions are not, so the session
is only used while building the client). botocore's own retries are off:
throttling is retried here, on the event loop, with exponential back-off and
jitter, and every other failure is translated at once, so that no botocore
exception ever reaches a Turnout caller.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.loaders import Loader, create_loader

from turnout import EngineError, TurnoutError

from ._metadata import StepFunctionsMetadata

log = logging.getLogger("turnout.aws.stepfunctions")

POOL_SIZE = 10
"""Threads (and HTTP connections) per component: blocking boto3 calls never run on the event loop."""

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
    }
)
"""AWS error codes that mean "slow down": retried with back-off, never reported at once."""

DEFAULT_SESSION_NAME = "turnout"

ErrorMap = Mapping[str, Callable[[ClientError], TurnoutError]]
"""AWS error code -> the Turnout error that code means for one particular call."""


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError (``ExecutionDoesNotExist``...), or '' when the server gave none."""
    return str(exc.response.get("Error", {}).get("Code") or "")


def error_message(exc: ClientError) -> str:
    """The server's message, without botocore's "An error occurred (...) when calling ..." wrapping."""
    return str(exc.response.get("Error", {}).get("Message") or exc)


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


_LOADER: Loader | None = None


def _core_session() -> botocore.session.Session:
    # One loader for every component of the process: botocore then parses its JSON
    # service models once, not once per component (which is most of a client's cost).
    global _LOADER
    if _LOADER is None:
        _LOADER = create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return core


def make_session(metadata: StepFunctionsMetadata) -> boto3.Session:
    """A boto3 session with the component's credentials; the default chain when none are set.

    With ``assumeRoleArn``, the session's credentials are those of the role,
    fetched through STS on first use and refreshed before they expire, so a
    long-running runtime never works with stale keys. STS is reached at its
    default regional endpoint (``AWS_ENDPOINT_URL_STS`` overrides it, as for
    every boto3 client).
    """
    base = boto3.Session(
        botocore_session=_core_session(),
        aws_access_key_id=metadata.access_key,
        aws_secret_access_key=metadata.secret_key.get_secret_value() if metadata.secret_key else None,
        aws_session_token=metadata.session_token.get_secret_value() if metadata.session_token else None,
        region_name=metadata.region,
    )
    if metadata.assume_role_arn is None:
        return base
    role_arn = metadata.assume_role_arn
    session_name = metadata.session_name or DEFAULT_SESSION_NAME
    sts = base.client("sts", region_name=metadata.region)

    def refresh() -> dict[str, str]:
        found = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        return {
            "access_key": found["AccessKeyId"],
            "secret_key": found["SecretAccessKey"],
            "token": found["SessionToken"],
            "expiry_time": found["Expiration"].isoformat(),
        }

    core = _core_session()
    # botocore has no public setter for a session's credentials; this private
    # attribute is what botocore's own assume-role provider ends up filling.
    core._credentials = DeferredRefreshableCredentials(refresh_using=refresh, method="sts-assume-role")
    core.set_config_variable("region", metadata.region)
    return boto3.Session(botocore_session=core)


def make_client(session: boto3.Session, metadata: StepFunctionsMetadata) -> Any:
    """The Step Functions client: botocore's retries off (ours apply), one connection per pool thread."""
    config = Config(
        region_name=metadata.region,
        retries={"total_max_attempts": 1},
        max_pool_connections=POOL_SIZE,
        connect_timeout=10,
        read_timeout=70,
        user_agent_extra="turnout-aws-stepfunctions",
    )
    return session.client("stepfunctions", endpoint_url=metadata.endpoint, config=config)


class AwsCalls:
    """Runs Step Functions API calls off the event loop and turns every failure into a Turnout error.

    ``call(operation, errors=..., **parameters)`` returns boto3's answer. A
    throttling error is retried up to ``max_attempts`` times with exponential
    back-off (``base_delay`` doubling up to ``max_delay``, with jitter); an
    error code listed in ``errors`` becomes the error the caller chose (for
    example ``ExecutionDoesNotExist`` -> InstanceNotFound); anything else
    becomes :class:`turnout.EngineError`, retryable for server errors,
    throttling and lost connections.
    """

    def __init__(
        self,
        client: Any,
        component_type: str,
        *,
        pool: ThreadPoolExecutor | None = None,
        max_attempts: int = 6,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.component_type = component_type
        self._pool = pool or ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="turnout-sfn")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): exponential, capped, jittered."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # "equal jitter": never less than half

    async def call(self, operation: str, *, errors: ErrorMap | None = None, **parameters: Any) -> Any:
        """Call ``client.<operation>(**parameters)`` on the pool; see the class docstring for errors."""
        loop = asyncio.get_running_loop()
        method = getattr(self.client, operation)
        attempt = 1
        while True:
            try:
                return await loop.run_in_executor(self._pool, functools.partial(method, **parameters))
            except ClientError as exc:
                code = error_code(exc)
                if code in THROTTLING_CODES and attempt < self.max_attempts:
                    delay = self.backoff(attempt)
                    log.debug("%s throttled (%s), retry %d in %.2fs", operation, code, attempt, delay)
                    attempt += 1
                    await self._sleep(delay)
                    continue
                if errors and code in errors:
                    raise errors[code](exc) from exc
                raise self._engine_error(operation, exc, attempt) from exc
            except BotoCoreError as exc:  # no connection, no credentials, a parameter botocore refused
                raise self._local_error(operation, exc) from exc
            except RuntimeError as exc:
                if "shutdown" in str(exc):  # the pool is closed: the component was closed
                    raise EngineError(
                        self.component_type, operation, "the component is closed", retryable=False
                    ) from exc
                raise

    def _engine_error(self, operation: str, exc: ClientError, attempts: int) -> EngineError:
        code = error_code(exc) or "UnknownError"
        status = _status(exc)
        reason = f"{code}: {error_message(exc)}"
        if code in THROTTLING_CODES:
            return EngineError(
                self.component_type,
                operation,
                f"still throttled by AWS after {attempts} attempts ({reason}); lower the call rate or "
                "ask AWS for a higher Step Functions quota",
                retryable=True,
            )
        if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            reason += "; check the credentials and that their IAM policy allows states:" + _action(operation)
        elif code in ("InvalidSignatureException", "ExpiredTokenException", "ExpiredToken"):
            reason += "; check accessKey / secretKey / sessionToken (or refresh temporary credentials)"
        return EngineError(self.component_type, operation, reason, retryable=status >= 500 or status == 429)

    def _local_error(self, operation: str, exc: Exception) -> EngineError:
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            reason = (
                f"{exc}: set accessKey and secretKey in the component, or configure the AWS default "
                "credential chain (environment, shared config file, instance or pod role)"
            )
            return EngineError(self.component_type, operation, reason, retryable=False)
        if isinstance(exc, NoRegionError):
            return EngineError(self.component_type, operation, f"{exc}: set region", retryable=False)
        retryable = isinstance(exc, BotoConnectionError | HTTPClientError)
        where = f" at {self.client.meta.endpoint_url}" if retryable else ""
        return EngineError(
            self.component_type, operation, f"{type(exc).__name__}{where}: {exc}", retryable=retryable
        )

    async def paginate(
        self, operation: str, key: str, *, errors: ErrorMap | None = None, **parameters: Any
    ) -> list[Any]:
        """Every item under ``key`` of every page of a paged call (``nextToken``)."""
        items: list[Any] = []
        token = None
        while True:
            extra = {"nextToken": token} if token else {}
            page = await self.call(operation, errors=errors, **parameters, **extra)
            items.extend(page.get(key, []))
            token = page.get("nextToken")
            if not token:
                return items

    async def close(self) -> None:
        """Stop the pool (waiting for calls in flight) and close the client's connections."""
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        closer = getattr(self.client, "close", None)
        if closer is not None:
            closer()


def _action(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))
