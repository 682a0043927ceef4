"""The report buckets in Redis: written once per call record, kept ``retention_days``, read by range.

Layout (prefix ``hotline:reports``):
- ``:day:<yyyymmdd>`` one hash per local (Beijing) day, fields ``<slot>|<scope>|<counter>``;
- ``:month:<yyyy-mm>`` one hash per local month, fields ``<scope>|<counter>`` (the same counts
  without the slot, so the monthly ranking reads one hash instead of a month of days);
- ``:record:<record id>:increments`` what each record added, one compact string (kept
  ``REPLACE_DAYS``), so a newer revision (a late survey, a call back's outcome, a backstop
  correction) replaces its old counts instead of adding to them;
- ``:record:<record id>`` the marker, one string: the versions seen and where the call's feedback
  goes (kept ``FEEDBACK_DAYS``), so the order system's feedback lands in the call's cells
  whichever of the two arrives first.
Both are strings rather than JSON or hashes naming every key and field: per record they cost
Redis about a tenth and a quarter of what they did (``bench/reports.py``).
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
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from gateway.keys import ReportKeys
from gateway.records.feedback import FollowUp, Resolution
from gateway.records.model import CallRecord, Stage
from gateway.reports.aggregate import Cell, call_cells, contribution

log = structlog.get_logger(__name__)

FLUSH_CHUNK = 500
MAX_PENDING = 200_000  # records held while Redis is away (about 100 MB); older ones are dropped

# Revisions of a record (late survey, call back outcome, backstop correction) come within hours;
# the order system's feedback within weeks. What a record added is kept that long to be replaced
# (a copy of the same revision later still counts nothing: the marker knows its version); where
# its feedback goes, this long to be found.
REPLACE_DAYS = 2
FEEDBACK_DAYS = 62

# A record's cells as one compact string (``encode_cells``), rather than a JSON list of key, field
# and count per Redis field: cells ";"-separated, each "<yyyymmdd>|<slot>|<scope>,<scope>...|
# <counter>=<n>,..." (scopes with the same counts share one cell; a feedback target has no counts).
# The script expands it into the day's and the month's hash fields itself; ``ReportKeys`` builds
# the same key names for reading. Scopes never hold the separators (``encode_cells`` refuses them).
SEPARATORS = frozenset(";|,=")

# KEYS: the record's marker, the record's increments. The marker is one string, "<call version>|
# <resolution version>|<follow-up version>|<resolution counts>|<follow-up counts>|<feedback targets>"
# (a key of its own costs Redis about 120 bytes; a hash of fields would cost far more again).
# ARGV: part, version, bucket TTL, marker TTL, increments TTL (s), key prefix, then for part 'call'
# the increments and the feedback targets (compact cells), for the feedback parts its counts
# ("<counter>=<n>,..."), added at the targets the call part stored.
# Returns 1 applied, 0 not newer, -1 a newer revision after its record's increments expired.
_APPLY_PART = """
local marker, increments, part, prefix = KEYS[1], KEYS[2], ARGV[1], ARGV[6]
local f = {string.match(redis.call('GET', marker) or '|||||', '^(%d*)|(%d*)|(%d*)|([^|]*)|([^|]*)|(.*)$')}
local version_at = ({call = 1, resolution = 2, follow_up = 3})[part]
local current = tonumber(f[version_at])
if current and current >= tonumber(ARGV[2]) then return 0 end
local old_increments = redis.call('GET', increments)
if part == 'call' and current and not old_increments then return -1 end
local function counts_of(text)
  local out = {}
  for name, n in string.gmatch(text, '([^,=]+)=(-?%d+)') do out[#out + 1] = {name, tonumber(n)} end
  return out
end
local function cells_of(text)
  local out = {}
  for cell in string.gmatch(text or '', '[^;]+') do
    local day, slot, scopes, counts = string.match(cell, '^(%d+)|(%d+)|([^|]*)|(.*)$')
    local list = {}
    for scope in string.gmatch(scopes, '[^,]+') do list[#list + 1] = scope end
    out[#out + 1] = {day, slot, list, counts_of(counts)}
  end
  return out
end
local touched = {}
local function spread(cells, counts, sign)
  for _, cell in ipairs(cells) do
    local day_key = prefix .. ':day:' .. cell[1]
    local month_key = prefix .. ':month:' .. string.sub(cell[1], 1, 4) .. '-' .. string.sub(cell[1], 5, 6)
    for _, scope in ipairs(cell[3]) do
      for _, c in ipairs(counts or cell[4]) do
        redis.call('HINCRBY', day_key, cell[2] .. '|' .. scope .. '|' .. c[1], sign * c[2])
        redis.call('HINCRBY', month_key, scope .. '|' .. c[1], sign * c[2])
      end
    end
    touched[day_key], touched[month_key] = true, true
  end
end
local targets = cells_of(f[6])
if part == 'call' then
  spread(cells_of(old_increments), nil, -1)
  local moved = cells_of(ARGV[8])
  for i = 4, 5 do
    spread(targets, counts_of(f[i]), -1)
    spread(moved, counts_of(f[i]), 1)
  end
  spread(cells_of(ARGV[7]), nil, 1)
  redis.call('SET', increments, ARGV[7], 'EX', ARGV[5])
  f[6] = ARGV[8]
else
  spread(targets, counts_of(f[version_at + 2]), -1)
  spread(targets, counts_of(ARGV[7]), 1)
  f[version_at + 2] = ARGV[7]
end
f[version_at] = ARGV[2]
redis.call('SET', marker, table.concat(f, '|'), 'EX', ARGV[4])
for key in pairs(touched) do redis.call('EXPIRE', key, ARGV[3]) end
return 1
"""


@dataclass(frozen=True)
class _Part:
    record_id: str
    name: str
    version: int
    args: tuple[str, ...]


def encode_counts(counts: Mapping[str, int]) -> str:
    return ",".join(f"{name}={n}" for name, n in sorted(counts.items()))


def encode_cells(contribution: Mapping[Cell, Mapping[str, int]]) -> str:
    """The compact form the Lua script reads (see ``SEPARATORS``); cells sharing counts share one entry."""
    grouped: dict[tuple[str, int, str], list[str]] = {}
    for cell, counts in contribution.items():
        if SEPARATORS & set(cell.scope):
            raise ValueError(f"scope {cell.scope!r} holds one of {''.join(sorted(SEPARATORS))}")
        grouped.setdefault((f"{cell.day:%Y%m%d}", cell.slot, encode_counts(counts)), []).append(cell.scope)
    return ";".join(
        f"{day}|{slot}|{','.join(scopes)}|{counts}" for (day, slot, counts), scopes in grouped.items()
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def feedback_counts(feedback: Resolution | FollowUp) -> dict[str, int]:
    if isinstance(feedback, Resolution):
        return {feedback.outcome: 1}
    return {f"followup_{feedback.outcome}": 1}


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
        increments = encode_cells(contribution(record, self._service_level_s()))
        targets = encode_cells({cell: {} for cell in call_cells(record)})
        return _Part(record.record_id, "call", record.revision, (increments, targets))

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
        counts = encode_counts(feedback_counts(feedback))
        await self._run([_Part(record_id, feedback.kind, version, (counts,))])

    async def _run(self, parts: list[_Part]) -> None:
        ttls = [self.retention_days * 86_400, FEEDBACK_DAYS * 86_400, REPLACE_DAYS * 86_400]
        async with self._redis.pipeline(transaction=False) as pipe:
            for part in parts:
                await self._apply(
                    keys=[self.keys.record(part.record_id), self.keys.increments(part.record_id)],
                    args=[part.name, part.version, *ttls, self.keys.prefix, *part.args],
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
