"""The report buckets in Redis: written once per call record, kept ``retention_days``, read by range.

Layout (prefix ``hotline:reports``):
- ``:day:<yyyymmdd>`` one hash per local (Beijing) day, fields ``<slot>|<scope>|<counter>``;
- ``:month:<yyyy-mm>`` one hash per local month, fields ``<scope>|<counter>`` (the same counts
  without the slot, so the monthly ranking reads one hash instead of a month of days);
- ``:record:<record id>:increments`` what each record added (kept ``REPLACE_DAYS``), so a newer
  revision (a late survey, a call back's outcome, a backstop correction) replaces its old counts
  instead of adding to them;
- ``:record:<record id>`` the versions seen and where the call's feedback goes (kept
  ``FEEDBACK_DAYS``), so the order system's feedback lands in the call's cells whichever of the
  two arrives first.
Every change runs one Lua script per record and part (``call``, ``resolution``, ``follow_up``):
a part with the same or an older version than the stored one changes nothing, so a record seen
twice (spool recovery, a second instance, a retried post) is counted once. Each bucket written
gets the retention as its TTL again, so it lives ``retention_days`` after its last change.

``add`` is synchronous and never raises (it is the outbox's listener: a report must never cost a
work order); ``flush`` sends what is pending and keeps it when Redis is away.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from gateway.records.feedback import FollowUp, Resolution
from gateway.records.model import CallRecord, Stage
from gateway.reports.aggregate import Cell, call_cells, contribution, month_of

log = structlog.get_logger(__name__)

FLUSH_CHUNK = 500
MAX_PENDING = 200_000  # records held while Redis is away (about 100 MB); older ones are dropped

# Revisions of a record (late survey, call back outcome, backstop correction) come within hours;
# the order system's feedback within weeks. What a record added is kept that long to be replaced
# (a copy of the same revision later still counts nothing: the marker knows its version); where
# its feedback goes, this long to be found.
REPLACE_DAYS = 2
FEEDBACK_DAYS = 62

# KEYS: the record's marker (versions, feedback targets, feedback counts), the record's increments.
# ARGV: part, version, bucket TTL, marker TTL, increments TTL (s), then for part 'call' the
# increments [[key, field, n], ...] and the feedback targets [[key, field prefix], ...]; for the
# feedback parts the counts [[counter, n], ...], added at the targets the call part stored.
# Returns 1 applied, 0 not newer, -1 a newer revision after its record's increments expired.
_APPLY_PART = """
local marker, increments, part = KEYS[1], KEYS[2], ARGV[1]
local current = redis.call('HGET', marker, part .. ':v')
if current and tonumber(current) >= tonumber(ARGV[2]) then return 0 end
local old_increments = redis.call('GET', increments)
if part == 'call' and current and not old_increments then return -1 end
local touched = {}
local function add(key, field, n)
  redis.call('HINCRBY', key, field, n)
  touched[key] = true
end
local function spread(targets, counts, sign)
  for _, t in ipairs(targets) do
    for _, c in ipairs(counts) do add(t[1], t[2] .. c[1], sign * c[2]) end
  end
end
local targets = cjson.decode(redis.call('HGET', marker, 'targets') or '[]')
if part == 'call' then
  for _, inc in ipairs(cjson.decode(old_increments or '[]')) do add(inc[1], inc[2], -inc[3]) end
  local moved = cjson.decode(ARGV[7])
  for _, other in ipairs({'resolution', 'follow_up'}) do
    local counts = redis.call('HGET', marker, other)
    if counts then
      counts = cjson.decode(counts)
      spread(targets, counts, -1)
      spread(moved, counts, 1)
    end
  end
  for _, inc in ipairs(cjson.decode(ARGV[6])) do add(inc[1], inc[2], inc[3]) end
  redis.call('SET', increments, ARGV[6], 'EX', ARGV[5])
  redis.call('HSET', marker, 'targets', ARGV[7])
else
  local old = redis.call('HGET', marker, part)
  if old then spread(targets, cjson.decode(old), -1) end
  spread(targets, cjson.decode(ARGV[6]), 1)
  redis.call('HSET', marker, part, ARGV[6])
end
redis.call('HSET', marker, part .. ':v', ARGV[2])
redis.call('EXPIRE', marker, ARGV[4])
for key in pairs(touched) do redis.call('EXPIRE', key, ARGV[3]) end
return 1
"""


@dataclass(frozen=True)
class ReportKeys:
    prefix: str = "hotline:reports"

    def day(self, day: dt.date) -> str:
        return f"{self.prefix}:day:{day:%Y%m%d}"

    def month(self, month: str) -> str:
        return f"{self.prefix}:month:{month}"

    def record(self, record_id: str) -> str:
        return f"{self.prefix}:record:{record_id}"

    def increments(self, record_id: str) -> str:
        return f"{self.prefix}:record:{record_id}:increments"


@dataclass(frozen=True)
class _Part:
    record_id: str
    name: str
    version: int
    args: tuple[str, ...]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def feedback_counts(feedback: Resolution | FollowUp) -> list[list[str | int]]:
    if isinstance(feedback, Resolution):
        return [[feedback.outcome, 1]]
    return [[f"followup_{feedback.outcome}", 1]]


class ReportStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        service_level_s: Callable[[], Mapping[str, int]],
        *,
        retention_days: int,
        keys: ReportKeys | None = None,
    ) -> None:
        self._redis = redis
        self._service_level_s = service_level_s
        self.retention_days = retention_days
        self.keys = keys or ReportKeys()
        self._apply = redis.register_script(_APPLY_PART)
        self._pending: dict[str, _Part] = {}  # the newest call part per record id

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, records: Sequence[CallRecord]) -> None:
        """Queue the final records' counts for the next flush (the outbox calls this)."""
        for record in records:
            if record.stage is not Stage.FINAL:
                continue
            try:
                part = self._call_part(record)
            except Exception:
                log.exception("reports.record_not_counted", record_id=record.record_id)
                continue
            known = self._pending.get(record.record_id)
            if known is None or known.version < part.version:
                self._pending[record.record_id] = part
        while len(self._pending) > MAX_PENDING:
            dropped = next(iter(self._pending))
            del self._pending[dropped]
            log.error("reports.pending_full_dropped", record_id=dropped)

    def _call_part(self, record: CallRecord) -> _Part:
        increments: list[list[str | int]] = []
        for cell, counts in contribution(record, self._service_level_s()).items():
            for counter, n in sorted(counts.items()):
                increments.append([self.keys.day(cell.day), f"{cell.slot}|{cell.scope}|{counter}", n])
                increments.append([self.keys.month(month_of(cell.day)), f"{cell.scope}|{counter}", n])
        targets = [
            [key, prefix]
            for cell in call_cells(record)
            for key, prefix in (
                (self.keys.day(cell.day), f"{cell.slot}|{cell.scope}|"),
                (self.keys.month(month_of(cell.day)), f"{cell.scope}|"),
            )
        ]
        return _Part(
            record.record_id,
            "call",
            record.revision,
            (json.dumps(increments, ensure_ascii=False), json.dumps(targets, ensure_ascii=False)),
        )

    async def flush(self) -> bool:
        """Send what is pending, ``FLUSH_CHUNK`` records a round trip; False (and what was not
        sent kept) if Redis did not take it."""
        batch, self._pending = list(self._pending.values()), {}
        for start in range(0, len(batch), FLUSH_CHUNK):
            try:
                await self._run(batch[start : start + FLUSH_CHUNK])
            except (RedisError, OSError) as exc:
                for part in batch[start:]:
                    known = self._pending.get(part.record_id)
                    if known is None or known.version < part.version:
                        self._pending[part.record_id] = part
                log.warning("reports.flush_failed_kept", error=str(exc), pending=self.pending)
                return False
        return True

    async def run(self, interval_s: float = 1.0) -> None:
        """Background task: flush every ``interval_s`` (the app flushes once more when it stops)."""
        while True:
            await asyncio.sleep(interval_s)
            await self.flush()

    async def apply_feedback(self, record_id: str, feedback: Resolution | FollowUp) -> None:
        """Count the order system's feedback in its call's cells (newest ``at`` wins); Redis errors
        propagate, so the order system's post fails and is retried."""
        version = int(feedback.at.timestamp() * 1000)
        counts = json.dumps(feedback_counts(feedback))
        await self._run([_Part(record_id, feedback.kind, version, (counts,))])

    async def _run(self, parts: list[_Part]) -> None:
        ttls = [self.retention_days * 86_400, FEEDBACK_DAYS * 86_400, REPLACE_DAYS * 86_400]
        async with self._redis.pipeline(transaction=False) as pipe:
            for part in parts:
                await self._apply(
                    keys=[self.keys.record(part.record_id), self.keys.increments(part.record_id)],
                    args=[part.name, part.version, *ttls, *part.args],
                    client=pipe,
                )
            results = await pipe.execute()
        for part, result in zip(parts, results, strict=True):
            if result == -1:
                log.warning("reports.revision_too_late_kept_first_counts", record_id=part.record_id)

    async def cells(self, first: dt.date, last: dt.date) -> dict[Cell, Counter[str]]:
        """Every non-empty cell of the local days ``first`` to ``last`` (inclusive)."""
        days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(self.keys.day(day))
            answers = await pipe.execute()
        found: dict[Cell, Counter[str]] = {}
        for day, fields in zip(days, answers, strict=True):
            for name, value in fields.items():
                slot, _, rest = _text(name).partition("|")
                scope, _, counter = rest.rpartition("|")
                found.setdefault(Cell(day, int(slot), scope), Counter())[counter] += int(value)
        return found

    async def month(self, month: str) -> dict[str, Counter[str]]:
        """The month's counts by scope (``yyyy-mm``, local time)."""
        found: dict[str, Counter[str]] = {}
        for name, value in (await self._redis.hgetall(self.keys.month(month))).items():
            scope, _, counter = _text(name).rpartition("|")
            found.setdefault(scope, Counter())[counter] += int(value)
        return found
