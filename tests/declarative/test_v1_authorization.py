"""``$authorization``: the resolved authentication of a call task, and what of it reaches the history."""

from __future__ import annotations

import base64
import json

from turnout.declarative import Settings

from .conftest import Runner
from .http_stub import HttpStub

DEFINITION = """
document: {dsl: '1.0.3', namespace: test, name: authorization, version: '1.0.0'}
use:
  authentications:
    vault:
      basic:
        use: httpbinCredentials
do:
  - bearer:
      call: http
      with:
        method: get
        endpoint:
          uri: https://httpbin.org/bearer
          authentication: {bearer: {token: '${ .token }'}}
        headers:
          X-Scheme: ${ $authorization.scheme }
      output:
        as: '{ bearer: $authorization }'
  - inlineBasic:
      call: http
      with:
        method: get
        endpoint:
          uri: https://httpbin.org/basic-auth/ann/s3cret
          authentication: {basic: {username: ann, password: s3cret}}
      output:
        as: '$input + { basic: $authorization }'
  - fromSecret:
      call: http
      with:
        method: get
        endpoint: {uri: 'https://httpbin.org/basic-auth/bob/hidden', authentication: {use: vault}}
      output:
        as: '$input'
      export:
        as: '{ secret: $authorization }'
  - openapi:
      call: openapi
      with:
        document: {endpoint: 'https://petstore.swagger.io/v2/swagger.json'}
        operationId: getPetById
        parameters: {petId: 1}
        authentication: {bearer: {token: pet-token}}
      output:
        as: '$input + { openapi: $authorization, secret: $context.secret }'
  - plain:
      set:
        none: ${ $authorization }
      output:
        as: '$input + .'
"""


async def test_authorization_describes_the_call_s_resolved_policy(
    running: Runner, stub: HttpStub, settings: Settings
) -> None:
    with_secret = settings.model_copy(
        update={"secrets": {"httpbinCredentials": {"username": "bob", "password": "hidden"}}}
    )
    async with running(DEFINITION, settings_=with_secret) as client:
        iid = await client.start("authorization", input={"token": "t-42"})
        state = await client.wait(iid, timeout=30)
        history = await client.history(iid)
    assert state.output == {
        "bearer": {"scheme": "Bearer", "parameter": "t-42"},
        "basic": {"scheme": "Basic", "parameter": base64.b64encode(b"ann:s3cret").decode()},
        "openapi": {"scheme": "Bearer", "parameter": "pet-token"},
        # From a secret: the scheme only. The value is read by the activity and never enters the history.
        "secret": {"scheme": "Basic", "parameter": None},
        "none": None,  # a task without authentication
    }, state.failure
    assert stub.received("/bearer")[-1].headers["X-Scheme"] == "Bearer"  # the task's own fields see it too
    recorded = json.dumps([event.model_dump(mode="json") for event in history])
    assert base64.b64encode(b"bob:hidden").decode() not in recorded
