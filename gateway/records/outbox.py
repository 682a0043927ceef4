"""The outbox: call records enter a Redis Stream before anything talks to the order system.

Owns the Redis layout of records in flight (the outbox stream, its consumer group, the dead-letter
stream, the "seen" markers), the writer that appends to it, falling back to the local spool when
Redis is unreachable, and the dead-letter list/requeue functions the API exposes. Delivery is
gateway.records.dispatcher's job.

Appending runs a small Lua script: XADD only if the record's idempotency key was not added before
(a ``seen`` marker with a TTL). So a record whose XADD reached Redis but whose reply was lost (and
which was therefore spooled too), or a record the tracker emits twice, enters the stream once.
Records are independent (the receiver orders revisions of one record by ``revision``), so spooled
records may reach the stream after newer ones.

Durability depends on Redis persisting the stream: run it with ``appendonly yes`` (see
docs/order-system.md, "Gateway side", for ``appendfsync`` and the tradeoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from gateway.keys import OutboxKeys
from gateway.records.metrics import OutboxMetrics
from gateway.records.model import CallRecord
from gateway.records.spool import Spool

log = structlog.get_logger(__name__)

SEEN_TTL_S = 7 * 86_400  # longer than any Redis outage we plan for; the receiver dedupes anyway
RECOVERY_CHUNK = 500

# How long the gateway remembers the records it produced: the order system's feedback about any
# other record id is refused (forged ids must not move the rates). A year of monthly grading plus a
# margin; one small key per call (about 100 bytes in Redis).
PRODUCED_TTL_S = 400 * 86_400

# KEYS: stream, seen marker, produced marker. ARGV: ttl, idempotency key, record JSON, produced ttl.
# Returns the entry id or nil.
_APPEND_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[4])
  return redis.call('XADD', KEYS[1], '*', 'key', ARGV[2], 'record', ARGV[3])
end
return false
"""

# KEYS: dead-letter stream, outbox stream. ARGV: dead-letter entry id. Atomic, so two people
# requeueing the same letter at once put it back once.
_REQUEUE = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entries == 0 then return 0 end
local fields, key, record = entries[1][2], nil, nil
for i = 1, #fields, 2 do
  if fields[i] == 'key' then key = fields[i + 1] elseif fields[i] == 'record' then record = fields[i + 1] end
end
redis.call('XADD', KEYS[2], '*', 'key', key, 'record', record)
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""

# Errors that mean "Redis did not take it" (down, restarting, loading, OOM, timeout): spool.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)


class Via(StrEnum):
    REDIS = "redis"
    SPOOL = "spool"


def idempotency_key_of(record_json: bytes) -> str:
    """The key of a serialized record, without validating the whole record."""
    data = json.loads(record_json)
    return f"{data['record_id']}:{data['revision']}"


class Outbox:
    """Hands call records to Redis, or to the spool while Redis is unreachable; never drops one."""

    def __init__(
        self,
        redis: aioredis.Redis,
        spool: Spool,
        *,
        keys: OutboxKeys | None = None,
        seen_ttl_s: int = SEEN_TTL_S,
        redis_deadline_s: float = 2.0,
        metrics: OutboxMetrics | None = None,
    ) -> None:
        self._redis = redis
        # redis-py retries a dead connection for seconds by default; a call's record should be on
        # disk sooner than that, so a slow hand-over counts as a failed one and goes to the spool.
        self._redis_deadline_s = redis_deadline_s
        self._spool = spool
        self.keys = keys or OutboxKeys()
        self._seen_ttl_s = seen_ttl_s
        self._metrics = metrics
        self._append_once = redis.register_script(_APPEND_ONCE)
        self._recovering = asyncio.Lock()
        # Told of every record taken (Redis or spool) and of spooled ones moved to Redis; they
        # must not raise and must tolerate seeing a record twice (the reports count it once).
        self.listeners: list[Callable[[Sequence[CallRecord]], None]] = []

    async def append(self, record: CallRecord) -> Via:
        return await self.append_many([record])

    async def append_many(self, records: Sequence[CallRecord]) -> Via:
        """Append in one round trip; if Redis fails, fsync them all to the spool instead.

        Raises SpoolError only when the spool cannot be written either.
        """
        lines = [(record.idempotency_key, record.model_dump_json().encode()) for record in records]
        for listener in self.listeners:
            listener(records)
        try:
            async with asyncio.timeout(self._redis_deadline_s):
                await self._add(lines)
            via = Via.REDIS
        except REDIS_FAILURES as exc:
            log.warning("outbox_redis_unavailable_spooling", count=len(lines), error=repr(exc))
            await asyncio.to_thread(self._spool.append, [body for _, body in lines])
            via = Via.SPOOL
        if self._metrics:
            self._metrics.appended.labels(via=via.value).inc(len(lines))
        return via

    async def _add(self, lines: Sequence[tuple[str, bytes]]) -> int:
        """XADD each (key, body) unless seen before; returns how many entered the stream."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, body in lines:
                record_id = key.rpartition(":")[0]
                await self._append_once(
                    keys=[self.keys.stream, self.keys.seen(key), self.keys.produced(record_id)],
                    args=[self._seen_ttl_s, key, body, PRODUCED_TTL_S],
                    client=pipe,
                )
            results = await pipe.execute()
        return sum(1 for entry_id in results if entry_id)

    async def recover_spool(self) -> int:
        """Move spooled records into Redis; returns how many entered the stream.

        Raises a Redis error if Redis fails again; what was not moved stays spooled.
        """
        async with self._recovering:
            moved = 0
            for claimed in await asyncio.to_thread(self._spool.claim):
                lines: list[tuple[str, bytes]] = []
                unreadable: list[bytes] = []
                for body in await asyncio.to_thread(self._spool.read, claimed):
                    try:
                        lines.append((idempotency_key_of(body), body))
                    except (KeyError, TypeError, ValueError):
                        unreadable.append(body)
                if unreadable:
                    await asyncio.to_thread(self._spool.quarantine, unreadable)
                for start in range(0, len(lines), RECOVERY_CHUNK):
                    moved += await self._add(lines[start : start + RECOVERY_CHUNK])
                if self.listeners:
                    self._tell([body for _, body in lines])
                await asyncio.to_thread(self._spool.release, claimed)
                log.info("outbox_spool_recovered", file=str(claimed), records=len(lines))
            if self._metrics and moved:
                self._metrics.recovered.inc(moved)
            return moved

    def _tell(self, bodies: list[bytes]) -> None:
        """Tell the listeners about recovered records (a crash may have lost their first telling)."""
        records = []
        for body in bodies:
            try:
                records.append(CallRecord.model_validate_json(body))
            except ValueError:
                log.warning("outbox_spooled_record_not_a_record", size=len(body))
        for listener in self.listeners:
            listener(records)

    async def run_recovery(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        """Background task: drain the spool whenever it holds records and Redis answers."""
        while not stop.is_set():
            if await asyncio.to_thread(self._spool.has_records):
                try:
                    await self.recover_spool()
                except REDIS_FAILURES as exc:
                    log.info("outbox_spool_recovery_waiting_for_redis", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)


@dataclass(frozen=True)
class DeadLetter:
    """A record the order system refused; it waits for a person, then ``requeue_dead_letter``."""

    entry_id: str
    idempotency_key: str
    status: int | None
    reason: str
    failed_at: dt.datetime | None
    record: dict[str, Any] | None  # None: the entry is malformed (``problem`` says how)
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "idempotency_key": self.idempotency_key,
            "status": self.status,
            "reason": self.reason,
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
            "record": self.record,
            "malformed": self.problem is not None,
            "problem": self.problem,
        }


StreamEntry = tuple[str, dict[str, bytes]]


def _as_text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def stream_entries(raw: object) -> list[StreamEntry]:
    """Stream entries as (id, {field: bytes}), whether the client decodes responses or not.

    Entries deleted while pending come back without fields (None) and are skipped.
    """
    entries: list[StreamEntry] = []
    for entry_id, fields in cast(list[tuple[object, dict[object, object] | None]], raw or []):
        if fields is not None:
            entries.append((_as_text(entry_id), {_as_text(k): _as_bytes(v) for k, v in fields.items()}))
    return entries


async def dead_letters(
    redis: aioredis.Redis, keys: OutboxKeys | None = None, *, count: int = 100, before: str = "+"
) -> list[DeadLetter]:
    """Newest first; page with ``before`` = the last entry id of the previous page (exclusive)."""
    keys = keys or OutboxKeys()
    maximum = before if before == "+" else f"({before}"
    entries = stream_entries(await redis.xrevrange(keys.dead, max=maximum, min="-", count=count))
    return [_dead_letter(entry_id, fields) for entry_id, fields in entries]


def _dead_letter(entry_id: str, fields: dict[str, bytes]) -> DeadLetter:
    """One dead letter; whatever is in the stream (anyone with Redis access can write there), a
    letter that does not parse is listed as malformed instead of failing the whole list."""

    def text(name: str) -> str:
        return fields.get(name, b"").decode("utf-8", "replace")[:200]

    problems: list[str] = []
    status = int(text("status")) if text("status").isdigit() else None
    if text("status") and status is None:
        problems.append(f"status {text('status')!r} is not a number")
    try:
        failed_at: dt.datetime | None = dt.datetime.fromisoformat(text("failed_at"))
    except ValueError:
        failed_at = None
        problems.append(f"failed_at {text('failed_at')!r} is not a time")
    try:
        record = json.loads(fields.get("record", b""))
    except (ValueError, RecursionError):
        record = None
    if not isinstance(record, dict):
        record = None
        problems.append("record is not a JSON object")
    return DeadLetter(
        entry_id=entry_id,
        idempotency_key=text("key"),
        status=status,
        reason=text("reason"),
        failed_at=failed_at,
        record=record,
        problem="; ".join(problems) or None,
    )


@dataclass(frozen=True)
class Backlog:
    entries: int  # in the outbox stream, not yet confirmed by the order system
    pending: int  # of those, read by a dispatcher (in flight or being retried)
    dead_letters: int


async def backlog(redis: aioredis.Redis, keys: OutboxKeys | None = None) -> Backlog:
    keys = keys or OutboxKeys()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.stream)
        pipe.xpending(keys.stream, keys.group)
        pipe.xlen(keys.dead)
        entries, pending, dead = await pipe.execute(raise_on_error=False)
    # Before the first dispatcher creates the group, XPENDING fails: nothing is pending then.
    pending_count = pending["pending"] if isinstance(pending, dict) else 0
    return Backlog(entries=int(entries), pending=int(pending_count), dead_letters=int(dead))


async def requeue_dead_letter(redis: aioredis.Redis, entry_id: str, keys: OutboxKeys | None = None) -> bool:
    """Put a dead letter back into the outbox (after the order system or the record was fixed).

    Bypasses the seen marker on purpose: the key was seen, and it must be delivered again.
    Returns False if there is no such dead letter.
    """
    keys = keys or OutboxKeys()
    moved = await redis.register_script(_REQUEUE)(keys=[keys.dead, keys.stream], args=[entry_id])
    if moved:
        log.info("outbox_dead_letter_requeued", entry_id=entry_id)
    return bool(moved)
