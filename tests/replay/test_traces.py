"""Every recorded Asterisk 22 trace through the real parser and the tracker.

Expected figures come from each trace's .md (what was done, and what app_queue itself reported:
HoldTime, RingTime, TalkTime), so where the tracker deliberately differs from app_queue (who is
billed after a Redirect or a transfer) the test says so.
"""

from __future__ import annotations

import pytest

from gateway.calls.model import Call, Party, SeatState
from gateway.calls.tracker import CallEnded, Output
from gateway.vocabulary import DispositionKind, HandoverMode, HandoverOutcome, QueueResult, TargetKind
from tests.replay.recorded import replay

ALL_TRACES = ["01", "02", "03", "04", "05", "06", "06b", "07", "08", "09", "09b", "09c", "09d", "10"]
ALL_TRACES += ["11", "11b", "11c", "11d"]


def ended(outputs: list[Output]) -> list[Call]:
    return [o.call for o in outputs if isinstance(o, CallEnded)]


def only_call(name: str) -> Call:
    _, outputs = replay(name)
    calls = ended(outputs)
    assert len(calls) == 1
    return calls[0]


def party(call: Call, seat: str) -> Party:
    return next(p for p in call.parties if p.party == seat)


def seconds(value: float) -> float:
    return round(value, 1)


@pytest.mark.parametrize("name", ALL_TRACES)
def test_every_trace_replays_and_leaves_nothing_behind(name: str) -> None:
    tracker, outputs = replay(name)
    assert tracker.calls == {}
    assert tracker.live_legs == 0
    for call in ended(outputs):
        assert call.disposition is not None
        assert call.ended_at is not None
        assert all(p.ended_at is not None for p in call.parties)
        assert all(h.outcome is not HandoverOutcome.PENDING for h in call.handovers)


def test_01_answered_call_from_a_legacy_line() -> None:
    tracker, _ = replay("01", until=1.0)
    assert tracker.seats["1001"].state is SeatState.RINGING
    assert len(tracker.queues["hotline-general"].waiting) == 1
    assert seconds(tracker.queues["hotline-general"].longest_wait_s(1.0)) == 0.5
    tracker, _ = replay("01", until=4.0)
    assert tracker.seats["1001"].state is SeatState.ON_CALL
    assert tracker.calls["caller-s01-798895"].answered_at is not None

    call = only_call("01")
    assert call.caller_number == "13800000001"
    assert call.legacy_line == "12315"
    assert call.disposition is not None
    assert call.disposition.kind is DispositionKind.ANSWERED
    assert [(v.queue, v.result) for v in call.queues] == [("hotline-general", QueueResult.ANSWERED)]
    assert call.seat_ids == ["1001"]
    seat = party(call, "1001")
    # app_queue: HoldTime=2, RingTime=2 (AgentConnect), TalkTime=3 (AgentComplete).
    assert seconds(call.wait.total) == 2.0
    assert seconds(seat.ring.total) == 2.0
    assert seconds(seat.talk.total) == 3.0
    assert call.handovers == []


def test_02_seat_that_never_answered_is_not_billed() -> None:
    tracker, outputs = replay("02")
    call = ended(outputs)[0]
    silent, answering = party(call, "1009"), party(call, "1002")
    assert silent.answered_at is None
    assert silent.no_answer
    assert silent.talk.total == 0.0
    assert seconds(silent.ring.total) == 5.0  # AgentRingNoAnswer RingTime=5000 (milliseconds)
    assert seconds(answering.ring.total) == 2.0  # AgentConnect RingTime=2 (seconds)
    assert seconds(answering.talk.total) == 2.0
    assert seconds(call.wait.total) == 8.0  # HoldTime=8
    assert call.seat_ids == ["1002"]
    assert tracker.seats["1009"].calls_taken == 0
    assert tracker.seats["1002"].calls_taken == 1


def test_03_abandon_while_every_seat_is_paused() -> None:
    tracker, _ = replay("03", until=2.0)
    for seat in ("1001", "1002"):
        assert tracker.seats[seat].state is SeatState.PAUSED
        assert tracker.seats[seat].paused_reason == "lunch"
    assert len(tracker.queues["hotline-general"].waiting) == 1

    tracker, outputs = replay("03")
    call = ended(outputs)[0]
    assert call.disposition is not None
    assert call.disposition.kind is DispositionKind.ABANDONED
    assert call.disposition.abandoned_after_s is not None
    assert seconds(call.disposition.abandoned_after_s) == 4.0  # QueueCallerAbandon HoldTime=4
    assert call.queues[0].result is QueueResult.ABANDONED
    figures = tracker.queues["hotline-general"]
    assert (figures.offered, figures.answered, figures.abandoned) == (1, 0, 1)
    assert figures.abandoned_of_offered == 1.0
    assert figures.service_level_of_answered is None  # nothing answered: no denominator
    assert {tracker.seats[s].state for s in ("1001", "1002")} == {SeatState.READY}


def test_04_redirect_bills_the_first_seat_only_until_the_caller_left() -> None:
    call = only_call("04")
    first, expert = party(call, "1002"), party(call, "1003")
    # app_queue's AgentComplete for hotline-general says TalkTime=6: it includes the expert's time.
    assert seconds(first.talk.total) == 2.0
    assert seconds(expert.talk.total) == 2.0
    assert call.seat_ids == ["1002", "1003"]
    assert [(v.queue, v.result) for v in call.queues] == [
        ("hotline-general", QueueResult.ANSWERED),
        ("expert-market", QueueResult.ANSWERED),
    ]
    (handover,) = call.handovers
    assert (handover.mode, handover.from_seat, handover.target_kind, handover.target, handover.outcome) == (
        HandoverMode.BLIND,
        "1002",
        TargetKind.QUEUE,
        "expert-market",
        HandoverOutcome.COMPLETED,
    )
    assert seconds(call.wait.total) == 4.0  # two queue visits, 2 s each


def test_05_blind_transfer_ends_the_transferring_seats_party_at_once() -> None:
    call = only_call("05")
    seat, expert = party(call, "1001"), party(call, "1003")
    assert seconds(seat.talk.total) == 2.0  # AgentComplete Reason=transfer TalkTime=2
    assert seconds(expert.talk.total) == 2.0
    (handover,) = call.handovers
    assert (handover.mode, handover.from_seat, handover.target, handover.outcome) == (
        HandoverMode.BLIND,
        "1001",
        "expert-market",
        HandoverOutcome.COMPLETED,
    )


def test_06_attended_transfer_keeps_consult_and_hold_apart() -> None:
    tracker, outputs = replay("06")
    call = ended(outputs)[0]
    seat, specialist = party(call, "1002"), party(call, "1004")
    # app_queue says TalkTime=8 for 1002: it counts the consultation and the hold as talk.
    assert seconds(seat.talk.total) == 2.3
    assert seconds(seat.hold.total) == 5.3
    assert seconds(specialist.talk.total) == 6.0  # AgentComplete policy-specialist TalkTime=6
    assert seconds(call.hold.total) == 5.3
    consult = [v for v in call.queues if v.consult]
    assert [(v.queue, v.result) for v in consult] == [("policy-specialist", QueueResult.ANSWERED)]
    assert seconds(call.wait.total) == 2.0  # the consultation's queue wait is not the caller's
    (handover,) = call.handovers
    assert (handover.mode, handover.from_seat, handover.target, handover.outcome) == (
        HandoverMode.CONSULT,
        "1002",
        "policy-specialist",
        HandoverOutcome.COMPLETED,
    )
    assert tracker.queues["policy-specialist"].answered == 1


def test_06_attended_transfer_is_pending_until_asterisk_confirms_it() -> None:
    tracker, _ = replay("06", until=9.0)
    (handover,) = tracker.calls["caller-s06-798895"].handovers
    assert handover.outcome is HandoverOutcome.PENDING


def test_06b_successfully_queued_atxfer_that_never_happened_is_no_handover() -> None:
    call = only_call("06b")
    assert call.handovers == []
    assert call.seat_ids == ["1001"]
    assert seconds(call.hold.total) == 21.6  # Hold 4.758 .. Unhold 26.347
    assert seconds(party(call, "1001").talk.total) == 5.4


def test_07_threeway_conference_adopts_the_originated_specialist() -> None:
    tracker, outputs = replay("07")
    (call,) = ended(outputs)  # the specialist's own Linkedid is not a second citizen call
    seat, specialist = party(call, "1002"), party(call, "1004")
    assert seconds(seat.talk.total) == 7.0  # AgentComplete Reason=agent TalkTime=7
    assert seconds(specialist.talk.total) == 5.0  # joined 6.526, caller left 11.542
    (handover,) = call.handovers
    assert (handover.mode, handover.from_seat, handover.target_kind, handover.target, handover.outcome) == (
        HandoverMode.THREEWAY,
        "1002",
        TargetKind.SEAT,
        "1004",
        HandoverOutcome.COMPLETED,
    )
    assert tracker.seats["1004"].calls_taken == 1


def test_08_catalogue_pause_reason_membership_changes_and_two_calls() -> None:
    tracker, _ = replay("08", until=3.0)
    assert tracker.seats["1002"].state is SeatState.PAUSED
    assert tracker.seats["1002"].paused_reason == "break"
    assert tracker.seats["1001"].state is SeatState.ON_CALL

    tracker, outputs = replay("08")
    answered, abandoned = ended(outputs)
    assert answered.seat_ids == ["1001"]
    assert abandoned.disposition is not None
    assert abandoned.disposition.kind is DispositionKind.ABANDONED
    assert seconds(abandoned.disposition.abandoned_after_s or 0.0) == 1.0  # HoldTime=1
    assert set(tracker.seats["1003"].memberships) == {"expert-market"}  # QueueAdd then QueueRemove
    figures = tracker.queues["hotline-general"]
    assert (figures.offered, figures.answered, figures.abandoned, figures.answered_within_sl) == (2, 1, 1, 1)
    assert figures.service_level_of_answered == 1.0


def test_10_injected_and_forged_events_make_no_calls() -> None:
    tracker, outputs = replay("10")
    assert outputs == []
    assert tracker.seats == {}
