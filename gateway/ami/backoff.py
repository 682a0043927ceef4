"""Reconnect delays: exponential growth with jitter, reset after a session that worked.

Jitter keeps several gateway processes from hammering a restarting Asterisk in lockstep.
Pure: the random source is passed in, so tests can pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.25,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= maximum or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("backoff needs 0 < initial <= maximum, factor >= 1 and 0 <= jitter < 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._rng = rng
        self.attempt = 0

    def next(self) -> float:
        """The delay before the next attempt; each call counts as one more failed attempt."""
        base = min(self.maximum, self.initial * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        spread = 1.0 - self.jitter + 2.0 * self.jitter * self._rng()
        return min(self.maximum, base * spread)

    def reset(self) -> None:
        self.attempt = 0
