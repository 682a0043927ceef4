"""Shared fixtures: a real redis-server per test session, flushed per test; the reference order system."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings

from gateway.localredis import LocalRedis
from gateway.ordersink.sink import OrderSink

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TRACES = FIXTURES / "ami-traces"
SINK_TOKEN = "sink-test-token"

# Every hypothesis test: no per-example deadline and no too-slow health check. Both are timings;
# on a busy 2-core machine they fail tests whose examples are simply slow.
settings.register_profile("hotline", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hotline")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        yield server


@pytest.fixture
async def redis_client(redis_server: LocalRedis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=False)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[OrderSink]:
    """The reference order system on loopback, accepting ``SINK_TOKEN``."""
    async with OrderSink(tmp_path / "orders.sqlite3", SINK_TOKEN) as running:
        yield running
