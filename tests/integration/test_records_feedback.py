"""Feedback from the order system (resolution, 回访 satisfaction): storage in real Redis and the
HTTP route the gateway mounts, over loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from gateway.ordersink.examples import answered_call, emergency_handover
from gateway.ordersink.sink import FeedbackPoster, OrderSink
from gateway.records.client import OrderSystemClient
from gateway.records.feedback import (
    FEEDBACK_PATH,
    FeedbackStore,
    FollowUp,
    FollowUpResult,
    RecordFeedback,
    Resolution,
    feedback_routes,
)
from gateway.records.model import CallRecord
from gateway.records.outbox import Outbox
from gateway.records.spool import Spool
from gateway.records.tokens import TokenConfigError

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
TOKEN = "callback-token"


def _resolution(resolved: bool, minutes: int) -> Resolution:
    return Resolution(kind="resolution", resolved=resolved, at=T0 + dt.timedelta(minutes=minutes))


def _follow_up(result: FollowUpResult, minutes: int) -> FollowUp:
    return FollowUp(kind="follow_up", result=result, at=T0 + dt.timedelta(minutes=minutes))


async def test_the_newest_feedback_of_each_kind_wins(redis_client: aioredis.Redis) -> None:
    store = FeedbackStore(redis_client)
    record_id = answered_call(1).record_id
    assert await store.apply(record_id, _resolution(False, 10))
    assert await store.apply(record_id, _resolution(True, 20))
    assert not await store.apply(record_id, _resolution(False, 15))  # late and older: ignored
    assert not await store.apply(record_id, _resolution(True, 20))  # repeated: ignored
    assert await store.apply(record_id, _follow_up(FollowUpResult.BASIC, 30))
    stored = await store.get(record_id)
    assert stored.resolution == _resolution(True, 20)
    assert stored.follow_up == _follow_up(FollowUpResult.BASIC, 30)
    rates = await store.rates(T0, T0 + dt.timedelta(hours=1))
    assert rates.counts["resolution:resolved"] == 1
    assert rates.counts["resolution:unresolved"] == 0  # it left the unresolved set


async def test_rates_state_their_denominators_over_a_window(redis_client: aioredis.Redis) -> None:
    store = FeedbackStore(redis_client)
    outcomes = [True, True, True, False]
    surveys = [FollowUpResult.SATISFIED, FollowUpResult.BASIC, FollowUpResult.DISSATISFIED,
               FollowUpResult.UNREACHABLE]  # fmt: skip
    for n, (resolved, survey) in enumerate(zip(outcomes, surveys, strict=True)):
        record_id = answered_call(n).record_id
        await store.apply(record_id, _resolution(resolved, n))
        await store.apply(record_id, _follow_up(survey, 60 + n))
    await store.apply(answered_call(99).record_id, _resolution(False, 24 * 60))  # outside the window
    rates = await store.rates(T0, T0 + dt.timedelta(hours=2))
    assert rates.resolution_rate == 3 / 4  # ÷ work orders with a resolution reported
    assert rates.satisfaction_rate == 2 / 3  # (satisfied + basic) ÷ follow-ups that reached the citizen
    empty = await store.rates(T0 - dt.timedelta(days=2), T0 - dt.timedelta(days=1))
    assert (empty.resolution_rate, empty.satisfaction_rate) == (None, None)


@pytest.fixture
async def gateway_url(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    app = web.Application()
    app.add_routes(
        feedback_routes(FeedbackStore(redis_client), "CALLBACK_TOKEN", environ={"CALLBACK_TOKEN": TOKEN})
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def produced(redis: aioredis.Redis, tmp_path: Path, *records: CallRecord) -> None:
    """Through the outbox, as the gateway does: only records it produced take feedback."""
    await Outbox(redis, Spool(tmp_path / "spool.jsonl")).append_many(records)


async def test_the_order_system_posts_feedback_over_http(
    gateway_url: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    record_id = answered_call(1).record_id
    await produced(redis_client, tmp_path, answered_call(1))
    url = gateway_url + FEEDBACK_PATH.format(record_id=record_id)
    body = {"kind": "resolution", "resolved": True, "at": "2026-03-02T17:00:00+08:00", "work_order_id": "GD1"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200
            assert await response.json() == {"record_id": record_id, "kind": "resolution", "applied": True}
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert (await response.json())["applied"] is False
        async with http.post(url, json=body, headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401
        bad = body | {"kind": "follow_up"}
        async with http.post(url, json=bad, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 422
            assert "result" in (await response.json())["message"]
        not_a_record = gateway_url + FEEDBACK_PATH.format(record_id="x")
        async with http.post(
            not_a_record, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            assert response.status == 422
    resolution = (await FeedbackStore(redis_client).get(record_id)).resolution
    assert resolution is not None
    assert resolution.at == dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def test_the_route_needs_its_token_in_the_environment(redis_client: aioredis.Redis) -> None:
    with pytest.raises(TokenConfigError, match="CALLBACK_TOKEN"):
        feedback_routes(FeedbackStore(redis_client), "CALLBACK_TOKEN", environ={})


async def test_the_reference_sink_posts_feedback_for_final_records(
    gateway_url: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    final, interim = answered_call(1), emergency_handover(2)
    poster = FeedbackPoster(gateway_url, TOKEN, delay_s=0.05)
    async with (
        OrderSink(tmp_path / "orders.sqlite3", "sink-token", feedback=poster) as sink,
        OrderSystemClient(sink.url, 2.0, "T", environ={"T": "sink-token"}) as client,
    ):
        await produced(redis_client, tmp_path, interim, final)
        for record in (interim, final, final):
            await client.submit(record.idempotency_key, record.model_dump_json().encode())
        store = FeedbackStore(redis_client)
        async with asyncio.timeout(10):
            while (await store.get(final.record_id)).follow_up is None:  # noqa: ASYNC110 - polling Redis
                await asyncio.sleep(0.02)
    stored = await store.get(final.record_id)
    resolved, follow_up = FeedbackPoster.outcomes(final.record_id)
    assert stored.resolution is not None
    assert (stored.resolution.resolved, stored.resolution.work_order_id) == (resolved, "GD0000000002")
    assert stored.follow_up is not None
    assert stored.follow_up.result is follow_up
    assert await store.get(interim.record_id) == RecordFeedback(resolution=None, follow_up=None)


def test_the_sink_s_feedback_outcomes_are_plausible_and_reproducible() -> None:
    outcomes = [FeedbackPoster.outcomes(answered_call(n).record_id) for n in range(2000)]
    resolved = sum(1 for r, _ in outcomes if r) / len(outcomes)
    satisfied = sum(1 for _, f in outcomes if f is FollowUpResult.SATISFIED) / len(outcomes)
    assert 0.8 < resolved < 0.9
    assert 0.65 < satisfied < 0.75
    assert outcomes == [FeedbackPoster.outcomes(answered_call(n).record_id) for n in range(2000)]
