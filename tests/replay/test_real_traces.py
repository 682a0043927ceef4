"""The traces of the real PBX (SIP seats and trunk, the rendered dialplans) through the tracker.

Each is replayed twice: as recorded (a read-all user: every event) and as the gateway's own
manager user receives it (its read classes and eventfilter), which is what it decides on. The
real traces carry no times (``recorded_real``), so only order-dependent facts are asserted.
"""

from __future__ import annotations

import pytest

from gateway.calls.model import Call, SeatState
from gateway.calls.tracker import CallEnded, QueueRules, Tracker
from gateway.records.from_calls import RecordBuilder
from gateway.vocabulary import DispositionKind, QueueResult
from tests.replay.recorded import recorded_real, replay

# 04 and 04b start with the call already up and 04 ends before the specialist hangs up (the
# recorder listened only around the consult): they are read by the transfer machine's tests.
REAL_TRACES = ["01", "02", "03", "05"]
# hotline_merge.yaml's wrap-up for hotline-general (the seat's member shows Wrapuptime 0).
RULES = {"hotline-general": QueueRules(service_level_s=20, wrapup_s=10)}


def replay_real(name: str, *, as_controller: bool, until: int | None = None) -> tuple[Tracker, list[Call]]:
    messages = recorded_real(name, as_controller=as_controller)
    tracker = Tracker(queue_rules=RULES)
    _, outputs = replay(name, tracker=tracker, messages=messages[:until])
    return tracker, [o.call for o in outputs if isinstance(o, CallEnded)]


@pytest.mark.parametrize("as_controller", [False, True], ids=["read-all", "controller"])
@pytest.mark.parametrize("name", REAL_TRACES)
def test_every_real_trace_replays_and_leaves_nothing_behind(name: str, as_controller: bool) -> None:
    tracker, calls = replay_real(name, as_controller=as_controller)
    assert tracker.calls == {}
    assert tracker.live_legs == 0
    assert not tracker.state.undecided
    assert all(c.disposition is not None for c in calls)
    RecordBuilder("pbx-1").records([CallEnded(c) for c in calls], now=1e6)  # valid records


@pytest.mark.parametrize("as_controller", [False, True], ids=["read-all", "controller"])
def test_01_a_parallel_lines_timeout_is_an_overflow_not_an_abandon(as_controller: bool) -> None:
    """Queue() timed out: QueueCallerAbandon (HoldTime=20), Leave, then the caller joins hotline-general."""
    tracker, (call,) = replay_real("01", as_controller=as_controller)
    assert call.disposition is not None
    assert call.disposition.kind is DispositionKind.ANSWERED
    assert [(v.queue, v.result) for v in call.queues] == [
        ("expert-health", QueueResult.OVERFLOWED),
        ("hotline-general", QueueResult.ANSWERED),
    ]
    expert = tracker.queues["expert-health"]
    assert (expert.offered, expert.answered, expert.abandoned) == (1, 0, 0)
    assert expert.abandoned_of_offered == 0.0
    (record,) = RecordBuilder("pbx-1").records([CallEnded(call)], now=1e6)
    assert [(q.queue, q.result) for q in record.queues] == [
        ("expert-health", QueueResult.OVERFLOWED),
        ("hotline-general", QueueResult.ANSWERED),
    ]


def test_01_the_visit_is_undecided_between_leave_and_the_next_event() -> None:
    """Between QueueCallerLeave and the caller's next event nothing is counted either way."""
    messages = recorded_real("01", as_controller=True)
    leave = next(i for i, (_, m) in enumerate(messages) if m.event == "QueueCallerLeave")
    tracker, _ = replay_real("01", as_controller=True, until=leave + 1)
    (call,) = tracker.calls.values()
    assert call.queues[0].result is None
    assert call.queues[0].left_at is not None
    assert tracker.queues["expert-health"].abandoned == 0


def test_a_caller_who_hangs_up_after_queue_caller_abandon_has_abandoned() -> None:
    """The real 01 cut at the caller's QueueCallerLeave, then its hang-up: a real abandon."""
    messages = recorded_real("01", as_controller=True)
    leave = next(i for i, (_, m) in enumerate(messages) if m.event == "QueueCallerLeave")
    hangup = next(
        m for _, m in messages if m.event == "Hangup" and (m.get("Channel") or "").startswith("PJSIP/carrier")
    )
    tracker = Tracker(queue_rules=RULES)
    _, outputs = replay("01", tracker=tracker, messages=[*messages[: leave + 1], (99.0, hangup)])
    (call,) = [o.call for o in outputs if isinstance(o, CallEnded)]
    assert call.queues[0].result is QueueResult.ABANDONED
    assert call.disposition is not None
    assert call.disposition.kind is DispositionKind.ABANDONED
    assert tracker.queues["expert-health"].abandoned == 1


@pytest.mark.parametrize("as_controller", [False, True], ids=["read-all", "controller"])
def test_03_a_seat_paused_during_its_call_is_paused_after_it(as_controller: bool) -> None:
    """QueueMemberPause (Paused=1, 会议, InCall=1) mid-call; the call ends inside the 10 s wrap-up."""
    messages = recorded_real("03", as_controller=as_controller)
    pause = next(i for i, (_, m) in enumerate(messages) if m.event == "QueueMemberPause")
    tracker, _ = replay_real("03", as_controller=as_controller, until=pause + 1)
    assert tracker.seats["1015"].state is SeatState.ON_CALL  # still talking
    tracker, (call,) = replay_real("03", as_controller=as_controller)
    seat = tracker.seats["1015"]
    assert seat.wrap_up_until is not None  # inside the wrap-up time ...
    assert (seat.state, seat.paused_reason) == (SeatState.PAUSED, "会议")  # ... but paused, as Asterisk says
    tracker.tick(1e6, call.ended_at or call.arrived_at)
    assert (seat.state, seat.paused_reason) == (SeatState.PAUSED, "会议")  # and after it
