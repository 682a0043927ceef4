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

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from gateway.queues.stats import BUCKET_S, KEEP_S, Counts, KpiBook

log = structlog.get_logger(__name__)


def _day(minute: int) -> str:
    return dt.datetime.fromtimestamp(minute * BUCKET_S, dt.UTC).strftime("%Y%m%d")


class KpiStore:
    def __init__(self, redis: aioredis.Redis, prefix: str = "hotline:kpi") -> None:
        self.redis = redis
        self.prefix = prefix
        self._pending: dict[tuple[str, int], Counts] = defaultdict(Counts)

    def add(self, changes: dict[tuple[str, int], Counts]) -> None:
        for key, delta in changes.items():
            self._pending[key].add(delta)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> bool:
        """Send what is pending; False (and everything kept) if Redis did not take it."""
        if not self._pending:
            return True
        batch, self._pending = self._pending, defaultdict(Counts)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                keys = set()
                for (scope, minute), delta in batch.items():
                    key = f"{self.prefix}:{scope}:{_day(minute)}"
                    keys.add(key)
                    for name, value in delta.as_fields().items():
                        pipe.hincrbyfloat(key, f"{minute}:{name}", value)
                    pipe.sadd(f"{self.prefix}:scopes", scope)
                for key in keys:
                    pipe.expire(key, KEEP_S + 86400)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            for bucket, delta in batch.items():
                self._pending[bucket].add(delta)
            log.warning("kpi flush failed; kept in memory", error=str(exc), pending=len(self._pending))
            return False
        return True

    async def load(self, book: KpiBook, now: float) -> int:
        """Fill ``book`` with the buckets of the last two days; returns how many buckets were read."""
        scopes = [
            s.decode() if isinstance(s, bytes) else str(s)
            for s in await self.redis.smembers(f"{self.prefix}:scopes")
        ]
        first = int((now - KEEP_S) // BUCKET_S)
        last = int(now // BUCKET_S)
        days = sorted({_day(m) for m in range(first, last, 60)} | {_day(last)})
        count = 0
        for scope in scopes:
            buckets: dict[int, Counts] = defaultdict(Counts)
            for day in days:
                raw = await self.redis.hgetall(f"{self.prefix}:{scope}:{day}")
                for field_name, value in raw.items():
                    text = field_name.decode() if isinstance(field_name, bytes) else str(field_name)
                    minute_text, _, counter = text.partition(":")
                    minute = int(minute_text)
                    if minute < first or not hasattr(buckets[minute], counter):
                        continue
                    number = float(value)
                    kind = type(getattr(buckets[minute], counter))
                    setattr(buckets[minute], counter, getattr(buckets[minute], counter) + kind(number))
            for minute, counts in buckets.items():
                book.load(scope, minute, counts)
                count += 1
        return count
