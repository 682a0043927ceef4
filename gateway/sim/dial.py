"""Dial(): to Local channels and to simulated SIP endpoints (seats' phones, the carrier trunk).

There is no SIP here. ``Dial(PJSIP/<endpoint>...)`` creates a channel ``PJSIP/<endpoint>-XXXXXXXX``
whose far end is simulated: a seat's phone (a digits-only endpoint) rings, answers and hangs up
after the talk time ``SeatBehaviour`` draws; any other endpoint (``...@carrier-trunk``: callbacks,
110/119/120/122) rings a few seconds, answers and stays until the other side hangs up.

Dial is not in the recorded traces (their members are Local channels running Wait()); its events
follow the queue's dialling, which is: Newchannel, DialBegin, Newstate Ringing + DialState, the
caller's ringing passed on across its Local pair, Newstate Up + DialEnd ANSWER, then a basic bridge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.sim.apps import DialplanRun, answer, indicate_ringing, run_of
from gateway.sim.bridge import Bridge
from gateway.sim.channel import DOWN, RINGING, UP, Channel
from gateway.sim.clock import Timer
from gateway.sim.dialplan import split_args
from gateway.sim.people import FarEnd

if TYPE_CHECKING:
    from gateway.sim.pbx import Pbx

RING_INDICATION_AFTER = 0.1  # a phone starts ringing a moment after the INVITE


@dataclass(eq=False)
class Attempt:
    dial: DialState
    channel: Channel
    resource: str
    started: float
    done: bool = False


@dataclass(eq=False)
class DialState:
    """Dial() running on ``caller``."""

    pbx: Pbx
    caller: Channel
    options: str
    started: float
    attempts: list[Attempt] = field(default_factory=list)
    timer: Timer | None = None
    bridge: Bridge | None = None
    answered_at: float | None = None

    # -- AppState -------------------------------------------------------------------------------
    def stop(self, channel: Channel, why: str) -> None:
        if self.bridge is not None:
            if why == "hangup" and channel.bridge is self.bridge:
                self.bridge.depart([channel])
            self._finished("ANSWER")
            return
        self._cancel_all()
        self._finished("CANCEL")

    def bridge_ended(self, channel: Channel) -> None:
        run = run_of(channel)
        run.state = None
        self._finished("ANSWER")
        if "g" in self.options:
            run.done()
        else:
            self.pbx.softhangup(channel, 16)

    # -- progress ---------------------------------------------------------------------------------
    def ringing(self, attempt: Attempt) -> None:
        self.pbx.dial_event("DialState", self.caller, attempt.channel, [("DialStatus", "RINGING")])
        indicate_ringing(self.pbx, self.caller)

    def answered(self, attempt: Attempt) -> None:
        pbx, caller = self.pbx, self.caller
        attempt.done = True
        if self.timer is not None:
            self.timer.cancel()
        pbx.dial_event("DialEnd", caller, attempt.channel, [("DialStatus", "ANSWER")])
        for other in list(self.attempts):
            if other is not attempt:
                self._cancel(other)
        self.answered_at = pbx.clock.now()
        if caller.state != UP:
            answer(pbx, caller)
        if caller.dead or attempt.channel.dead:
            return
        bridge = self.bridge = Bridge(pbx, pbx.new_bridge_id())
        bridge.announce()
        bridge.enter(attempt.channel)
        bridge.enter(caller)
        bridge.set_peer_vars()

    def failed(self, attempt: Attempt, status: str) -> None:
        attempt.done = True
        self.pbx.dial_event("DialEnd", self.caller, attempt.channel, [("DialStatus", status)])
        self.attempts.remove(attempt)
        if not self.attempts and self.bridge is None:
            self._give_up(status)

    def timed_out(self) -> None:
        if self.bridge is None and self.attempts:
            for attempt in list(self.attempts):
                self.pbx.dial_event("DialEnd", self.caller, attempt.channel, [("DialStatus", "NOANSWER")])
                attempt.done = True
                self.attempts.remove(attempt)
                self.pbx.softhangup(attempt.channel, 0)
            self._give_up("NOANSWER")

    def _give_up(self, status: str) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self._finished(status)
        run = self.caller.activity
        if isinstance(run, DialplanRun) and run.state is self:
            run.done()

    def _cancel(self, attempt: Attempt) -> None:
        attempt.done = True
        self.pbx.dial_event("DialEnd", self.caller, attempt.channel, [("DialStatus", "CANCEL")])
        if attempt in self.attempts:
            self.attempts.remove(attempt)
        self.pbx.softhangup(attempt.channel, 0)

    def _cancel_all(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        for attempt in list(self.attempts):
            self._cancel(attempt)

    def _finished(self, status: str) -> None:
        pbx, caller, now = self.pbx, self.caller, self.pbx.clock.now()
        talk = now - self.answered_at if self.answered_at is not None else 0.0
        pbx.set_var(caller, "DIALSTATUS", status)
        pbx.set_var(caller, "ANSWEREDTIME", str(int(talk)))
        pbx.set_var(caller, "DIALEDTIME", str(int(now - self.started)))


class LocalDest:
    """Owner of a dialled Local ;1: it passes ringing and answer on to the Dial."""

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt

    def ringing(self, channel: Channel) -> None:
        self.attempt.dial.ringing(self.attempt)

    def answered(self, channel: Channel) -> None:
        self.attempt.dial.answered(self.attempt)

    def hangup(self, channel: Channel, cause: int) -> None:
        attempt = self.attempt
        if channel.bridge is not None:
            channel.bridge.depart([channel])
        elif not attempt.done:
            attempt.dial.failed(attempt, "BUSY" if cause == 17 else "CHANUNAVAIL")
        attempt.dial.pbx.finish_hangup(channel, cause)

    def redirect(self, channel: Channel) -> None:
        return None

    def bridge_ended(self, channel: Channel) -> None:
        self.attempt.dial.pbx.softhangup(channel, 16)


class SimulatedPhone(LocalDest):
    """A PJSIP channel whose far end is simulated: it rings, maybe answers, maybe hangs up later."""

    def __init__(self, attempt: Attempt, far_end: FarEnd) -> None:
        super().__init__(attempt)
        pbx = attempt.dial.pbx
        self.timers = [pbx.later(RING_INDICATION_AFTER, self._ring)]
        if far_end.answers:
            self.timers.append(pbx.later(max(far_end.ring_s, RING_INDICATION_AFTER), self._answer, far_end))

    def _ring(self) -> None:
        channel = self.attempt.channel
        if not channel.dead and channel.state == DOWN:
            self.attempt.dial.pbx.set_state(channel, RINGING)
            self.ringing(channel)

    def _answer(self, far_end: FarEnd) -> None:
        channel, pbx = self.attempt.channel, self.attempt.dial.pbx
        if channel.dead or self.attempt.done:
            return
        pbx.set_state(channel, UP)
        self.answered(channel)
        if far_end.talk_s is not None and not channel.dead:
            self.timers.append(pbx.later(far_end.talk_s, pbx.softhangup, channel, 16))

    def hangup(self, channel: Channel, cause: int) -> None:
        for timer in self.timers:
            timer.cancel()
        super().hangup(channel, cause)


def app_dial(pbx: Pbx, channel: Channel, data: str) -> bool:
    """Dial(Tech/resource[&...],timeout,options)."""
    args = [*split_args(data), "", ""]
    targets = [t.strip() for t in args[0].split("&") if t.strip()]
    timeout = float(args[1]) if args[1].strip() else None
    state = DialState(pbx, channel, args[2], pbx.clock.now())
    for target in targets:
        tech, _, resource = target.partition("/")
        attempt = _dial_one(pbx, state, tech, resource)
        if attempt is not None:
            state.attempts.append(attempt)
    if not state.attempts:
        pbx.set_var(channel, "DIALSTATUS", "CHANUNAVAIL")
        return False
    if timeout:
        state.timer = pbx.later(timeout, state.timed_out)
    return run_of(channel).block(state)


def _dial_one(pbx: Pbx, state: DialState, tech: str, resource: str) -> Attempt | None:
    caller = state.caller
    if tech == "Local":
        parsed = pbx.parse_local(f"Local/{resource}")
        if parsed is None or pbx.dialplan.find(parsed[1], parsed[0]) is None:
            return None
        exten, context, optimize = parsed
        one, two = pbx.local_pair(exten, context, linkedid=caller.linkedid, parent=caller)
        attempt = Attempt(state, one, resource, pbx.clock.now())
        one.activity = LocalDest(attempt)
        pbx.local_bridge_event(one, two, optimize=optimize)
        pbx.dial_event("DialBegin", caller, one, [("DialString", resource)])
        pbx.start_dialplan(two, context, exten, 1)
        return attempt
    if tech != "PJSIP":
        return None
    endpoint, _, trunk = resource.partition("@")
    dest = pbx.new_channel(f"{tech}/{trunk or endpoint}", context="default", exten=endpoint, linkedid=caller.linkedid,
                           caller=caller)  # fmt: skip
    attempt = Attempt(state, dest, resource, pbx.clock.now())
    dest.activity = SimulatedPhone(attempt, pbx.endpoints.far_end(endpoint, pbx.rng))
    pbx.dial_event("DialBegin", caller, dest, [("DialString", resource)])
    return attempt
