"""The outbox and the dispatcher against a real redis-server and the reference sink over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from gateway.keys import OutboxKeys
from gateway.localredis import LocalRedis
from gateway.ordersink.examples import answered_call
from gateway.ordersink.sink import OrderSink
from gateway.records.client import OrderSystemClient
from gateway.records.dispatcher import Dispatcher, DispatcherConfigError, RetryPolicy
from gateway.records.metrics import OutboxMetrics
from gateway.records.model import CallRecord
from gateway.records.outbox import (
    Backlog,
    Outbox,
    Via,
    backlog,
    dead_letters,
    requeue_dead_letter,
)
from gateway.records.spool import Spool
from tests.conftest import SINK_TOKEN

TOKEN = SINK_TOKEN  # what the shared ``sink`` fixture expects
FAST_RETRY = RetryPolicy(base_s=0.02, cap_s=0.1)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> OutboxMetrics:
    return OutboxMetrics(registry)


def _client(sink: OrderSink) -> OrderSystemClient:
    return OrderSystemClient(sink.url, 2.0, "ORDER_TOKEN", environ={"ORDER_TOKEN": TOKEN})


async def _dispatch_until_empty(
    redis: aioredis.Redis, sink: OrderSink, *, dispatchers: int = 1, metrics: OutboxMetrics | None = None
) -> None:
    """Run dispatchers until the outbox holds nothing but dead letters."""
    async with _client(sink) as client:
        running = [
            Dispatcher(redis, client, consumer=f"d{i}", batch_size=20, claim_idle_ms=5000, retry=FAST_RETRY,
                       block_ms=50, metrics=metrics)
            for i in range(dispatchers)
        ]  # fmt: skip
        tasks = [asyncio.create_task(d.run()) for d in running]
        try:
            async with asyncio.timeout(20):
                while (await backlog(redis)).entries:  # noqa: ASYNC110 - Redis has no "empty" event
                    await asyncio.sleep(0.02)
        finally:
            for dispatcher in running:
                dispatcher.stop()
            await asyncio.gather(*tasks)


def _keys(records: Sequence[CallRecord]) -> list[str]:
    return [record.idempotency_key for record in records]


async def test_records_reach_the_order_system_exactly_once_with_several_dispatchers(
    redis_client: aioredis.Redis,
    sink: OrderSink,
    tmp_path: Path,
    registry: CollectorRegistry,
    metrics: OutboxMetrics,
) -> None:
    outbox = Outbox(redis_client, Spool(tmp_path / "spool.jsonl"), metrics=metrics)
    records = [answered_call(n) for n in range(300)]
    for start in range(0, 300, 50):
        assert await outbox.append_many(records[start : start + 50]) is Via.REDIS
    await _dispatch_until_empty(redis_client, sink, dispatchers=3, metrics=metrics)
    assert sorted(sink.store.delivery_keys()) == sorted(_keys(records))
    assert sink.store.counts()["duplicate_posts_absorbed"] == 0
    assert await backlog(redis_client) == Backlog(entries=0, pending=0, dead_letters=0)
    assert registry.get_sample_value("hotline_records_delivered_total", {"result": "created"}) == 300


async def test_a_record_appended_twice_enters_the_stream_once(
    redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    outbox = Outbox(redis_client, Spool(tmp_path / "spool.jsonl"))
    await outbox.append(answered_call(1))
    await outbox.append(answered_call(1))
    await outbox.append_many([answered_call(1), answered_call(2)])
    assert (await backlog(redis_client)).entries == 2


async def test_a_refused_record_is_dead_lettered_listed_counted_and_can_be_requeued(
    redis_client: aioredis.Redis,
    sink: OrderSink,
    tmp_path: Path,
    registry: CollectorRegistry,
    metrics: OutboxMetrics,
) -> None:
    keys = OutboxKeys()
    outbox = Outbox(redis_client, Spool(tmp_path / "spool.jsonl"), metrics=metrics)
    refused, fine = answered_call(1), answered_call(2)
    await outbox.append_many([refused, fine])
    await redis_client.xadd(keys.stream, {"junk": "1"})  # not written by an Outbox
    sink.faults.status, sink.faults.remaining = 400, 1  # the first POST is refused
    await _dispatch_until_empty(redis_client, sink, metrics=metrics)

    letters = await dead_letters(redis_client)
    assert sorted(letter.reason for letter in letters) == ["http_400", "malformed_entry"]
    bad = next(letter for letter in letters if letter.reason == "http_400")
    assert bad.idempotency_key == refused.idempotency_key
    assert bad.status == 400
    assert (bad.record or {}).get("record_id") == refused.record_id
    assert registry.get_sample_value("hotline_records_dead_lettered_total") == 2
    assert registry.get_sample_value("hotline_records_dead_letters") == 2
    assert sink.store.delivery_keys() == [fine.idempotency_key]

    assert await requeue_dead_letter(redis_client, bad.entry_id)
    assert not await requeue_dead_letter(redis_client, bad.entry_id)
    await _dispatch_until_empty(redis_client, sink, metrics=metrics)
    assert sorted(sink.store.delivery_keys()) == sorted(_keys([refused, fine]))
    assert [letter.reason for letter in await dead_letters(redis_client)] == ["malformed_entry"]


async def test_records_are_spooled_while_redis_is_down_and_moved_in_once_it_is_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    registry = CollectorRegistry()
    metrics = OutboxMetrics(registry)
    with LocalRedis() as server:
        redis = aioredis.Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            outbox = Outbox(redis, spool, metrics=metrics)
            await outbox.append(answered_call(0))
            server.stop()
            assert await outbox.append_many([answered_call(n) for n in range(1, 4)]) is Via.SPOOL
            assert await outbox.append(answered_call(0)) is Via.SPOOL  # Redis has it already
            assert spool.has_records()
            server.start()
            assert await outbox.recover_spool() == 3
            assert await outbox.recover_spool() == 0
            assert not spool.has_records()
            assert (await backlog(redis)).entries == 4
        finally:
            await redis.aclose()
    assert registry.get_sample_value("hotline_records_appended_total", {"via": "spool"}) == 4
    assert registry.get_sample_value("hotline_records_spool_recovered_total") == 3


async def test_claim_idle_shorter_than_a_retry_is_refused(
    sink: OrderSink, redis_client: aioredis.Redis
) -> None:
    async with _client(sink) as client:
        with pytest.raises(DispatcherConfigError, match="claim_idle_ms=1000"):
            Dispatcher(redis_client, client, claim_idle_ms=1000, retry=RetryPolicy(cap_s=30))
    # The defaults fit the config's default order_system.timeout_s of 5 s.
    async with OrderSystemClient(sink.url, 5.0, "ORDER_TOKEN", environ={"ORDER_TOKEN": TOKEN}) as client:
        Dispatcher(redis_client, client)


async def test_a_redis_client_speaking_resp3_works_the_same(
    redis_server: LocalRedis, redis_client: aioredis.Redis, sink: OrderSink, tmp_path: Path
) -> None:
    resp3 = aioredis.Redis.from_url(redis_server.url, protocol=3, decode_responses=True)
    try:
        records = [answered_call(n) for n in range(30)]
        await Outbox(resp3, Spool(tmp_path / "spool.jsonl")).append_many(records)
        sink.faults.status, sink.faults.remaining = 400, 1
        await _dispatch_until_empty(resp3, sink)
        assert len(sink.store.delivery_keys()) == 29
        (letter,) = await dead_letters(resp3)
        assert letter.status == 400
    finally:
        await resp3.aclose()
