"""The simulated people behind the PBX: seats answering, callers waiting, parties on the trunk.

Every draw takes the PBX's seeded ``random.Random``, so one seed replays the same day.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FarEnd:
    """What one dialled phone does: ring this long, answer or not, hang up after talking (or never)."""

    ring_s: float
    answers: bool
    talk_s: float | None  # None: stays until the other side hangs up


@dataclass
class SeatBehaviour:
    """A seat's phone: rings 2-6 s, sometimes nobody picks up, talks a lognormal while."""

    ring_min_s: float = 2.0
    ring_max_s: float = 6.0
    miss_rate: float = 0.05
    talk_mean_s: float = 150.0  # lognormal, clipped to [talk_min_s, talk_max_s]
    talk_min_s: float = 20.0
    talk_max_s: float = 900.0

    def far_end(self, rng: random.Random) -> FarEnd:
        ring = rng.uniform(self.ring_min_s, self.ring_max_s)
        answers = rng.random() >= self.miss_rate
        sigma = 0.6
        talk = rng.lognormvariate(math.log(self.talk_mean_s) - sigma * sigma / 2, sigma)
        return FarEnd(ring, answers, min(max(talk, self.talk_min_s), self.talk_max_s))


@dataclass
class RemoteParties:
    """People reached through the carrier trunk (callbacks, 110/119/120/122): they stay on the line."""

    ring_min_s: float = 2.0
    ring_max_s: float = 6.0
    answer_rate: float = 0.9

    def far_end(self, rng: random.Random) -> FarEnd:
        return FarEnd(rng.uniform(self.ring_min_s, self.ring_max_s), rng.random() < self.answer_rate, None)


@dataclass
class CallerBehaviour:
    """Citizens calling in: patience in the queue, the survey key, the callback key."""

    patience_mean_s: float = 120.0  # exponential: hangs up if still queued after it
    survey_keys: dict[str, float] = field(default_factory=lambda: {"1": 0.6, "2": 0.25, "3": 0.08})
    callback_rate: float = 0.3  # of callers still waiting when the callback is offered
    key_delay_s: float = 1.5
    priority_caller_rate: float = 0.02

    def survey_key(self, rng: random.Random) -> str | None:
        draw, total = rng.random(), 0.0
        for key, share in self.survey_keys.items():
            total += share
            if draw < total:
                return key
        return None


@dataclass
class Endpoints:
    """Which simulated person answers ``PJSIP/<endpoint>``: digits are seats, the rest the trunk."""

    seats: SeatBehaviour = field(default_factory=SeatBehaviour)
    remote: RemoteParties = field(default_factory=RemoteParties)

    def far_end(self, endpoint: str, rng: random.Random) -> FarEnd:
        return self.seats.far_end(rng) if endpoint.isdigit() else self.remote.far_end(rng)
