"""Keep the KPI minute buckets in Redis so figures survive gateway restarts and reach every instance.

Writes are batched: ``add`` only merges increments in memory (safe to call from the AMI event
path), and ``flush`` sends them in one pipeline of HINCRBYFLOAT. If Redis is down the increments
stay merged in memory and go out with the next successful flush: nothing is counted twice or lost
while the process lives. Layout: one hash per scope and UTC day, ``<prefix>:<scope>:<yyyymmdd>``,
fields ``<minute>:<counter>``, expiring after two days.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import fields

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from gateway.keys import KpiKeys
from gateway.queues.stats import BUCKET_S, KEEP_S, Counts, KpiBook

COUNTERS = {f.name: int if f.type in (int, "int") else float for f in fields(Counts)}

log = structlog.get_logger(__name__)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _day(minute: int) -> str:
    return dt.datetime.fromtimestamp(minute * BUCKET_S, dt.UTC).strftime("%Y%m%d")


class KpiStore:
    def __init__(self, redis: aioredis.Redis, keys: KpiKeys | None = None) -> None:
        self.redis = redis
        self.keys = keys or KpiKeys()
        self._pending: dict[tuple[str, int], Counts] = defaultdict(Counts)
        self._gauges: dict[tuple[str, int], float] = {}

    def add(self, changes: dict[tuple[str, int], Counts]) -> None:
        for key, delta in changes.items():
            self._pending[key].add(delta)

    def add_gauge(self, sample: tuple[str, int, float] | None) -> None:
        if sample is not None:
            name, minute, value = sample
            self._gauges[(name, minute)] = max(value, self._gauges.get((name, minute), value))

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._gauges)

    async def flush(self) -> bool:
        """Send what is pending; False (and everything kept) if Redis did not take it."""
        if not self.pending:
            return True
        batch, self._pending = self._pending, defaultdict(Counts)
        gauges, self._gauges = self._gauges, {}
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                keys = set()
                for (scope, minute), delta in batch.items():
                    key = self.keys.counts(scope, _day(minute))
                    keys.add(key)
                    for name, value in delta.as_fields().items():
                        pipe.hincrbyfloat(key, f"{minute}:{name}", value)
                    pipe.sadd(self.keys.scopes, scope)
                for (name, minute), value in gauges.items():
                    key = self.keys.gauge(name, _day(minute))
                    keys.add(key)
                    pipe.hset(key, str(minute), value)
                    pipe.sadd(self.keys.gauges, name)
                for key in keys:
                    pipe.expire(key, KEEP_S + 86400)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self.add(batch)
            for (name, minute), value in gauges.items():
                self.add_gauge((name, minute, value))
            log.warning("kpi flush failed; kept in memory", error=str(exc), pending=self.pending)
            return False
        return True

    async def load(self, book: KpiBook, now: float) -> int:
        """Fill ``book`` with the buckets and gauges of the last two days; returns buckets read."""
        first = int((now - KEEP_S) // BUCKET_S)
        last = int(now // BUCKET_S)
        days = sorted({_day(m) for m in range(first, last, 60)} | {_day(last)})
        for name in map(_text, await self.redis.smembers(self.keys.gauges)):
            for day in days:
                for minute_text, value in (await self.redis.hgetall(self.keys.gauge(name, day))).items():
                    if int(_text(minute_text)) >= first:
                        book.sample(name, int(_text(minute_text)) * BUCKET_S, float(value))
        count = 0
        for scope in map(_text, await self.redis.smembers(self.keys.scopes)):
            buckets: dict[int, Counts] = defaultdict(Counts)
            for day in days:
                for field_name, value in (await self.redis.hgetall(self.keys.counts(scope, day))).items():
                    minute_text, _, counter = _text(field_name).partition(":")
                    minute = int(minute_text)
                    if minute < first or counter not in COUNTERS:
                        continue
                    bucket = buckets[minute]
                    setattr(bucket, counter, getattr(bucket, counter) + COUNTERS[counter](float(value)))
            for minute, counts in buckets.items():
                book.load(scope, minute, counts)
                count += 1
        return count

    async def refresh(self, book: KpiBook, now: float, minutes: int = 3) -> None:
        """Re-read the last few minutes from Redis, so ``book`` includes other instances' counts.

        Older minutes do not change any more (an observation is counted when it happens), so a
        few recent minutes keep every instance's windows equal without reading whole days.
        """
        last = int(now // BUCKET_S)
        recent = range(last - minutes + 1, last + 1)
        scopes = [_text(s) for s in await self.redis.smembers(self.keys.scopes)]
        names = [_text(g) for g in await self.redis.smembers(self.keys.gauges)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                for minute in recent:
                    pipe.hmget(self.keys.counts(scope, _day(minute)), [f"{minute}:{c}" for c in COUNTERS])
            for name in names:
                for minute in recent:
                    pipe.hget(self.keys.gauge(name, _day(minute)), str(minute))
            answers = iter(await pipe.execute())
        for scope in scopes:
            for minute in recent:
                values = next(answers)
                if any(v is not None for v in values):
                    counts = Counts()
                    for counter, value in zip(COUNTERS, values, strict=True):
                        if value is not None:
                            setattr(counts, counter, COUNTERS[counter](float(value)))
                    book.load(scope, minute, counts)
        for name in names:
            for minute in recent:
                value = next(answers)
                if value is not None:
                    book.sample(name, minute * BUCKET_S, float(value))
