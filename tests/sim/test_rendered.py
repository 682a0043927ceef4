"""The simulator running the dialplan rendered from the shipped hotline_merge.yaml, per merge mode."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import pytest

from gateway.merge.loader import load_config
from gateway.sim.channel import Channel
from gateway.sim.clock import SimClock
from gateway.sim.pbx import OriginateRequest, Pbx
from gateway.sim.people import Endpoints, SeatBehaviour
from gateway.sim.plan import SimPlan, plan_from_config
from gateway.sim.server import install_queues
from gateway.vocabulary import DispositionKind, QueueResult
from tests.sim.support import RecordingSink

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 6, 1)
STEADY_SEATS = SeatBehaviour(
    ring_min_s=2, ring_max_s=2, miss_rate=0, talk_mean_s=20, talk_min_s=20, talk_max_s=20
)


@pytest.fixture(scope="module")
def plan() -> SimPlan:
    config = load_config(ROOT / "hotline_merge.yaml", today=TODAY)
    return plan_from_config(config, seats_per_queue=2, prompts=ROOT / "recordings" / "prompts", today=TODAY)


def make_pbx(plan: SimPlan) -> tuple[Pbx, RecordingSink]:
    sink = RecordingSink()
    pbx = Pbx(plan.dialplan, SimClock(manual=True), sink, settings=plan.settings, seed=3)
    pbx.endpoints = Endpoints(seats=STEADY_SEATS)
    install_queues(pbx, plan)
    return pbx, sink


def dial_in(pbx: Pbx, number: str, *, keys: str = "", tags: dict[str, object] | None = None) -> list[Channel]:
    legs: list[Channel] = []
    pbx.run(lambda: pbx.originate(OriginateRequest(
        target=f"Local/{number}@from-pstn", application="Wait", app_data="3600", caller_num="13912345678",
        caller_name="PSTN caller", variables=[("SIM_KEYS", keys)] if keys else [], tags=tags or {},
        on_channels=lambda one, two: legs.extend((one, two)),
    )))  # fmt: skip
    pbx.clock.advance(0.01)
    return legs


def user_events(sink: RecordingSink, name: str) -> list[dict[str, str]]:
    return [e for e in sink.named("UserEvent") if e["UserEvent"] == name]


def test_merged_line_reaches_general_seats_with_its_variables_and_the_survey(plan: SimPlan) -> None:
    pbx, sink = make_pbx(plan)
    dial_in(pbx, "12331", keys="1")
    pbx.clock.advance(20.0)
    [intake] = user_events(sink, "HotlineIntake")
    assert (intake["LegacyLine"], intake["MergeMode"], intake["Department"], intake["Queue"]) == (
        "12331", "merged", "市场监督管理局", "hotline-general")  # fmt: skip
    [connect] = sink.named("AgentConnect")
    assert connect["Queue"] == "hotline-general"
    seat = pbx.find(connect["DestChannel"])
    assert seat is not None
    assert pbx.vars.lookup(seat, "LEGACY_LINE") == "12331", "inherited by the seat's leg"
    assert pbx.vars.lookup(seat, "CATEGORY_CODE") == "020300"
    pbx.clock.advance(40.0)
    [survey] = user_events(sink, "HotlineSurvey")
    assert (survey["LegacyLine"], survey["Key"], survey["Result"]) == ("12331", "1", "satisfied")
    [complete] = sink.named("AgentComplete")
    assert complete["Queue"] == "hotline-general"


def test_parallel_line_tries_its_experts_then_overflows_to_general(plan: SimPlan) -> None:
    pbx, sink = make_pbx(plan)
    for member in pbx.queues.queues["expert-market"].members:
        pbx.run(functools.partial(pbx.queues.pause, "expert-market", member.interface, True))
    dial_in(pbx, "12315")
    pbx.clock.advance(60.0)
    joins = [e["Queue"] for e in sink.named("QueueCallerJoin")]
    assert joins == ["expert-market", "hotline-general"]
    [connect] = sink.named("AgentConnect")
    assert connect["Queue"] == "hotline-general"


def test_parallel_lines_overflow_is_reported_and_tracked_as_real_asterisk_does(plan: SimPlan) -> None:
    """Issue 13 defect 1 on the simulator: the timeout sends QueueCallerAbandon (real trace 01), and
    the gateway's tracker still sees an overflow, not an abandon."""
    pbx, sink = make_pbx(plan)
    for member in pbx.queues.queues["expert-market"].members:
        pbx.run(functools.partial(pbx.queues.pause, "expert-market", member.interface, True))
    dial_in(pbx, "12315")
    pbx.clock.advance(120.0)
    [abandon] = sink.named("QueueCallerAbandon")
    assert (abandon["Queue"], abandon["HoldTime"]) == ("expert-market", "30")  # overflow_after_s
    tracker, [call] = sink.tracked()
    assert call.disposition is not None
    assert call.disposition.kind is DispositionKind.ANSWERED
    assert [(v.queue, v.result) for v in call.queues] == [
        ("expert-market", QueueResult.OVERFLOWED),
        ("hotline-general", QueueResult.ANSWERED),
    ]
    assert tracker.queues["expert-market"].abandoned == 0


def test_a_caller_who_hangs_up_while_waiting_is_tracked_as_abandoned(plan: SimPlan) -> None:
    pbx, sink = make_pbx(plan)
    for member in pbx.queues.queues["hotline-general"].members:
        pbx.run(functools.partial(pbx.queues.pause, "hotline-general", member.interface, True))
    legs = dial_in(pbx, "12345")
    pbx.clock.advance(30.0)
    pbx.run(lambda: pbx.softhangup(legs[0], 16))
    pbx.clock.advance(1.0)
    tracker, [call] = sink.tracked()
    assert [(v.queue, v.result) for v in call.queues] == [("hotline-general", QueueResult.ABANDONED)]
    assert tracker.queues["hotline-general"].abandoned == 1


def test_subcenter_line_goes_to_its_own_queue(plan: SimPlan) -> None:
    pbx, sink = make_pbx(plan)
    dial_in(pbx, "12366")
    pbx.clock.advance(20.0)
    assert [e["Queue"] for e in sink.named("AgentConnect")] == ["subcenter-tax"]


def test_waiting_caller_asks_for_a_callback(plan: SimPlan) -> None:
    pbx, sink = make_pbx(plan)
    for member in pbx.queues.queues["hotline-general"].members:
        pbx.run(functools.partial(pbx.queues.pause, "hotline-general", member.interface, True))
    dial_in(pbx, "12345", tags={"queue_key": plan.callback_key, "queue_key_after": 125.0})
    pbx.clock.advance(140.0)
    [callback] = user_events(sink, "HotlineCallback")
    assert callback["LegacyLine"] == "12345"
    assert callback["Queue"] == "hotline-general"
    assert int(callback["JoinTime"]) > 0
    assert not sink.named("QueueCallerAbandon")


def test_emergency_hand_over_dials_the_trunk(plan: SimPlan) -> None:
    pbx, sink = make_pbx(plan)
    caller, leg = dial_in(pbx, "12345")
    pbx.clock.advance(15.0)
    assert sink.named("AgentConnect")
    pbx.run(lambda: pbx.redirect([(leg, "hotline-handover", "110", 1)]))
    pbx.clock.advance(10.0)
    trunk = [e for e in sink.named("DialEnd") if e.get("DestChannel", "").startswith("PJSIP/carrier-trunk-")]
    assert trunk
    assert trunk[-1]["DialStatus"] == "ANSWER"
    [handover] = user_events(sink, "HotlineHandover")
    assert (handover["Target"], handover["Kind"]) == ("110", "emergency")
    far_end = pbx.find(trunk[-1]["DestChannel"])
    assert far_end is not None
    assert far_end.linkedid == caller.linkedid, "the trunk leg belongs to the same call"
