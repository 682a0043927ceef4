"""Fault suite of the record outbox: after every fault the order system holds every record exactly once.

Real redis-server, the reference sink over HTTP on loopback, dispatchers in-process and, for the
SIGKILL case, in a child process. Each test ends with the same accounting: records sent =
records received, each idempotency key stored once, outbox and spool empty, no dead letters.
Duplicate POSTs the sink absorbed (at-least-once delivery) are allowed and counted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from gateway.keys import OutboxKeys
from gateway.localredis import LocalRedis
from gateway.ordersink.examples import answered_call, emergency_handover
from gateway.ordersink.sink import OrderSink
from gateway.records.client import OrderSystemClient
from gateway.records.dispatcher import Dispatcher, RetryPolicy
from gateway.records.metrics import OutboxMetrics
from gateway.records.model import CallRecord
from gateway.records.outbox import Backlog, Outbox, Via, backlog
from gateway.records.spool import Spool
from tests.conftest import SINK_TOKEN

TOKEN_ENV = "FAULT_SUITE_ORDER_TOKEN"
TOKEN = SINK_TOKEN  # what the shared ``sink`` fixture expects
FAST_RETRY = RetryPolicy(base_s=0.05, cap_s=0.2)
CLAIM_IDLE_MS = 1500  # > 1.5 x (one request timeout + retry cap): see Dispatcher
TIMEOUT_S = 0.5


def _calls(count: int, pbx_node: str = "pbx-1") -> list[CallRecord]:
    """Final records, plus an interim one for every tenth call (handed to 120 while still up)."""
    records = [answered_call(n, pbx_node=pbx_node) for n in range(count)]
    return records + [emergency_handover(n, pbx_node=pbx_node) for n in range(0, count, 10)]


@asynccontextmanager
async def _dispatchers(
    redis: aioredis.Redis,
    sink: OrderSink,
    count: int = 2,
    timeout_s: float = TIMEOUT_S,
    metrics: OutboxMetrics | None = None,
) -> AsyncIterator[list[Dispatcher]]:
    async with OrderSystemClient(sink.url, timeout_s, TOKEN_ENV, environ={TOKEN_ENV: TOKEN}) as client:
        running = [
            Dispatcher(redis, client, consumer=f"in-process-{i}", batch_size=25, block_ms=50,
                       claim_idle_ms=CLAIM_IDLE_MS, retry=FAST_RETRY, metrics=metrics)
            for i in range(count)
        ]  # fmt: skip
        tasks = [asyncio.create_task(d.run()) for d in running]
        try:
            yield running
        finally:
            for dispatcher in running:
                dispatcher.stop()
            await asyncio.gather(*tasks)


async def _until_delivered(
    redis: aioredis.Redis, sink: OrderSink, expected: int, within_s: float = 30
) -> None:
    async with asyncio.timeout(within_s):
        while True:
            if sink.store.counts()["deliveries"] >= expected and (await backlog(redis)).entries == 0:
                return
            await asyncio.sleep(0.05)


async def _assert_exactly_once(redis: aioredis.Redis, sink: OrderSink, sent: Sequence[CallRecord]) -> None:
    stored = sink.store.delivery_keys()
    assert len(stored) == len(set(stored)), "a record was stored twice"
    assert set(stored) == {record.idempotency_key for record in sent}, "a record was lost (or invented)"
    counts = sink.store.counts()
    assert counts["deliveries"] == len(sent)
    assert counts["work_orders"] == counts["final_work_orders"] == len({r.record_id for r in sent})
    assert await backlog(redis) == Backlog(entries=0, pending=0, dead_letters=0)
    print(f"sent {len(sent)}, received {counts['deliveries']}, duplicate POSTs absorbed "
          f"{counts['duplicate_posts_absorbed']}")  # fmt: skip


async def _append(outbox: Outbox, records: Sequence[CallRecord], chunk: int = 20) -> None:
    for start in range(0, len(records), chunk):
        assert await outbox.append_many(records[start : start + chunk]) is Via.REDIS


async def test_order_system_down_for_a_while(
    redis_client: aioredis.Redis, sink: OrderSink, tmp_path: Path
) -> None:
    records = _calls(200)
    outbox = Outbox(redis_client, Spool(tmp_path / "spool.jsonl"))
    await sink.stop()
    async with _dispatchers(redis_client, sink):
        await _append(outbox, records)
        await asyncio.sleep(1.0)
        assert (await backlog(redis_client)).pending > 0  # read, failing, retrying, held
        await sink.start()
        await _until_delivered(redis_client, sink, len(records))
    await _assert_exactly_once(redis_client, sink, records)


async def test_order_system_answering_500(
    redis_client: aioredis.Redis, sink: OrderSink, tmp_path: Path
) -> None:
    records = _calls(200)
    registry = CollectorRegistry()
    metrics = OutboxMetrics(registry)
    sink.faults.status, sink.faults.remaining = 500, 300
    async with _dispatchers(redis_client, sink, metrics=metrics):
        await _append(Outbox(redis_client, Spool(tmp_path / "spool.jsonl")), records)
        await _until_delivered(redis_client, sink, len(records))
    assert sink.faults.remaining == 0
    assert registry.get_sample_value("hotline_records_delivery_failures_total", {"reason": "http_500"}) == 300
    await _assert_exactly_once(redis_client, sink, records)


async def test_order_system_answering_slowly(
    redis_client: aioredis.Redis, sink: OrderSink, tmp_path: Path
) -> None:
    records = _calls(100)
    sink.faults.delay_s = 0.4  # slower than the client's timeout: it gives up, the sink still stores
    async with _dispatchers(redis_client, sink, timeout_s=0.2):
        await _append(Outbox(redis_client, Spool(tmp_path / "spool.jsonl")), records)
        await asyncio.sleep(1.5)
        sink.faults.delay_s = 0.0
        await _until_delivered(redis_client, sink, len(records))
    assert sink.store.counts()["duplicate_posts_absorbed"] > 0  # timed-out POSTs that had landed
    await _assert_exactly_once(redis_client, sink, records)


async def test_order_system_answering_409_duplicate(
    redis_client: aioredis.Redis, sink: OrderSink, tmp_path: Path
) -> None:
    records = _calls(100)
    sink.faults.duplicate_status = 409
    async with OrderSystemClient(sink.url, TIMEOUT_S, TOKEN_ENV, environ={TOKEN_ENV: TOKEN}) as client:
        for record in records[::2]:  # delivered before, e.g. by a dispatcher that died before XACK
            await client.submit(record.idempotency_key, record.model_dump_json().encode())
    async with _dispatchers(redis_client, sink):
        await _append(Outbox(redis_client, Spool(tmp_path / "spool.jsonl")), records)
        await _until_delivered(redis_client, sink, len(records))
    assert sink.answers[409] == len(records[::2])
    await _assert_exactly_once(redis_client, sink, records)


async def test_dispatcher_killed_with_sigkill_mid_batch(
    redis_server: LocalRedis, redis_client: aioredis.Redis, sink: OrderSink, tmp_path: Path
) -> None:
    records = _calls(300)
    await _append(Outbox(redis_client, Spool(tmp_path / "spool.jsonl")), records)
    sink.faults.delay_s = 0.3  # every batch is in flight for a while
    doomed = "doomed"
    command = [
        sys.executable, "-m", "gateway.records.dispatcher", "--redis-url", redis_server.url,
        "--order-url", sink.url, "--token-env", TOKEN_ENV, "--consumer", doomed, "--batch-size", "50",
        "--timeout-s", str(TIMEOUT_S), "--claim-idle-ms", str(CLAIM_IDLE_MS),
        "--retry-base-s", str(FAST_RETRY.base_s), "--retry-cap-s", str(FAST_RETRY.cap_s),
    ]  # fmt: skip
    with (tmp_path / "dispatcher.log").open("wb") as log:
        child = await asyncio.create_subprocess_exec(
            *command, env=os.environ | {TOKEN_ENV: TOKEN}, stdout=asyncio.subprocess.PIPE, stderr=log
        )
        try:
            assert child.stdout is not None
            assert b"ready" in await child.stdout.readline()
            async with asyncio.timeout(20):
                while True:  # kill it once it has delivered something and holds a batch in flight
                    pending = await redis_client.xpending(OutboxKeys().stream, OutboxKeys().group)
                    if sink.store.counts()["deliveries"] > 0 and pending["pending"] > 0:
                        break
                    await asyncio.sleep(0.02)
            child.send_signal(signal.SIGKILL)
        finally:
            if child.returncode is None:
                child.kill()
            assert await child.wait() == -signal.SIGKILL
    left_behind = (await backlog(redis_client)).pending
    assert left_behind > 0
    assert sink.store.counts()["deliveries"] < len(records)
    sink.faults.delay_s = 0.0
    async with _dispatchers(redis_client, sink, count=1) as (rescuer,):
        await _until_delivered(redis_client, sink, len(records))
    consumers = await redis_client.xinfo_consumers(OutboxKeys().stream, OutboxKeys().group)
    assert {c["name"].decode(): c["pending"] for c in consumers}[doomed] == 0
    assert rescuer.consumer == "in-process-0"
    await _assert_exactly_once(redis_client, sink, records)


async def test_redis_killed_and_restarted_while_calls_end(sink: OrderSink, tmp_path: Path) -> None:
    records = _calls(300, pbx_node="pbx-2")
    registry = CollectorRegistry()
    metrics = OutboxMetrics(registry)
    spool = Spool(tmp_path / "spool.jsonl")
    with LocalRedis() as server:  # our own: killing the shared one would disturb other tests
        redis = aioredis.Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            outbox = Outbox(redis, spool, redis_deadline_s=0.5, metrics=metrics)
            stop_recovery = asyncio.Event()
            recovery = asyncio.create_task(outbox.run_recovery(stop_recovery, interval_s=0.1))
            async with _dispatchers(redis, sink):

                async def calls_ending() -> None:
                    for record in records:
                        await outbox.append(record)
                        await asyncio.sleep(0.004)

                ending = asyncio.create_task(calls_ending())
                await asyncio.sleep(0.4)
                server.stop(kill=True)
                await asyncio.sleep(0.6)
                server.start()
                await ending
                await _until_delivered(redis, sink, len(records))
            stop_recovery.set()
            await recovery
            assert not spool.has_records()
            assert (registry.get_sample_value("hotline_records_appended_total", {"via": "spool"}) or 0) > 0
            await _assert_exactly_once(redis, sink, records)
        finally:
            await redis.aclose()
