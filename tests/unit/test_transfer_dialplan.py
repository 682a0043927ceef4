"""The dialplan the transfer and callback services rely on, walked as Asterisk would run it.

(The simulator runs the same contexts for real in tests/integration/test_transfers.py and
test_callbacks.py; here each branch is pinned down on its own.)
"""

from __future__ import annotations

import datetime as dt

from gateway import contract
from gateway.contract import (
    CALLBACK_DIAL_CONTEXT,
    HANDOVER_CONTEXT,
    RETURN_CONTEXT,
    THREEWAY_CONTEXT,
    TRACKED_EVENTS,
)
from gateway.dialplan.render import HEAD_OF_QUEUE_PRIORITY, render
from gateway.dialplan.routing import build_routing, handover_extensions
from gateway.merge.loader import load_config
from tests.conftest import ROOT
from tests.support.dialplan_walk import Walk, Walker, parse

TODAY = dt.date(2026, 11, 27)
CONFIG = load_config(ROOT / "hotline_merge.yaml", today=TODAY)
DIALPLAN = parse(render(CONFIG, today=TODAY, tracked_events=TRACKED_EVENTS)["extensions.conf"])
POLICY = handover_extensions(build_routing(CONFIG, today=TODAY))["policy-specialist"]
# What a caller redirected out of its first queue still carries (setinterfacevar=yes).
AFTER_FIRST_SEAT = {"MEMBERINTERFACE": "Local/1001@agents/n"}


def walk(context: str, exten: str, channel: dict[str, str] | None = None, *, answered: bool = False) -> Walk:
    def outcome(queue: str, walk: Walk) -> dict[str, str]:
        return {"MEMBERINTERFACE": "Local/4001@agents/n"} if answered else {"QUEUESTATUS": "TIMEOUT"}

    return Walker(DIALPLAN, channel=channel).run(context, exten, on_queue=outcome)


def steps(context: str, exten: str) -> list[tuple[str, str]]:
    return [(step.app, step.data) for step in DIALPLAN[context][exten]]


BACK_TO_SEAT = f'$["${{HOTLINE_RETURN}}" != ""]?{RETURN_CONTEXT},${{HOTLINE_RETURN}},1'


def test_blind_hand_over_waits_as_long_as_the_gateway_said_then_goes_back_to_the_seat() -> None:
    caller = walk(HANDOVER_CONTEXT, POLICY, {**AFTER_FIRST_SEAT, "HOTLINE_HANDOVER_TIMEOUT": "55"})
    # The first seat's MEMBERINTERFACE must not pass for an answer in this queue.
    assert ("Set", "MEMBERINTERFACE=") in caller.apps
    assert caller.queues == [("policy-specialist", "55")]
    assert not any(e["UserEvent"] == contract.Survey.NAME for e in caller.user_events)
    # Unanswered: to hotline-return,<seat> when the gateway named the seat (blind), else hang up.
    assert steps(HANDOVER_CONTEXT, POLICY)[-2:] == [("GotoIf", BACK_TO_SEAT), ("Hangup", "")]


def test_a_consultation_call_is_never_sent_back_and_an_answered_caller_gets_the_survey() -> None:
    consult = walk(HANDOVER_CONTEXT, POLICY)  # Atxfer's leg: no HOTLINE_RETURN, no timeout
    assert consult.queues == [("policy-specialist", "")]
    assert consult.ended == "Hangup"
    answered = walk(HANDOVER_CONTEXT, POLICY, answered=True)
    assert answered.user_events[-1]["UserEvent"] == contract.Survey.NAME


def test_linkage_that_does_not_answer_sends_a_blind_caller_back() -> None:
    assert steps(HANDOVER_CONTEXT, "110")[-2:] == [
        (
            "GotoIf",
            f'$["${{DIALSTATUS}}" != "ANSWER" & "${{HOTLINE_RETURN}}" != ""]?{RETURN_CONTEXT},${{HOTLINE_RETURN}},1',
        ),
        ("Hangup", ""),
    ]
    assert walk(HANDOVER_CONTEXT, "110", {"HOTLINE_RETURN": "1001", "DIALSTATUS": "ANSWER"}).ended == "Hangup"


def test_three_way_targets_name_their_call_ring_until_answered_and_never_survey() -> None:
    target = walk(THREEWAY_CONTEXT, POLICY, {"HOTLINE_JOIN": "caller-1"}, answered=True)
    (handover,) = target.user_events
    assert (handover["UserEvent"], handover["Target"], handover["Call"]) == (
        contract.Handover.NAME,
        "policy-specialist",
        "caller-1",
    )
    assert ("Queue", "policy-specialist,tTr") in target.apps  # r: ring, so the originate waits for an answer
    assert target.ended == "Hangup"
    police = walk(THREEWAY_CONTEXT, "110", {"HOTLINE_JOIN": "caller-1"})
    assert ("Dial", "PJSIP/110@carrier-trunk,60") in police.apps
    assert police.user_events[0]["Kind"] == "emergency"


def test_return_dials_the_seat_then_heads_the_general_queue() -> None:
    answered = walk(RETURN_CONTEXT, "_X.", {"EXTEN": "1001", "DIALSTATUS": "ANSWER"})
    assert ("Dial", "Local/1001@agents,15,tT") in answered.apps
    assert answered.user_events[-1]["UserEvent"] == contract.Survey.NAME
    missed = walk(RETURN_CONTEXT, "_X.", {**AFTER_FIRST_SEAT, "EXTEN": "1001", "DIALSTATUS": "NOANSWER"})
    assert missed.queues == [("hotline-general", "")]
    assert missed.variables["QUEUE_PRIO"] == str(HEAD_OF_QUEUE_PRIORITY)
    assert (missed.variables["HOTLINE_RETURN"], missed.variables["HOTLINE_OVERFLOW"]) == ("", "")
    assert missed.ended == "Hangup"  # nobody answered in this walk; a real queue waits for a seat


def test_a_call_back_is_first_in_line_for_its_queue_and_reports_its_recording() -> None:
    back = walk(CALLBACK_DIAL_CONTEXT, "s", {"HOTLINE_QUEUE": "expert-market"}, answered=True)
    assert back.queues == [("expert-market", "")]
    assert back.variables["QUEUE_PRIO"] == str(HEAD_OF_QUEUE_PRIORITY)
    intake, survey = back.user_events
    assert intake == {
        "UserEvent": contract.Intake.NAME, "Queue": "expert-market", "Recording": "calls/20261127/1795798895.7-callback.wav"
    }  # fmt: skip
    assert survey["UserEvent"] == contract.Survey.NAME
