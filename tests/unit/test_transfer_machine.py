"""The transfer state machine, pure: the recorded Asterisk traces read through ``observe`` (blind 05,
consult 06, the consult that never dials 06b, the three-way 07), then every state and failure with
hand-written facts."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.transfers.machine import (
    Answered,
    Cancel,
    Effect,
    Expired,
    Fact,
    Gone,
    HangUp,
    Joined,
    Leg,
    NotStarted,
    Refused,
    Ringing,
    SendBack,
    Settle,
    State,
    Target,
    TargetLeg,
    Transfer,
    Transferred,
    Unreached,
    Who,
    observe,
    step,
)
from gateway.vocabulary import HandoverMode, HandoverOutcome, TargetKind
from tests.replay.recorded import recorded, recorded_real, wall

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
POLICY = Target(TargetKind.QUEUE, "policy-specialist", "7004", "政策专家组")
POLICE = Target(TargetKind.EMERGENCY, "110", "110", "公安110")


def transfer(
    mode: HandoverMode, target: Target = POLICY, *, call: str = "c1", caller: str = "c1-2", seat: str = "s1"
) -> Transfer:
    return Transfer(
        id="tr-1", call_id=call, mode=mode, target=target, from_seat="1001", caller=Leg(caller, "caller;2"),
        seat=Leg(seat, "Local/1001@agents-00000001;1"), requested_at=T0, deadline=45.0, node="pbx-1",
    )  # fmt: skip


def run_trace(t: Transfer, name: str, *, after: float, before: float = 1e9, prefix: str = "") -> list[Effect]:
    """The events Asterisk sent between ``after`` (the action) and ``before``, through observe and step."""
    effects: list[Effect] = []
    for seconds, message in recorded(name):
        if after <= seconds < before and message.event is not None:
            for fact in observe(t, message.event, message.as_dict(), consult_prefix=prefix):
                effects += step(t, fact, wall(seconds))
    return effects


def states(t: Transfer) -> list[str]:
    return [state.value for state, _ in t.history]


def test_trace_05_blind_transfer_rings_the_expert_queue_and_completes_when_it_answers() -> None:
    t = transfer(HandoverMode.BLIND, Target(TargetKind.QUEUE, "expert-market", "expert", "市场监管专席"),
                 call="caller-s05-798895", caller="caller-s05-798895-2", seat="1795798940.20")  # fmt: skip
    effects = run_trace(t, "05", after=4.5)
    assert states(t) == ["requested", "ringing", "answered", "completed"]
    assert (t.answered_by, t.outcome, effects) == (
        "1003",
        HandoverOutcome.COMPLETED,
        [Settle(HandoverOutcome.COMPLETED)],
    )


def test_trace_06_consult_is_complete_only_at_attended_transfer() -> None:
    t = transfer(
        HandoverMode.CONSULT, call="caller-s06-798895", caller="caller-s06-798895-2", seat="1795798952.26"
    )
    run_trace(t, "06", after=4.5, prefix="Local/7004@transfer-")
    assert states(t) == ["requested", "ringing", "answered", "completed"]
    assert t.answered_by == "1004"
    assert set(t.target_legs) == {"1795798957.28", "1795798957.29"}  # the consultation call's two halves
    assert t.history[-1][1] == wall(10.014)  # AttendedTransfer, not the Atxfer answer at 4.508


def test_trace_06b_atxfer_that_never_dials_fails_when_asterisk_gives_the_caller_back() -> None:
    t = transfer(
        HandoverMode.CONSULT, call="caller-s06b-798895", caller="caller-s06b-798895-2", seat="1795798970.34"
    )
    # Hold, DTMF, and 22 s later Unhold; no consultation call: failed at the Unhold, not left requested.
    assert run_trace(t, "06b", after=4.5, before=29.5, prefix="Local/policy@transfer-") == [
        Settle(HandoverOutcome.FAILED)
    ]  # nothing to hang up: no leg was made
    assert states(t) == ["requested", "failed"]  # "Atxfer successfully queued" proved nothing
    assert t.outcome is HandoverOutcome.FAILED
    assert "never dialled 政策专家组" in t.reason
    assert "gave up collecting" in t.reason


def test_real_04_consult_the_pbx_took_but_never_dialled_fails_at_its_start_deadline() -> None:
    """Real trace 04b (no dial tone): Hold at once, no consultation leg; the service's start deadline."""
    t = transfer(HandoverMode.CONSULT, call="1796223318.33", caller="1796223318.33", seat="1796223324.34")
    for _, message in recorded_real("04b", as_controller=True):
        if message.event == "Unhold":
            break  # ~20 s later: the deadline comes first
        for fact in observe(
            t, message.event or "", message.as_dict(), consult_prefix="Local/7007@hotline-handover-"
        ):
            step(t, fact, T0)
    assert (t.state, t.held) == (State.REQUESTED, True)
    assert step(t, NotStarted(late=True), T0) == [Settle(HandoverOutcome.FAILED)]  # nothing to hang up
    assert t.state is State.FAILED
    assert "still collecting the extension's digits (7004)" in t.reason
    assert "indications.conf" in t.reason


def test_real_04_consult_with_a_dial_tone_rings_answers_and_completes() -> None:
    """Real trace 04 (indications.conf in place): Hold, the 7007 leg, queue, answer, AttendedTransfer."""
    t = transfer(HandoverMode.CONSULT, call="1796224765.0", caller="1796224765.0", seat="1796224771.1")
    for _, message in recorded_real("04", as_controller=True):
        for fact in observe(
            t, message.event or "", message.as_dict(), consult_prefix="Local/7007@hotline-handover-"
        ):
            step(t, fact, T0)
    assert states(t) == ["requested", "ringing", "answered", "completed"]
    assert (t.answered_by, t.outcome, t.held) == ("4001", HandoverOutcome.COMPLETED, True)


def test_a_consult_asterisk_never_took_says_so() -> None:
    t = transfer(HandoverMode.CONSULT)
    step(t, NotStarted(late=True), T0)
    assert "never put on hold" in t.reason
    t = _through(transfer(HandoverMode.CONSULT), CONSULT_LEG, NotStarted(late=True))
    assert t.state is State.REQUESTED  # the leg is there: it started


def test_trace_07_three_way_completes_when_the_target_joins_the_room() -> None:
    t = transfer(
        HandoverMode.THREEWAY, call="caller-s07-798895", caller="caller-s07-798895-2", seat="1795799004.38"
    )
    t.room, t.target_legs = "7107", {"1795799008.42": "", "1795799008.43": ""}
    run_trace(t, "07", after=4.5)
    assert states(t) == ["requested", "completed"]  # originated straight into the room: no queue, no ring
    assert t.target_legs["1795799008.42"] == "Local/1004@agents-00000015;1"
    assert not t.seat_left  # the seat left after completion: a finished transfer takes no more facts


def _through(t: Transfer, *facts: Fact) -> Transfer:
    for fact in facts:
        step(t, fact, T0)
    return t


CONSULT_LEG = TargetLeg("k1", "Local/7004@hotline-handover-00000003;1")
CONSULT_HALF = TargetLeg("k2", "Local/7004@hotline-handover-00000003;2")


@pytest.mark.parametrize(
    ("mode", "facts", "fact", "state", "effects"),
    [
        # Blind: the gateway's deadline sends the caller back; a PBX verdict was already acted on.
        (HandoverMode.BLIND, [Ringing(False)], Expired(), State.TIMED_OUT, [Settle(HandoverOutcome.BUSY), SendBack("1001")]),
        (HandoverMode.BLIND, [Ringing(True)], Cancel(), State.CANCELLED, [Settle(HandoverOutcome.CANCELLED), SendBack("1001")]),
        (HandoverMode.BLIND, [Ringing(True)], Unreached(HandoverOutcome.BUSY, "busy"), State.FAILED, [Settle(HandoverOutcome.BUSY)]),
        (HandoverMode.BLIND, [], Gone(Who.CALLER), State.FAILED, [Settle(HandoverOutcome.FAILED)]),
        # Consult: hanging up the consultation call gives the seat its caller back.
        (HandoverMode.CONSULT, [CONSULT_LEG, CONSULT_HALF, Ringing(True)], Expired(), State.TIMED_OUT,
         [Settle(HandoverOutcome.NO_ANSWER), HangUp(CONSULT_LEG.channel)]),
        (HandoverMode.CONSULT, [CONSULT_LEG, CONSULT_HALF, Answered("4001")], Cancel(), State.CANCELLED,
         [Settle(HandoverOutcome.CANCELLED), HangUp(CONSULT_LEG.channel)]),
        (HandoverMode.CONSULT, [CONSULT_LEG, Answered("4001")], Gone(Who.CALLER), State.FAILED,
         [Settle(HandoverOutcome.FAILED), HangUp(CONSULT_LEG.channel)]),
        (HandoverMode.CONSULT, [CONSULT_LEG, Answered("4001")], Gone(Who.TARGET), State.FAILED,
         [Settle(HandoverOutcome.FAILED), HangUp(CONSULT_LEG.channel)]),
        (HandoverMode.CONSULT, [], Refused("Atxfer failed"), State.FAILED, [Settle(HandoverOutcome.FAILED)]),
        # Three-way: caller and seat stay in the room; alone there, the caller is sent back.
        (HandoverMode.THREEWAY, [CONSULT_LEG, Ringing(True)], Unreached(HandoverOutcome.NO_ANSWER, "x"), State.FAILED,
         [Settle(HandoverOutcome.NO_ANSWER), HangUp(CONSULT_LEG.channel)]),
        (HandoverMode.THREEWAY, [CONSULT_LEG, Gone(Who.SEAT)], Gone(Who.TARGET), State.FAILED,
         [Settle(HandoverOutcome.BUSY), HangUp(CONSULT_LEG.channel), SendBack(None)]),
    ],
)  # fmt: skip
def test_failures_and_what_gives_the_caller_back(
    mode: HandoverMode, facts: list[Fact], fact: Fact, state: State, effects: list[Effect]
) -> None:
    t = _through(transfer(mode, POLICE if mode is HandoverMode.BLIND else POLICY), *facts)
    assert step(t, fact, T0) == effects
    assert t.state is state
    assert t.finished


def test_an_answered_consult_has_no_deadline_and_a_finished_transfer_takes_no_more_facts() -> None:
    t = _through(transfer(HandoverMode.CONSULT), CONSULT_LEG, Ringing(True), Answered("4001"))
    assert step(t, Expired(), T0) == []
    assert t.state is State.ANSWERED
    assert step(t, Transferred(), T0) == [Settle(HandoverOutcome.COMPLETED)]
    for late in (Cancel(), Expired(), Gone(Who.CALLER), Joined(), Answered("4002")):
        assert step(t, late, T0) == []
    assert states(t) == ["requested", "ringing", "answered", "completed"]
    assert observe(t, "Hangup", {"Uniqueid": "c1-2"}, consult_prefix="") == []


def test_the_seat_leaving_completes_nothing_by_itself() -> None:
    consult = _through(transfer(HandoverMode.CONSULT), CONSULT_LEG, Answered("4001"), Gone(Who.SEAT))
    assert consult.state is State.ANSWERED  # Asterisk completes it; AttendedTransfer will say so
    blind = _through(transfer(HandoverMode.BLIND, POLICE), Gone(Who.SEAT), Ringing(True), Answered("110"))
    assert (blind.state, blind.answered_by) == (State.COMPLETED, "110")


def test_linkage_dial_results_read_from_events() -> None:
    t = transfer(HandoverMode.BLIND, POLICE)
    begin = {"Uniqueid": "c1-2", "Linkedid": "c1", "DestUniqueid": "p1", "DestChannel": "PJSIP/carrier-trunk-0000000a",
             "DialString": "PJSIP/110@carrier-trunk"}  # fmt: skip
    assert observe(t, "DialBegin", begin, consult_prefix="") == [
        TargetLeg("p1", "PJSIP/carrier-trunk-0000000a"),
        Ringing(True),
    ]
    assert observe(t, "DialBegin", begin | {"DialString": "119@carrier-trunk"}, consult_prefix="") == []
    for fact in observe(t, "DialBegin", begin, consult_prefix=""):
        step(t, fact, T0)
    end = {"Uniqueid": "c1-2", "DestUniqueid": "p1"}
    assert observe(t, "DialEnd", end | {"DialStatus": "CANCEL"}, consult_prefix="") == []
    assert observe(t, "DialEnd", end | {"DialStatus": "CHANUNAVAIL"}, consult_prefix="") == [
        Unreached(HandoverOutcome.FAILED, "110 did not answer the hand-over (CHANUNAVAIL)")
    ]
    assert observe(t, "DialEnd", end | {"DialStatus": "ANSWER"}, consult_prefix="") == [Answered("110")]


def test_as_json_is_what_the_api_and_the_mirror_show() -> None:
    t = _through(transfer(HandoverMode.CONSULT), CONSULT_LEG, Ringing(True))
    shown = t.as_json()
    assert shown["target"] == {"kind": "queue", "name": "policy-specialist", "title": "政策专家组"}
    assert [h["state"] for h in shown["history"]] == ["requested", "ringing"]
    assert (shown["state"], shown["reason"], shown["outcome"], shown["node"]) == (
        "ringing",
        None,
        None,
        "pbx-1",
    )
