"""Simulated people: seats that ring and talk, callers who wait, abandon, answer the survey.

Seats run the ``agents`` dialplan ``Ringing, Wait(${SIM_SEAT(ring)}), Answer, Wait(${SIM_SEAT(talk)}),
Hangup``; ``SIM_SEAT`` draws the ring-to-answer and talk times once per call (a seat that misses
the call rings until the queue gives up). Callers arrive as a Poisson process over the routed
numbers (weighted), exactly like an AMI ``Originate Local/<number>@from-pstn`` minus the
OriginateResponse; each has a patience (hung up if still queued), a survey key and, past the
queue's callback offer, maybe the callback key. Every draw comes from one seeded generator, so a
seed replays the same day.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.sim.apps import DialplanRun
from gateway.sim.channel import Channel
from gateway.sim.clock import Timer
from gateway.sim.pbx import OriginateRequest, Pbx
from gateway.sim.queues import QueueState

if TYPE_CHECKING:
    from gateway.sim.server import Simulator

NEVER = 86400.0  # a seat that misses the call "rings" until the queue's timeout ends the attempt


@dataclass
class SeatBehaviour:
    ring_min_s: float = 2.0
    ring_max_s: float = 6.0
    miss_rate: float = 0.05
    talk_mean_s: float = 150.0  # lognormal, clipped to [talk_min_s, talk_max_s]
    talk_min_s: float = 20.0
    talk_max_s: float = 900.0

    def ring(self, rng: random.Random) -> float:
        if rng.random() < self.miss_rate:
            return NEVER
        return rng.uniform(self.ring_min_s, self.ring_max_s)

    def talk(self, rng: random.Random) -> float:
        sigma = 0.6
        value = rng.lognormvariate(math.log(self.talk_mean_s) - sigma * sigma / 2, sigma)
        return min(max(value, self.talk_min_s), self.talk_max_s)


def install_seats(pbx: Pbx, behaviour: SeatBehaviour) -> None:
    """Register ``SIM_SEAT(ring|talk)``: one draw per seat channel, kept for the whole call."""

    def seat(channel: Channel, args: str) -> str:
        key = f"seat_{args.strip().lower()}"
        if key not in channel.tags:
            draw = behaviour.ring if key == "seat_ring" else behaviour.talk
            channel.tags[key] = round(draw(pbx.rng), 3)
        return str(channel.tags[key])

    pbx.channel_functions["SIM_SEAT"] = seat


@dataclass
class CallerBehaviour:
    patience_mean_s: float = 120.0  # exponential: hangs up if still queued after it
    survey_keys: dict[str, float] = field(default_factory=lambda: {"1": 0.6, "2": 0.25, "3": 0.08})
    callback_rate: float = 0.3  # of callers still waiting when the callback is offered
    key_delay_s: float = 1.5
    priority_caller_rate: float = 0.02


@dataclass
class TrafficStats:
    offered: int = 0
    abandoned_by_patience: int = 0


class TrafficGenerator:
    """Poisson arrivals at ``rate`` calls per simulated second; survives PBX restarts."""

    def __init__(self, sim: Simulator, *, rate: float, seed: int | None = None,
                 callers: CallerBehaviour | None = None) -> None:  # fmt: skip
        if rate <= 0:
            raise ValueError("traffic rate must be positive")
        self.sim = sim
        self.rate = rate
        self.rng = random.Random(seed)
        self.callers = callers or CallerBehaviour()
        self.stats = TrafficStats()
        self._timer: Timer | None = None
        self._seq = itertools.count(1)
        self._numbers: list[str] = []
        self._cumulative: list[float] = []

    def start(self) -> None:
        weights = {n: w for n, w in self.sim.plan.inbound.items() if w > 0}
        if not weights:
            raise ValueError("no dialled numbers to send traffic to")
        self._numbers = list(weights)
        self._cumulative = list(itertools.accumulate(weights.values()))
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._timer = self.sim.clock.call_later(self.rng.expovariate(self.rate), self._arrival)

    def _arrival(self) -> None:
        self._schedule()
        if self.sim.pbx is not None and self.sim.running:
            number = self._numbers[bisect.bisect(self._cumulative, self.rng.random() * self._cumulative[-1])]
            self.place_call(number)

    def caller_number(self) -> str:
        priority = self.sim.pbx.settings.priority_callers
        if priority and self.rng.random() < self.callers.priority_caller_rate:
            return self.rng.choice(sorted(priority))
        return f"1{self.rng.randrange(30, 99)}{self.rng.randrange(10**8):08d}"

    def place_call(self, number: str) -> None:
        pbx, behaviour = self.sim.pbx, self.callers
        self.stats.offered += 1
        patience = self.rng.expovariate(1.0 / behaviour.patience_mean_s)
        tags: dict[str, object] = {"generated": next(self._seq), "key_delay": behaviour.key_delay_s}
        draw, total = self.rng.random(), 0.0
        keys: list[str] = []
        for key, share in behaviour.survey_keys.items():
            total += share
            if draw < total:
                keys = [key]
                break
        tags["keys"] = keys
        offer = self._callback_offer(number)
        if offer is not None and offer < patience and self.rng.random() < behaviour.callback_rate:
            from gateway.sim.userevents import CALLBACK_KEY  # noqa: PLC0415

            tags["queue_key"] = CALLBACK_KEY
            tags["queue_key_after"] = offer + behaviour.key_delay_s

        def placed(one: Channel, two: Channel) -> None:
            self.sim.clock.call_later(patience, self._patience_over, pbx, one, two)

        pbx.originate(OriginateRequest(
            target=f"Local/{number}@from-pstn", application="Wait", app_data="7200",
            caller_num=self.caller_number(), caller_name="PSTN caller", report=False, tags=tags,
            on_channels=placed,
        ))  # fmt: skip

    def _callback_offer(self, number: str) -> float | None:
        """Seconds into the wait when this number's first queue offers a callback."""
        plan = self.sim.routing
        if plan is None or number not in plan.routes:
            return None
        queue = plan.queues.get(plan.routes[number].queue)
        return float(queue.callback_offer_after_s) if queue and queue.callback_offer_after_s is not None else None

    def _patience_over(self, pbx: Pbx, one: Channel, two: Channel) -> None:
        """Still waiting in a queue? Then the caller hangs up (an abandoned call)."""
        if pbx is not self.sim.pbx or one.dead or two.dead:
            return
        run = two.activity
        if isinstance(run, DialplanRun) and isinstance(run.state, QueueState):
            if run.state.entry.state in ("waiting", "ringing", "retry"):
                self.stats.abandoned_by_patience += 1
                pbx.run(lambda: pbx.softhangup(one, 16))
