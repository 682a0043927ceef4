"""KPI windows and rates: denominators stated, no midnight cliff, buckets survive a restart via Redis."""

from __future__ import annotations

import datetime as dt

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.queues.kpi_store import KpiStore
from gateway.queues.stats import ALL, CHINA_TZ, Fact, KpiBook, Observation

NOON = dt.datetime(2026, 11, 27, 12, 0, tzinfo=CHINA_TZ).timestamp()


def book_with_traffic(now: float) -> KpiBook:
    book = KpiBook(service_level_s={"hotline-general": 15})
    for i, wait in enumerate([3, 10, 14, 20, 40]):  # 3 of 5 answered within 15 s
        at = now - 600 + i * 60
        book.record(Observation(Fact.OFFERED, at - wait, "hotline-general", "12315"))
        book.record(Observation(Fact.ANSWERED, at, "hotline-general", "12315", wait_s=wait))
    for wait in (8, 70):
        book.record(Observation(Fact.OFFERED, now - 300, "hotline-general", "12369"))
        book.record(Observation(Fact.ABANDONED, now - 300 + wait, "hotline-general", "12369", wait_s=wait))
    for value in ("satisfied", "basic", "dissatisfied", "satisfied", "none"):
        book.record(Observation(Fact.SURVEY, now - 100, value=value))
    return book


def test_rates_state_both_service_level_denominators() -> None:
    rates = book_with_traffic(NOON).rates("queue:hotline-general", NOON)["15m"]
    assert (rates.offered, rates.answered, rates.abandoned) == (7, 5, 2)
    assert rates.service_level_of_answered == 0.6  # 3 ÷ 5 answered
    assert rates.service_level_of_offered == round(3 / 7, 4)  # 3 ÷ 7 offered
    assert rates.abandon_rate == round(2 / 7, 4)
    assert rates.asa_s == round((3 + 10 + 14 + 20 + 40) / 5, 1)
    assert rates.response_rate == round(5 / 7, 4)


def test_satisfaction_counts_only_rated_calls() -> None:
    rates = book_with_traffic(NOON).rates(ALL, NOON)["today"]
    assert rates.rated == 4  # "none" (no key) is not a rating
    assert rates.satisfaction_rate == 0.75  # (satisfied 2 + basic 1) ÷ rated 4


def test_per_line_counts() -> None:
    book = book_with_traffic(NOON)
    assert book.scopes("line:") == ["12315", "12369"]
    assert book.rates("line:12369", NOON)["1h"].offered == 2


def test_windows_roll_without_a_midnight_cliff() -> None:
    midnight = dt.datetime(2026, 11, 28, 0, 0, tzinfo=CHINA_TZ).timestamp()
    book = KpiBook()
    book.record(Observation(Fact.OFFERED, midnight - 120, "q"))
    after = midnight + 60
    assert book.window("queue:q", after, 15 * 60).offered == 1  # the rolling window keeps it
    assert book.day("queue:q", after).offered == 0  # the calendar day starts again
    assert book.window("queue:q", midnight + 15 * 60, 15 * 60).offered == 0


def test_empty_windows_have_no_rates_not_zero() -> None:
    rates = KpiBook().rates("queue:none", NOON)["1h"]
    assert rates.service_level_of_answered is None
    assert rates.asa_s is None


def test_series_for_the_chart() -> None:
    series = book_with_traffic(NOON).series("queue:hotline-general", NOON, hours=1)
    assert [at % 300 for at, _ in series] == [0] * len(series)
    assert 12 <= len(series) <= 13  # the first slot may be partial
    assert sum(r.offered for _, r in series) == 7


async def test_buckets_survive_a_restart_through_redis(redis_client: aioredis.Redis) -> None:
    book = book_with_traffic(NOON)
    store = KpiStore(redis_client)
    store.add_gauge(book.sample("waiting", NOON - 120, 7))
    for scope, buckets in book.buckets.items():
        store.add({(scope, minute): counts for minute, counts in buckets.items()})
    assert await store.flush()
    assert store.pending == 0
    restored = KpiBook(service_level_s={"hotline-general": 15})
    assert await KpiStore(redis_client).load(restored, NOON) > 0
    assert restored.rates("queue:hotline-general", NOON) == book.rates("queue:hotline-general", NOON)
    assert restored.rates(ALL, NOON) == book.rates(ALL, NOON)
    assert restored.gauge_max("waiting", NOON - 600, NOON) == 7


def test_gauges_keep_the_largest_sample_per_minute() -> None:
    book = KpiBook()
    assert book.sample("waiting", NOON, 3) == ("waiting", int(NOON // 60), 3)
    assert book.sample("waiting", NOON + 1, 2) is None
    book.sample("waiting", NOON + 61, 5)
    assert book.gauge_max("waiting", NOON, NOON + 119) == 5
    assert book.gauge_max("waiting", NOON - 600, NOON - 60) is None


async def test_flush_keeps_increments_while_redis_is_down() -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    store = KpiStore(dead)
    book = KpiBook()
    store.add(book.record(Observation(Fact.OFFERED, NOON, "q")))
    assert not await store.flush()
    assert store.pending == 2  # the queue's bucket and the overall bucket, kept for the next flush
    await dead.aclose()
