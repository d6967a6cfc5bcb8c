"""Shared fixtures: a real redis-server for the session, a killable one for fault tests, and a fresh
namespace per test so tests never see each other's keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from podium.bus.connection import connect
from podium.bus.keys import Keys
from tests.support import CI, INSTALL_HINT, REDIS_CLI, REDIS_SERVER, RedisServer, no_redis_server


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI, a machine without redis-server (or redis-cli) stops the run at once, loudly."""
    if CI and (REDIS_SERVER is None or REDIS_CLI is None):
        missing = "redis-server" if REDIS_SERVER is None else "redis-cli"
        pytest.exit(f"CI is set but {missing} is not on PATH: {INSTALL_HINT}", returncode=3)


# The suite never uses a real model: a provider's key or URL in the developer's environment would
# turn offline tests (and the agent processes they start) into calls to it.
for _var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "PODIUM_LLM_PROVIDER", "PODIUM_MODEL"):
    os.environ.pop(_var, None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A session-wide redis-server on a free loopback port, with no persistence."""
    if REDIS_SERVER is None:
        no_redis_server()
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def keys(namespace: str) -> Keys:
    return Keys(namespace)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator:
    """An async client on the session's real Redis."""
    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def killable_redis() -> Iterator[RedisServer]:
    """A private redis-server with append-only persistence (fsync always) that a test may kill and restart."""
    if REDIS_SERVER is None:
        no_redis_server()
    server = RedisServer(persistent=True).start()
    yield server
    server.close()
