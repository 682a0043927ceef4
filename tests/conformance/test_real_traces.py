"""Conformance with the real PBX: each real scenario (tests/fixtures/ami-traces-real) run again on
the simulator with the same rendered configuration, compared as the gateway sees a call
(``stories.py``): per party, the same events in the same order with the same key fields.

Every difference left is listed, with its reason, in gateway/sim/CONFORMANCE.md and in ``KNOWN``
below: a new difference, or a listed one that went away, fails the test.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable

import pytest

from gateway.merge.loader import load_config
from gateway.sim.channel import Channel
from gateway.sim.clock import SimClock
from gateway.sim.pbx import OriginateRequest, Pbx
from gateway.sim.people import Endpoints, SeatBehaviour
from gateway.sim.plan import SimPlan, plan_from_config
from gateway.sim.server import install_queues
from tests.conformance.stories import Story, differences, read_trace, story_of, visible
from tests.conftest import FIXTURES, ROOT
from tests.sim.support import RecordingSink

TODAY = dt.date(2026, 12, 2)  # the day the real traces were recorded
SEATS = SeatBehaviour(
    ring_min_s=1, ring_max_s=1, miss_rate=0, talk_mean_s=600, talk_min_s=600, talk_max_s=600
)
CITIZEN = "13900000001"

# Differences the simulator keeps on purpose, per scenario (see gateway/sim/CONFORMANCE.md).
KNOWN: dict[str, list[str]] = {
    "05-chanspy-listen": [],
    "02-callback": [],
    "01-parallel-timeout-overflow": [],
    "03-pause-during-call": [],
    "04-consult-atxfer": [],
}


@pytest.fixture(scope="module")
def plan() -> SimPlan:
    config = load_config(ROOT / "hotline_merge.yaml", today=TODAY)
    return plan_from_config(config, seats_per_queue=1, prompts=ROOT / "recordings" / "prompts", today=TODAY)


def real_story(name: str) -> Story:
    events = visible(read_trace((FIXTURES / "ami-traces-real" / f"{name}.ami").read_bytes()))
    caller = next(
        f for _, f in events
        if f.get("Channel", "").startswith("PJSIP/carrier-trunk") and f.get("Uniqueid") == f.get("Linkedid")
        and f.get("Context") != "hotline-outbound"
    )  # fmt: skip
    return story_of(events, caller["Linkedid"], caller["Channel"])


class SimRun:
    def __init__(self, plan: SimPlan) -> None:
        self.sink = RecordingSink()
        self.pbx = Pbx(plan.dialplan, SimClock(manual=True), self.sink, settings=plan.settings, seed=3)
        self.pbx.endpoints = Endpoints(seats=SEATS)
        install_queues(self.pbx, plan)
        self.legs: list[Channel] = []
        self.since = 0  # the first event compared (a real recorder that joined mid-call)
        self.until_caller_gone = False  # ... and the last (a real recorder that left with the caller)

    def dial(self, number: str, tags: dict[str, object] | None = None) -> None:
        self.pbx.run(lambda: self.pbx.originate(OriginateRequest(
            target=f"Local/{number}@from-pstn", application="Wait", app_data="3600", caller_num=CITIZEN,
            on_channels=lambda one, two: self.legs.extend((one, two)), tags=tags or {},
        )))  # fmt: skip
        self.pbx.clock.advance(0.01)

    def advance(self, seconds: float) -> None:
        self.pbx.clock.advance(seconds)

    def seat_leg(self) -> Channel:
        """The first seat's Local ;1 half bridged with the caller (AgentConnect's DestChannel)."""
        connect = self.sink.named("AgentConnect")[0]
        channel = self.pbx.find(connect["DestChannel"])
        assert channel is not None
        return channel

    def hang_up(self, channel: Channel) -> None:
        self.pbx.run(lambda: self.pbx.softhangup(channel, 16))

    def story(self) -> Story:
        caller = self.legs[1]  # the half that runs from-pstn's dialplan, as the real carrier channel does
        raw = list(zip(self.sink.raw, self.sink.categories, strict=True))[self.since :]
        events = visible(
            [(name, {**dict(headers), "Privilege": category}) for (name, headers), category in raw]
        )
        if self.until_caller_gone:
            end = next(
                i for i, (n, f) in enumerate(events) if n == "Hangup" and f.get("Channel") == caller.name
            )
            events = events[: end + 1]
        return story_of(events, caller.linkedid, caller.name)


def _overflow(run: SimRun) -> None:
    for member in list(run.pbx.queues.queues["expert-health"].members):
        run.pbx.run(functools.partial(run.pbx.queues.remove_member, "expert-health", member.interface))
    run.dial("12320")
    run.advance(40.0)
    run.hang_up(run.legs[0])
    run.advance(5.0)


def _pause_during_call(run: SimRun) -> None:
    run.dial("12345")
    run.advance(15.0)
    interface = run.sink.named("AgentConnect")[0]["Interface"]
    run.pbx.run(lambda: run.pbx.queues.pause("hotline-general", interface, True, "会议"))
    run.advance(1.0)
    run.hang_up(run.legs[0])
    run.advance(5.0)


def _consult(run: SimRun) -> None:
    run.dial("12345")
    run.advance(15.0)
    seat = run.seat_leg()
    run.since, run.until_caller_gone = len(run.sink.raw), True  # what the real recorder heard
    run.pbx.run(lambda: run.pbx.transfers.attended(seat, "hotline-handover", "7007"))
    run.advance(5.0)
    run.hang_up(seat)  # the gateway completes a consult by hanging the seat's leg up
    run.advance(1.0)
    run.hang_up(run.legs[0])
    run.advance(5.0)


def _callback(run: SimRun) -> None:
    """The citizen's own call only: the call back is the gateway's Originate, a call of its own."""
    for member in list(run.pbx.queues.queues["hotline-general"].members):
        run.pbx.run(functools.partial(run.pbx.queues.remove_member, "hotline-general", member.interface))
    run.dial("12345", tags={"queue_key": "1", "queue_key_after": 6.0})
    run.advance(30.0)


def _listened_in(run: SimRun) -> None:
    """ChanSpy is not modelled: the supervisor's spy channel has a Linkedid of its own, and
    ChanSpyStart/Stop are no events the gateway reads, so the call itself must not change."""
    run.dial("12345")
    run.advance(15.0)
    run.since = len(run.sink.raw)  # the recorder joined mid-call
    run.advance(1.0)
    run.hang_up(run.legs[0])
    run.advance(5.0)


SCENARIOS: dict[str, Callable[[SimRun], None]] = {
    "05-chanspy-listen": _listened_in,
    "02-callback": _callback,
    "01-parallel-timeout-overflow": _overflow,
    "03-pause-during-call": _pause_during_call,
    "04-consult-atxfer": _consult,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_simulator_tells_the_real_pbxs_call(plan: SimPlan, name: str) -> None:
    run = SimRun(plan)
    SCENARIOS[name](run)
    assert differences(real_story(name), run.story()) == KNOWN[name]
