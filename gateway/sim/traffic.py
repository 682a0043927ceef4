"""Simulated citizens calling in: Poisson arrivals over the routed numbers, with weights or a
demand that follows the day.

Each call is exactly an AMI ``Originate Local/<number>@from-pstn`` running ``Wait`` on the
caller's side (the traces' callers), minus the OriginateResponse a PSTN call would not have. A
caller has a patience (still queued after it, they hang up: an abandoned call), a survey key and,
past a queue's callback offer, maybe the callback key. Seats are the PBX's simulated phones
(``gateway.sim.people``). Arrivals and behaviour come from one seeded generator; the generator
survives PBX restarts (calls arriving while the PBX is down are lost, as they would be).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from gateway.contract import INBOUND_CONTEXT
from gateway.sim.apps import DialplanRun
from gateway.sim.channel import Channel
from gateway.sim.clock import Timer
from gateway.sim.pbx import OriginateRequest, Pbx
from gateway.sim.people import CallerBehaviour
from gateway.sim.queues import QueueState

if TYPE_CHECKING:
    from gateway.sim.server import Simulator

CALLER_APP_SECONDS = "7200"  # the caller's phone stays off-hook; the call ends from the PBX side


ENDED_KEPT = 100_000  # the ground truth of fault tests and benches; a long demo forgets the oldest


@dataclass(frozen=True)
class EndedCall:
    """A citizen call that is over: its channels hung up, or a PBX restart cut it off."""

    linkedid: str
    number: str  # the line dialled
    cut_by_restart: bool

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TrafficStats:
    offered: int = 0
    lost_while_down: int = 0
    abandoned_by_patience: int = 0


# Calls per simulated second by dialled number, at a simulated moment (a day's curve, ``gateway.sim.day``).
Demand = Callable[[float], Mapping[str, float]]
IDLE_RECHECK_S = 60.0  # nobody calls: look again this much later


class TrafficGenerator:
    """Poisson arrivals: ``rate`` calls per simulated second spread over the plan's traffic weights,
    or a ``demand`` that varies through the day; ``limit`` arrivals at most.

    A limit bounds the work a test asks of a busy machine: at a high time scale an unbounded
    generator offers calls as fast as simulated time runs, however far behind the event loop is.
    """

    def __init__(self, sim: Simulator, *, rate: float | None = None, demand: Demand | None = None,
                 seed: int | None = None, callers: CallerBehaviour | None = None,
                 limit: int | None = None) -> None:  # fmt: skip
        if (rate is None) == (demand is None):
            raise ValueError("traffic needs either a rate or a demand")
        if rate is not None and rate <= 0:
            raise ValueError("traffic rate must be positive")
        self.sim = sim
        self._flat_rate = rate
        self._demand = demand
        self.rng = random.Random(seed)
        self.callers = callers or CallerBehaviour()
        self.limit = limit
        self.stats = TrafficStats()
        self._timer: Timer | None = None
        self._next_at = 0.0
        self._live: dict[str, tuple[Pbx, Channel, Channel, str]] = {}  # by Linkedid
        self._ended: deque[EndedCall] = deque(maxlen=ENDED_KEPT)

    def start(self) -> None:
        if self._flat_rate is not None:
            weights = {n: w for n, w in self.sim.plan.inbound.items() if w > 0}
            if not weights:
                raise ValueError("no dialled numbers to send traffic to")
            total, rate = sum(weights.values()), self._flat_rate
            rates = {n: rate * w / total for n, w in weights.items()}
            self._demand = lambda _now: rates
        self._next_at = self.sim.clock.now()
        self._schedule()

    @property
    def rate(self) -> float:
        """Calls per simulated second now."""
        return sum(self._demand(self.sim.clock.now()).values()) if self._demand else 0.0

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        # From the planned moment, not from when the timer fired: late timers must not slow the rate.
        assert self._demand is not None
        total = sum(self._demand(self._next_at).values())
        if total <= 0:
            self._next_at += IDLE_RECHECK_S
            self._timer = self.sim.clock.call_at(self._next_at, self._schedule)
            return
        self._next_at += self.rng.expovariate(total)
        self._timer = self.sim.clock.call_at(self._next_at, self._arrival)

    @property
    def running(self) -> bool:
        return self._timer is not None

    def ended_calls(self) -> list[EndedCall]:
        """Every call placed here that is over, in the order this noticed (the oldest may be forgotten)."""
        current = self.sim.pbx if self.sim.running else None
        for linkedid, (pbx, one, two, number) in list(self._live.items()):
            cut = pbx is not current  # a restart drops every channel without a Hangup
            if cut or (one.dead and two.dead):
                del self._live[linkedid]
                self._ended.append(EndedCall(linkedid, number, cut))
        return list(self._ended)

    def live_calls(self) -> list[str]:
        """The Linkedids of the calls placed here that are still up."""
        self.ended_calls()
        return list(self._live)

    def _arrival(self) -> None:
        self._schedule()
        if self.limit is not None and self.stats.offered + self.stats.lost_while_down + 1 >= self.limit:
            self.stop()  # this arrival is the last
        if self.stats.offered % 100 == 0:
            self.ended_calls()  # keeps the live map small on a long run
        if not self.sim.running:
            self.stats.lost_while_down += 1
            return
        assert self._demand is not None
        rates = {n: r for n, r in self._demand(self.sim.clock.now()).items() if r > 0}
        if not rates:
            return  # the demand fell to nothing since this arrival was drawn
        numbers, cumulative = list(rates), list(itertools.accumulate(rates.values()))
        self.place_call(numbers[bisect.bisect(cumulative, self.rng.random() * cumulative[-1])])

    def caller_number(self) -> str:
        routing = self.sim.plan.routing
        priority = sorted(routing.priority_callers) if routing else []
        if priority and self.rng.random() < self.callers.priority_caller_rate:
            return self.rng.choice(priority)
        return f"1{self.rng.randrange(30, 99)}{self.rng.randrange(10**8):08d}"

    def place_call(self, number: str) -> None:
        pbx, behaviour = self.sim.pbx, self.callers
        self.stats.offered += 1
        patience = self.rng.expovariate(1.0 / behaviour.patience_mean_s)
        key = behaviour.survey_key(self.rng)
        tags: dict[str, object] = {"key_delay": behaviour.key_delay_s, "keys": [key] if key else []}
        offer = self._callback_offer(number)
        if offer is not None and offer < patience and self.rng.random() < behaviour.callback_rate:
            tags["queue_key"] = self.sim.plan.callback_key
            tags["queue_key_after"] = offer + behaviour.key_delay_s

        def placed(one: Channel, two: Channel) -> None:
            self._live[one.linkedid] = (pbx, one, two, number)
            self.sim.clock.call_later(patience, self._patience_over, pbx, one, two)

        pbx.originate(OriginateRequest(
            target=f"Local/{number}@{INBOUND_CONTEXT}", application="Wait", app_data=CALLER_APP_SECONDS,
            caller_num=self.caller_number(), caller_name="PSTN caller", report=False, tags=tags,
            on_channels=placed,
        ))  # fmt: skip

    def _callback_offer(self, number: str) -> float | None:
        """Seconds into the wait when this number's first queue offers the callback key."""
        routing = self.sim.plan.routing
        if routing is None or self.sim.plan.callback_key is None or number not in routing.routes:
            return None
        queue = routing.queues.get(routing.routes[number].queue)
        return float(queue.callback_offer_after_s) if queue and queue.callback_offer_after_s else None

    def _patience_over(self, pbx: Pbx, one: Channel, two: Channel) -> None:
        """Still waiting in a queue? Then the caller hangs up (an abandoned call)."""
        if pbx is not self.sim.pbx or one.dead or two.dead:
            return
        run = two.activity
        state = run.state if isinstance(run, DialplanRun) else None
        if isinstance(state, QueueState) and state.entry.state in ("waiting", "ringing", "retry"):
            self.stats.abandoned_by_patience += 1
            pbx.run(lambda: pbx.softhangup(one, 16))
