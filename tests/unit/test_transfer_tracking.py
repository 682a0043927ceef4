"""The tracker following the legs the transfer and callback services create (synthetic flows, as in
test_tracker): a three-way target joining its call, the return after a failed blind hand-over,
outcomes the service settles, and the callback's original arrival."""

from __future__ import annotations

import datetime as dt

from gateway.calls.model import LegRole, SeatState
from gateway.vocabulary import HandoverMode, HandoverOutcome, PartyKind, QueueResult, TargetKind
from tests.unit.test_tracker import T0, Flow


def _threeway(flow: Flow, call: str = "c1") -> tuple[str, str]:
    """c1 answered by 1001, both legs redirected into room 8001, a target originated as t1 / t1-2."""
    caller, seat_leg = flow.answered_call(call)
    for leg in (seat_leg, caller):
        flow.at(20).send("ConfbridgeJoin", Conference="8001", Uniqueid=leg, Linkedid=call)
    flow.channel("Local/7007@hotline-threeway", "t1", "t1")
    _, half = flow.channel("Local/7007@hotline-threeway", "t1", "t1-2")
    return caller, half


def test_three_way_target_joins_its_call_by_the_hand_over_event_and_completes_in_the_room() -> None:
    flow = Flow()
    flow.member("4001", queue="policy-specialist")
    caller, half = _threeway(flow)
    flow.user_event("HotlineHandover", "t1", half, Target="policy-specialist", Kind="policy",
                    Recording="calls/t1-2-handover.wav", Call="c1")  # fmt: skip
    assert set(flow.tracker.calls) == {"c1"}
    flow.at(21).join("t1", half, queue="policy-specialist")  # the target's own Linkedid: still c1's
    specialist = flow.ring("t1", half, "4001", queue="policy-specialist")
    flow.at(25).answer("t1", half, specialist, "4001", queue="policy-specialist")
    flow.send("ConfbridgeJoin", Conference="8001", Uniqueid="t1", Linkedid="t1")
    call = flow.tracker.calls["c1"]
    (handover,) = call.handovers
    assert (handover.mode, handover.target_kind, handover.target, handover.outcome) == (
        HandoverMode.THREEWAY, TargetKind.QUEUE, "policy-specialist", HandoverOutcome.COMPLETED
    )  # fmt: skip
    assert handover.recording == "calls/t1-2-handover.wav"
    assert call.legs["t1"].role is LegRole.CONSULT
    assert [p.party for p in call.parties if p.active] == ["1001", "4001"]
    flow.at(80).hangup("c1", caller)
    (ended,) = flow.ended()
    assert [v.queue for v in ended.queues if not v.consult] == ["hotline-general"]
    assert flow.tracker.calls == {}


def test_a_hand_over_event_naming_no_live_call_joins_nothing() -> None:
    flow = Flow()
    _, half = _threeway(flow)
    flow.user_event("HotlineHandover", "t1", half, Target="policy-specialist", Kind="policy", Call="c404")
    assert set(flow.tracker.calls) == {"c1"}
    assert flow.tracker.calls["c1"].handovers[0].target is None  # the three-way still waits for its target


def _blind_then_unanswered(flow: Flow) -> tuple[str, str]:
    flow.member("2001", queue="expert-market")
    caller, seat_leg = flow.answered_call("c1")
    flow.at(20).user_event("HotlineHandover", "c1", caller, Target="expert-market", Kind="expert")
    flow.hangup("c1", seat_leg)
    flow.join("c1", caller, queue="expert-market")
    flow.at(65).send("QueueCallerLeave", Queue="expert-market", Uniqueid=caller, Linkedid="c1", Count=0)
    return caller, seat_leg


def test_back_to_the_seat_after_an_unanswered_blind_hand_over_is_a_seat_leg_not_a_hand_over() -> None:
    flow = Flow()
    caller, _ = _blind_then_unanswered(flow)
    seat = flow.tracker.seats["1001"]
    _, back = flow.channel("PJSIP/1001", "c1")  # the seat's own device (Flow's members are PJSIP/<seat>)
    flow.send(
        "DialBegin",
        Uniqueid=caller,
        Linkedid="c1",
        DestUniqueid=back,
        DestLinkedid="c1",
        DialString="PJSIP/1001",
    )
    call = flow.tracker.calls["c1"]
    (handover,) = call.handovers
    assert handover.outcome is HandoverOutcome.NO_ANSWER
    assert seat.state is SeatState.RINGING
    flow.at(68).send("DialEnd", Uniqueid=caller, DestUniqueid=back, DialStatus="ANSWER")
    first, returned = [p for p in call.parties if p.party == "1001"]
    assert (returned.kind, returned.queue, returned.via_leg) == (PartyKind.SEAT, None, caller)
    assert returned.answered_at == T0 + dt.timedelta(seconds=68)
    assert first.ended_at == T0 + dt.timedelta(seconds=20)  # stopped at the hand-over, not at the return
    assert (seat.state, seat.calls_taken) == (SeatState.ON_CALL, 2)
    flow.at(90).hangup("c1", caller)
    (ended,) = flow.ended()
    assert ended.seat_ids == ["1001", "1001"]
    assert [(v.queue, v.result) for v in ended.queues] == [
        ("hotline-general", QueueResult.ANSWERED), ("expert-market", QueueResult.TIMEOUT)
    ]  # fmt: skip


def test_back_in_the_general_queue_is_the_return_not_a_second_hand_over() -> None:
    flow = Flow()
    caller, _ = _blind_then_unanswered(flow)
    flow.join("c1", caller)
    (handover,) = flow.tracker.calls["c1"].handovers
    assert (handover.target, handover.outcome) == ("expert-market", HandoverOutcome.NO_ANSWER)


def test_the_transfer_service_settles_a_pending_hand_over() -> None:
    flow = Flow()
    caller, _ = flow.answered_call("c1")
    flow.at(20).user_event("HotlineHandover", "c1", caller, Target="expert-market", Kind="expert")
    flow.tracker.settle_handover("c1", HandoverOutcome.BUSY)
    flow.tracker.settle_handover("c404", HandoverOutcome.BUSY)  # an unknown call: nothing happens
    assert flow.tracker.calls["c1"].handovers[0].outcome is HandoverOutcome.BUSY


def test_callback_keeps_the_original_arrival_from_join_time() -> None:
    flow = Flow()
    _, caller = flow.inbound("c1")
    flow.at(5).join("c1", caller)
    flow.at(130).user_event("HotlineCallback", "c1", caller, Queue="hotline-general", JoinTime="1795798895")
    request = flow.tracker.calls["c1"].callback
    assert request is not None
    assert request.joined_at == dt.datetime.fromtimestamp(1795798895, dt.UTC)
    _, other = flow.inbound("c2")
    flow.at(7).join("c2", other)
    flow.at(140).user_event("HotlineCallback", "c2", other, JoinTime="soon")  # untrusted text: ignored
    fallback = flow.tracker.calls["c2"].callback
    assert fallback is not None
    assert fallback.joined_at == T0 + dt.timedelta(seconds=7)


def test_a_three_way_target_that_dials_before_the_caller_is_in_the_room_is_still_a_three_way() -> None:
    flow = Flow()
    caller, seat_leg = flow.answered_call("c1")
    flow.channel("Local/110@hotline-threeway", "t1", "t1")
    _, half = flow.channel("Local/110@hotline-threeway", "t1", "t1-2")
    flow.at(20).user_event("HotlineHandover", "t1", half, Target="110", Kind="emergency", Call="c1")
    for leg in (seat_leg, caller):
        flow.send("ConfbridgeJoin", Conference="8001", Uniqueid=leg, Linkedid="c1")
    (handover,) = flow.tracker.calls["c1"].handovers
    assert (handover.mode, handover.target, handover.from_seat) == (HandoverMode.THREEWAY, "110", "1001")
