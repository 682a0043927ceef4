"""Keep the KPI minute buckets in Redis so figures survive gateway restarts and reach every instance.

Writes are batched: ``add`` only merges increments in memory (safe to call from the AMI event
path), and ``flush`` sends them in one pipeline of HINCRBYFLOAT. If Redis is down the increments
stay merged in memory and go out with the next successful flush: nothing is counted twice or lost
while the process lives. Layout: one hash per scope and UTC day, ``<prefix>:<scope>:<yyyymmdd>``,
fields ``<minute>:<counter>``, expiring after two days. What is read back is untrusted
(``gateway.readback``): a field or figure that does not parse is refused and skipped.
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
from gateway.readback import Source, amount, refuse, text

COUNTERS = {f.name: int if f.type in (int, "int") else float for f in fields(Counts)}

log = structlog.get_logger(__name__)


def _field(raw: bytes | str, key: str) -> tuple[int, str] | None:
    """A hash field as its minute and the rest (``<minute>:<counter>``, or a gauge's ``<minute>``)."""
    value = text(raw, source=Source.KPI, key=key, field="(field name)")
    if value is None:
        return None
    minute, _, rest = value.partition(":")
    if not (minute.isascii() and minute.isdigit() and len(minute) <= 12):
        refuse(Source.KPI, key, value[:40], "the field does not start with a minute number")
        return None
    return int(minute), rest


def _names(raw: set[bytes | str], key: str) -> list[str]:
    return [name for value in raw if (name := text(value, source=Source.KPI, key=key, field="member"))]


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
        for name in _names(await self.redis.smembers(self.keys.gauges), self.keys.gauges):
            for day in days:
                key = self.keys.gauge(name, day)
                for field_name, raw in (await self.redis.hgetall(key)).items():
                    parsed = _field(field_name, key)
                    if parsed is None or parsed[0] < first:
                        continue
                    minute = parsed[0]
                    value = amount(raw, source=Source.KPI, key=key, field=str(minute))
                    if value is not None:
                        book.sample(name, minute * BUCKET_S, value)
        count = 0
        for scope in _names(await self.redis.smembers(self.keys.scopes), self.keys.scopes):
            buckets: dict[int, Counts] = defaultdict(Counts)
            for day in days:
                key = self.keys.counts(scope, day)
                for field_name, raw in (await self.redis.hgetall(key)).items():
                    parsed = _field(field_name, key)
                    if parsed is None or parsed[0] < first or parsed[1] not in COUNTERS:
                        continue
                    minute, counter = parsed
                    value = amount(raw, source=Source.KPI, key=key, field=f"{minute}:{counter}")
                    if value is None:
                        continue
                    bucket = buckets[minute]
                    setattr(bucket, counter, getattr(bucket, counter) + COUNTERS[counter](value))
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
        scopes = _names(await self.redis.smembers(self.keys.scopes), self.keys.scopes)
        names = _names(await self.redis.smembers(self.keys.gauges), self.keys.gauges)
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
                key = self.keys.counts(scope, _day(minute))
                values = next(answers)
                if any(v is not None for v in values):
                    counts = Counts()
                    for counter, raw in zip(COUNTERS, values, strict=True):
                        field = f"{minute}:{counter}"
                        if raw is not None and (
                            value := amount(raw, source=Source.KPI, key=key, field=field)
                        ):
                            setattr(counts, counter, COUNTERS[counter](value))
                    book.load(scope, minute, counts)
        for name in names:
            for minute in recent:
                key = self.keys.gauge(name, _day(minute))
                raw = next(answers)
                if (
                    raw is not None
                    and (value := amount(raw, source=Source.KPI, key=key, field=str(minute))) is not None
                ):
                    book.sample(name, minute * BUCKET_S, value)
