"""What one final call record adds to the half-hour report buckets. Pure: no clock, no I/O.

Intervals are half hours of Beijing time (Asia/Shanghai, UTC+8 all year: no DST), starting at :00
and :30; slot 0 is 00:00-00:30 of a local day, slot 47 is 23:30-24:00.

Scopes and what is counted where:
- ``queue:<name>``: per queue visit, in the slot the caller joined it. A caller who overflows from an
  expert queue to the general seats is offered to both, so queue totals may exceed the call totals.
- ``all``, ``line:<number>``, ``dept:<department>``: per citizen call, in the slot it arrived. The
  department is the dialled line's (12345 dialled directly has none).
The call back's own queue visit (appended to the record of the call it answers) is not offered
work: counting it would count the citizen twice and flatter the service level, as the live KPIs
(gateway.queues.recorder) leave call backs out too. Durations are whole milliseconds, so adding
and taking back a record's counts is exact.

Feedback (resolution, the follow-up's satisfaction) lands where the call's per-call counts are:
``feedback_cells`` names those places.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import GatewayError
from gateway.queues.stats import CHINA_TZ
from gateway.records.model import CallRecord, QueueVisit, Stage
from gateway.vocabulary import DispositionKind, HandoverOutcome, PartyKind, QueueResult, TargetKind

SLOT_MIN = 30
SLOTS_PER_DAY = 24 * 60 // SLOT_MIN
SHORT_ABANDON_S = 5.0  # callers who hang up this fast never had a chance to be answered
DEFAULT_SERVICE_LEVEL_S = 15
ALL = "all"
MAX_RANGE_DAYS = 92  # a quarter: what one report reads at once


class ReportRangeError(GatewayError):
    code = "reports.range"


def check_range(first: dt.date, last: dt.date) -> None:
    if last < first:
        raise ReportRangeError(f"the range ends ({last}) before it starts ({first})")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ReportRangeError(f"at most {MAX_RANGE_DAYS} days at once; {first} .. {last} is longer")


def local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(CHINA_TZ)


def slot_of(moment: dt.datetime) -> tuple[dt.date, int]:
    """The local day and the half-hour slot of an aware moment."""
    here = local(moment)
    return here.date(), (here.hour * 60 + here.minute) // SLOT_MIN


def slot_start(day: dt.date, slot: int) -> dt.datetime:
    minutes = slot * SLOT_MIN
    return dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), CHINA_TZ)


def slot_label(slot: int) -> str:
    """``"08:30-09:00"``; the last slot ends at 24:00."""
    start, end = slot * SLOT_MIN, (slot + 1) * SLOT_MIN
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def previous_month(month: str) -> str:
    year, number = map(int, month.split("-"))
    return f"{year - 1:04d}-12" if number == 1 else f"{year:04d}-{number - 1:02d}"


@dataclass(frozen=True)
class Cell:
    """One half hour of one scope."""

    day: dt.date
    slot: int
    scope: str


Contribution = dict[Cell, Counter[str]]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _wait_s(visit: QueueVisit) -> float:
    return ((visit.left_at or visit.joined_at) - visit.joined_at).total_seconds()


def counted_visits(record: CallRecord) -> list[QueueVisit]:
    """The caller's own queue visits, without the call back's (see the module docstring)."""
    if record.callback is None:
        return list(record.queues)
    return [v for v in record.queues if v.joined_at < record.callback.requested_at]


def call_cells(record: CallRecord) -> list[Cell]:
    """Where the per-call counts (and the call's feedback) of ``record`` go."""
    day, slot = slot_of(record.times.arrived_at)
    scopes = [ALL]
    if record.legacy_line:
        scopes.append(f"line:{record.legacy_line}")
    if record.department:
        scopes.append(f"dept:{record.department}")
    return [Cell(day, slot, scope) for scope in scopes]


def contribution(record: CallRecord, service_level_s: Mapping[str, int]) -> Contribution:
    """Every counter ``record`` adds, by cell; empty for interim records (only final ones count)."""
    if record.stage is not Stage.FINAL:
        return {}
    out: Contribution = {}
    visits = counted_visits(record)
    visit_cells = _queue_counts(record, visits, service_level_s, out)
    per_call = _call_counts(record, visits, service_level_s)
    for cell in call_cells(record):
        out[cell] = per_call.copy()
    _queue_work(record, visit_cells, out)
    return {cell: +counts for cell, counts in out.items() if +counts}


def _queue_counts(
    record: CallRecord, visits: list[QueueVisit], service_level_s: Mapping[str, int], out: Contribution
) -> dict[str, Cell]:
    """Offered, answered, abandoned ... per visit; returns each queue's cell (its first visit's)."""
    cells: dict[str, Cell] = {}
    for visit in visits:
        cell = Cell(*slot_of(visit.joined_at), f"queue:{visit.queue}")
        cells.setdefault(visit.queue, cell)
        counts = out.setdefault(cell, Counter())
        counts["offered"] += 1
        wait = _wait_s(visit)
        if visit.result is QueueResult.ANSWERED:
            counts["answered"] += 1
            counts["answered_in_sl"] += wait <= service_level_s.get(visit.queue, DEFAULT_SERVICE_LEVEL_S)
            counts["wait_answered_ms"] += _ms(wait)
        elif visit.result is QueueResult.ABANDONED:
            counts["abandoned"] += 1
            counts["short_abandoned"] += wait < SHORT_ABANDON_S
            counts["wait_abandoned_ms"] += _ms(wait)
        elif visit.result is QueueResult.CALLBACK_REQUESTED:
            counts["callbacks"] += 1
        elif visit.result in (QueueResult.OVERFLOWED, QueueResult.TIMEOUT):
            counts["overflowed"] += 1  # left unanswered for the next step of its route
    return cells


def _queue_work(record: CallRecord, cells: dict[str, Cell], out: Contribution) -> None:
    """Talk, hold, wrap-up and hand-overs of each queue's seats, in the queue's cell."""
    seat_queue: dict[str, str] = {}
    last_queue = None
    for leg in record.legs:
        if leg.kind is PartyKind.SEAT and leg.answered_at is not None and leg.queue in cells:
            counts = out[cells[leg.queue]]
            counts["talk_ms"] += _ms(leg.talk_s)
            counts["hold_ms"] += _ms(leg.hold_s)
            seat_queue[leg.party] = last_queue = leg.queue
    if last_queue is not None and record.durations.wrap_up_s is not None:
        out[cells[last_queue]]["wrapup_ms"] += _ms(record.durations.wrap_up_s)
        out[cells[last_queue]]["wrapups"] += 1
    for handover in record.handovers:
        queue = seat_queue.get(handover.from_seat or "")
        if queue is not None and handover.outcome is HandoverOutcome.COMPLETED:
            out[cells[queue]].update(_handover_kinds(handover.mode.value, handover.target_kind))


def _handover_kinds(mode: str, target: TargetKind) -> Counter[str]:
    kinds = Counter({f"handover_{mode}": 1})
    if target is TargetKind.EMERGENCY:
        kinds["handover_emergency"] += 1
    return kinds


def _call_counts(
    record: CallRecord, visits: list[QueueVisit], service_level_s: Mapping[str, int]
) -> Counter[str]:
    counts: Counter[str] = Counter(calls=1)
    answered = next((v for v in visits if v.result is QueueResult.ANSWERED), None)
    if visits:
        counts["offered"] += 1
    if answered is not None and answered.left_at is not None:
        # The citizen's wait: from the first queue to the seat, across overflows.
        wait = (answered.left_at - visits[0].joined_at).total_seconds()
        counts["answered"] += 1
        counts["answered_in_sl"] += wait <= service_level_s.get(answered.queue, DEFAULT_SERVICE_LEVEL_S)
        counts["wait_answered_ms"] += _ms(wait)
    disposition = record.disposition
    if disposition.kind is DispositionKind.ABANDONED and visits and answered is None:
        wait = disposition.abandoned_after_s or 0.0
        counts["abandoned"] += 1
        counts["short_abandoned"] += wait < SHORT_ABANDON_S
        counts["wait_abandoned_ms"] += _ms(wait)
    if record.callback is not None:
        counts["callbacks"] += 1
    durations = record.durations
    counts["talk_ms"] += _ms(durations.talk_s)
    counts["hold_ms"] += _ms(durations.hold_s)
    if durations.wrap_up_s is not None and answered is not None:
        counts["wrapup_ms"] += _ms(durations.wrap_up_s)
        counts["wrapups"] += 1
    for handover in record.handovers:
        if handover.outcome is HandoverOutcome.COMPLETED:
            counts.update(_handover_kinds(handover.mode.value, handover.target_kind))
    if record.survey is not None:
        counts[f"survey_{record.survey.result.value}"] += 1
    return +counts
