"""The OpenAPI document fuzzed with schemathesis: no request makes the server fail (5xx).

The server runs on its own loop in a thread (schemathesis calls are blocking);
the box behind it is the security tests' set of fakes, reached with the token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from edge.web.openapi import ROUTES, document
from tests.conftest import BOX_AUTH
from tests.integration.test_web_security import Server, start

pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_dict(document())
STREAMS = ("/api/inputs/stream", "/api/status/stream")  # never end: the browser tests
PUBLIC = {r.path for r in ROUTES if r.public} | {"/"}  # a wrong password is a 401 there


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ready: list[Server] = []
    started, stop = threading.Event(), threading.Event()

    async def serve(tmp: Path) -> None:
        server = await start(tmp)
        ready.append(server)
        started.set()
        await asyncio.to_thread(stop.wait)
        await server.server.stop()

    thread = threading.Thread(
        target=asyncio.run, args=(serve(tmp_path_factory.mktemp("fuzz")),), daemon=True
    )
    thread.start()
    assert started.wait(10)
    yield ready[0].base
    stop.set()
    thread.join(10)


@schema.exclude(path=list(STREAMS)).parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_makes_the_server_fail(case: schemathesis.Case, base_url: str) -> None:
    response = case.call(base_url=base_url, headers=dict(BOX_AUTH), timeout=10)
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    if case.path not in PUBLIC:
        assert response.status_code != 401  # the token is honoured everywhere
