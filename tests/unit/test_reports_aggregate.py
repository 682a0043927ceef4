"""What a final call record adds to the half-hour buckets: boundaries, midnight, months, Beijing time."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from gateway.ordersink.examples import emergency_handover
from gateway.records.model import (
    Callback,
    CallbackOutcome,
    CallRecord,
    QueueVisit,
    Stage,
    SurveyResult,
    revision_for,
)
from gateway.reports.aggregate import (
    ALL,
    Cell,
    contribution,
    local,
    month_of,
    previous_month,
    slot_label,
    slot_of,
    slot_start,
)
from gateway.vocabulary import HandoverMode, QueueResult
from tests.support.report_calls import beijing, call

SL = {"hotline-general": 15, "expert-market": 20}
DAY = dt.date(2026, 3, 2)


@pytest.mark.parametrize(
    ("moment", "day", "slot"),
    [
        (beijing(2026, 3, 2, 0, 0), DAY, 0),
        (beijing(2026, 3, 2, 10, 29, 59.999), DAY, 20),
        (beijing(2026, 3, 2, 10, 30), DAY, 21),
        (beijing(2026, 3, 2, 23, 59, 59.999), DAY, 47),
        # UTC 16:00 is Beijing midnight: the next local day's first slot.
        (dt.datetime(2026, 3, 1, 15, 59, 59, tzinfo=dt.UTC), dt.date(2026, 3, 1), 47),
        (dt.datetime(2026, 3, 1, 16, 0, tzinfo=dt.UTC), DAY, 0),
        # No DST in China: +8 h in January and in July alike.
        (dt.datetime(2026, 1, 15, 1, 30, tzinfo=dt.UTC), dt.date(2026, 1, 15), 19),
        (dt.datetime(2026, 7, 15, 1, 30, tzinfo=dt.UTC), dt.date(2026, 7, 15), 19),
    ],
)
def test_slots_are_beijing_half_hours_from_00_and_30(moment: dt.datetime, day: dt.date, slot: int) -> None:
    assert slot_of(moment) == (day, slot)
    assert slot_start(day, slot) <= moment < slot_start(day, slot) + dt.timedelta(minutes=30)


def test_labels_months_and_offsets() -> None:
    assert slot_label(0) == "00:00-00:30"
    assert slot_label(21) == "10:30-11:00"
    assert slot_label(47) == "23:30-24:00"
    assert local(dt.datetime(2026, 7, 1, tzinfo=dt.UTC)).utcoffset() == dt.timedelta(hours=8)
    # The last UTC evening of February is already March in Beijing.
    assert month_of(slot_of(dt.datetime(2026, 2, 28, 16, 5, tzinfo=dt.UTC))[0]) == "2026-03"
    assert previous_month("2026-01") == "2025-12"
    assert previous_month("2026-03") == "2026-02"


def test_an_answered_call_counts_per_queue_and_per_call() -> None:
    record = call(
        beijing(2026, 3, 2, 10, 29, 50),
        wait_s=12.0,
        talk_s=100.0,
        hold_s=5.0,
        wrap_up_s=30.0,
        survey=SurveyResult.BASIC,
    )
    counts = contribution(record, SL)
    # Arrived 10:29:50 (slot 20), joined the queue at 10:29:52: both in slot 20.
    queue = counts.pop(Cell(DAY, 20, "queue:hotline-general"))
    assert queue == Counter(
        offered=1, answered=1, answered_in_sl=1, wait_answered_ms=12_000, talk_ms=100_000, hold_ms=5_000,
        wrapup_ms=30_000, wrapups=1,
    )  # fmt: skip
    per_call = Counter(
        calls=1, offered=1, answered=1, answered_in_sl=1, wait_answered_ms=12_000, talk_ms=100_000,
        hold_ms=5_000, wrapup_ms=30_000, wrapups=1, survey_basic=1,
    )  # fmt: skip
    assert counts == {
        Cell(DAY, 20, ALL): per_call,
        Cell(DAY, 20, "line:12315"): per_call,
        Cell(DAY, 20, "dept:市场监督管理局"): per_call,
    }


def test_a_call_is_counted_where_it_arrived_and_a_visit_where_it_joined() -> None:
    record = call(beijing(2026, 3, 2, 10, 29, 59), wait_s=12.0)
    counts = contribution(record, SL)
    assert Cell(DAY, 20, ALL) in counts  # arrived 10:29:59
    assert Cell(DAY, 21, "queue:hotline-general") in counts  # joined 10:30:01


@pytest.mark.parametrize(("wait_s", "in_sl"), [(15.0, 1), (15.001, 0)])
def test_service_level_threshold_is_inclusive(wait_s: float, in_sl: int) -> None:
    counts = contribution(call(beijing(2026, 3, 2, 9, 0), wait_s=wait_s), SL)
    assert counts[Cell(DAY, 18, "queue:hotline-general")]["answered_in_sl"] == in_sl
    assert counts[Cell(DAY, 18, ALL)]["answered_in_sl"] == in_sl


@pytest.mark.parametrize(("wait_s", "short"), [(4.999, 1), (5.0, 0)])
def test_short_abandons_under_five_seconds_are_counted_apart(wait_s: float, short: int) -> None:
    counts = contribution(call(beijing(2026, 3, 2, 9, 0), wait_s=wait_s, answered=False), SL)
    for cell in (Cell(DAY, 18, "queue:hotline-general"), Cell(DAY, 18, ALL)):
        assert counts[cell]["abandoned"] == 1
        assert counts[cell]["short_abandoned"] == short
        assert counts[cell]["answered"] == 0
        assert counts[cell]["wait_abandoned_ms"] == round(wait_s * 1000)


def test_an_overflow_is_offered_to_both_queues_and_the_citizen_waits_across_them() -> None:
    record = call(beijing(2026, 3, 2, 9, 0), queues=("expert-market", "hotline-general"), wait_s=10.0)
    counts = contribution(record, SL)
    assert counts[Cell(DAY, 18, "queue:expert-market")] == Counter(offered=1, overflowed=1)
    assert counts[Cell(DAY, 18, "queue:hotline-general")]["answered_in_sl"] == 1  # 10 s there
    per_call = counts[Cell(DAY, 18, ALL)]
    assert (per_call["offered"], per_call["answered"]) == (1, 1)
    assert per_call["wait_answered_ms"] == 20_000  # 10 s + 10 s
    assert per_call["answered_in_sl"] == 0  # over the general queue's 15 s


def test_a_call_crossing_midnight_counts_its_visits_on_the_next_day() -> None:
    record = call(beijing(2026, 3, 31, 23, 59, 50), queues=("expert-market", "hotline-general"), wait_s=20)
    counts = contribution(record, SL)
    assert Cell(dt.date(2026, 3, 31), 47, ALL) in counts
    assert Cell(dt.date(2026, 3, 31), 47, "queue:expert-market") in counts  # joined 23:59:52
    assert Cell(dt.date(2026, 4, 1), 0, "queue:hotline-general") in counts  # joined 00:00:12 April 1


def test_hand_overs_by_kind_in_the_answering_queue_and_per_call() -> None:
    blind = contribution(call(beijing(2026, 3, 2, 9, 0), handover=HandoverMode.BLIND), SL)
    emergency = contribution(
        call(beijing(2026, 3, 2, 9, 0), handover=HandoverMode.THREEWAY, to_emergency=True), SL
    )
    for cell in (Cell(DAY, 18, "queue:hotline-general"), Cell(DAY, 18, ALL)):
        assert blind[cell]["handover_blind"] == 1
        assert emergency[cell]["handover_threeway"] == 1
        assert emergency[cell]["handover_emergency"] == 1
        assert blind[cell]["handover_emergency"] == 0


def test_a_call_to_12345_itself_has_no_department_and_interim_records_count_nothing() -> None:
    direct = contribution(call(beijing(2026, 3, 2, 9, 0), line="12345", department=None), SL)
    assert {c.scope for c in direct} == {ALL, "line:12345", "queue:hotline-general"}
    interim = emergency_handover(1)
    assert interim.stage is Stage.INTERIM
    assert contribution(interim, SL) == {}


def _with_callback(record: CallRecord) -> CallRecord:
    """The caller left asking for a call back; the answered call back's visit was appended."""
    left = record.queues[0].left_at
    assert left is not None
    requested = left
    back = requested + dt.timedelta(minutes=5)
    visit = QueueVisit(
        queue="hotline-general",
        joined_at=back,
        left_at=back + dt.timedelta(seconds=1),
        result=QueueResult.ANSWERED,
    )
    ended = back + dt.timedelta(minutes=3)
    data = record.model_dump() | {
        "queues": [
            record.queues[0].model_dump() | {"result": QueueResult.CALLBACK_REQUESTED},
            visit.model_dump(),
        ],
        "callback": Callback(
            number="13800000001",
            queue="hotline-general",
            requested_at=requested,
            joined_at=record.queues[0].joined_at,
            outcome=CallbackOutcome.ANSWERED,
            attempts=1,
            last_attempt_at=back,
            linkedid="1772438999.9",
        ),
        "as_of": ended,
        "revision": revision_for(ended, Stage.FINAL),
        "times": record.times.model_dump() | {"ended_at": ended},
    }
    return CallRecord.model_validate(data)


def test_the_call_backs_own_visit_is_not_offered_work() -> None:
    record = _with_callback(call(beijing(2026, 3, 2, 9, 0), wait_s=130.0, answered=False))
    counts = contribution(record, SL)
    assert counts[Cell(DAY, 18, "queue:hotline-general")] == Counter(offered=1, callbacks=1)
    per_call = counts[Cell(DAY, 18, ALL)]
    assert (per_call["offered"], per_call["answered"], per_call["callbacks"]) == (1, 0, 1)
    assert not any(c.day == DAY and c.slot > 18 for c in counts)
