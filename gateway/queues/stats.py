"""Rolling KPIs per queue and per legacy line: minute buckets, windows of 15 min, 1 h, 24 h and the
calendar day, and the three rates. Pure: no clock, no I/O; times are passed in (epoch seconds).

Every rate says its denominator, because vendors disagree and supervisors must not: service level
is given both ÷ answered and ÷ offered; the abandon rate ÷ offered; satisfaction ÷ rated calls.
Counting happens once, where the call's fate is known (offered at queue join, answered at connect,
abandoned at leave), so a figure never depends on when a dashboard asked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from enum import StrEnum

BUCKET_S = 60
WINDOWS_S = {"15m": 15 * 60, "1h": 3600, "24h": 24 * 3600}
KEEP_S = 2 * 24 * 3600  # enough for the 24 h window, the calendar day and the charts
CHINA_TZ = dt.timezone(dt.timedelta(hours=8))  # the calendar day of a 12345 centre is Beijing time


class Fact(StrEnum):
    OFFERED = "offered"  # a caller joined the queue
    ANSWERED = "answered"  # a seat connected (wait_s = time in queue)
    ABANDONED = "abandoned"  # the caller left the queue unanswered (wait_s = time in queue)
    CALLBACK = "callback"  # the caller left the queue asking for a callback
    SURVEY = "survey"  # value: satisfied | basic | dissatisfied | none


@dataclass
class Counts:
    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    callbacks: int = 0
    wait_answered_s: float = 0.0
    wait_abandoned_s: float = 0.0
    satisfied: int = 0
    basic: int = 0
    dissatisfied: int = 0
    unrated: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_fields(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


@dataclass(frozen=True)
class Rates:
    """The figures a supervisor reads, each with the numbers it was computed from."""

    offered: int
    answered: int
    abandoned: int
    callbacks: int
    service_level_of_answered: float | None  # answered within threshold ÷ answered
    service_level_of_offered: float | None  # answered within threshold ÷ offered
    response_rate: float | None  # answered ÷ offered (接通率)
    abandon_rate: float | None  # abandoned ÷ offered
    asa_s: float | None  # average speed of answer: wait of answered calls ÷ answered
    satisfaction_rate: float | None  # (satisfied + basic) ÷ rated (满意率, rated = 1, 2 or 3 pressed)
    rated: int
    # Resolved ÷ work orders the order system reported on; filled from its feedback
    # (gateway.records.feedback), which is kept in Redis, not in these buckets.
    resolution_rate: float | None = None
    with_feedback: int = 0

    @classmethod
    def of(cls, c: Counts) -> Rates:
        def ratio(part: float, whole: float) -> float | None:
            return round(part / whole, 4) if whole else None

        rated = c.satisfied + c.basic + c.dissatisfied
        return cls(
            offered=c.offered,
            answered=c.answered,
            abandoned=c.abandoned,
            callbacks=c.callbacks,
            service_level_of_answered=ratio(c.answered_in_sl, c.answered),
            service_level_of_offered=ratio(c.answered_in_sl, c.offered),
            response_rate=ratio(c.answered, c.offered),
            abandon_rate=ratio(c.abandoned, c.offered),
            asa_s=round(c.wait_answered_s / c.answered, 1) if c.answered else None,
            satisfaction_rate=ratio(c.satisfied + c.basic, rated),
            rated=rated,
        )


@dataclass(frozen=True)
class Observation:
    """One countable fact about a call, at epoch second ``at``."""

    fact: Fact
    at: float
    queue: str = ""  # empty for facts about the call as a whole (survey, feedback)
    line: str = ""  # the number the citizen dialled
    wait_s: float = 0.0
    value: str = ""


ALL = "*"  # the key under which every queue's or line's counts are summed


@dataclass
class KpiBook:
    """Minute buckets by scope ("queue:<name>", "line:<number>", "*"), summed into windows."""

    service_level_s: dict[str, int] = field(default_factory=dict)  # per queue; default 15
    buckets: dict[str, dict[int, Counts]] = field(default_factory=dict)
    # Sampled gauges (e.g. calls waiting): the largest value seen in each minute.
    gauges: dict[str, dict[int, float]] = field(default_factory=dict)

    def sample(self, name: str, at: float, value: float) -> tuple[str, int, float] | None:
        """Record a gauge sample; returns (name, minute, new max) when the minute's max grew."""
        minute = int(at // BUCKET_S)
        series = self.gauges.setdefault(name, {})
        if value <= series.get(minute, float("-inf")):
            return None
        series[minute] = value
        return (name, minute, value)

    def gauge_max(self, name: str, first: float, last: float) -> int | None:
        """The largest sample between two epoch seconds, or None when nothing was sampled."""
        series = self.gauges.get(name, {})
        values = [v for m, v in series.items() if first // BUCKET_S <= m <= last // BUCKET_S]
        return int(max(values)) if values else None

    def record(self, obs: Observation) -> dict[tuple[str, int], Counts]:
        """Count ``obs``; returns the per-bucket increments (for persisting them elsewhere)."""
        delta = self._delta(obs)
        minute = int(obs.at // BUCKET_S)
        scopes = {ALL}
        if obs.queue:
            scopes.add(f"queue:{obs.queue}")
        if obs.line:
            scopes.add(f"line:{obs.line}")
        changes = {}
        for scope in sorted(scopes):
            self.buckets.setdefault(scope, {}).setdefault(minute, Counts()).add(delta)
            changes[(scope, minute)] = delta
        return changes

    def load(self, scope: str, minute: int, counts: Counts) -> None:
        self.buckets.setdefault(scope, {})[minute] = counts

    def window(self, scope: str, now: float, seconds: int) -> Counts:
        last = int(now // BUCKET_S)
        first = last - seconds // BUCKET_S + 1
        return self._sum(scope, first, last)

    def day(self, scope: str, now: float, tz: dt.tzinfo = CHINA_TZ) -> Counts:
        """The calendar day so far (local midnight to now): the figure the monthly grading uses."""
        local = dt.datetime.fromtimestamp(now, tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        return self._sum(scope, int(midnight // BUCKET_S), int(now // BUCKET_S))

    def rates(self, scope: str, now: float) -> dict[str, Rates]:
        out = {name: Rates.of(self.window(scope, now, seconds)) for name, seconds in WINDOWS_S.items()}
        out["today"] = Rates.of(self.day(scope, now))
        return out

    def series(self, scope: str, now: float, hours: int, step_s: int = 300) -> list[tuple[int, Rates]]:
        """Rates per ``step_s`` slot over the last ``hours``, oldest first (for the chart)."""
        per = step_s // BUCKET_S
        last = int(now // BUCKET_S)
        first = last - hours * 3600 // BUCKET_S + 1
        first -= first % per
        return [
            (m * BUCKET_S, Rates.of(self._sum(scope, m, m + per - 1))) for m in range(first, last + 1, per)
        ]

    def scopes(self, prefix: str) -> list[str]:
        return sorted(s.removeprefix(prefix) for s in self.buckets if s.startswith(prefix))

    def prune(self, now: float) -> None:
        """Forget minutes older than ``KEEP_S`` (Redis expires its copies by itself)."""
        oldest = int((now - KEEP_S) // BUCKET_S)
        series: list[dict[int, Counts] | dict[int, float]] = [*self.buckets.values(), *self.gauges.values()]
        for minutes in series:
            for minute in [m for m in minutes if m < oldest]:
                del minutes[minute]

    def _sum(self, scope: str, first: int, last: int) -> Counts:
        total = Counts()
        buckets = self.buckets.get(scope, {})
        # Iterate whichever is smaller: the window's minutes or the buckets that exist.
        minutes: Iterable[int] = (
            range(first, last + 1)
            if last - first < len(buckets)
            else (m for m in buckets if first <= m <= last)
        )
        for minute in minutes:
            counts = buckets.get(minute)
            if counts is not None:
                total.add(counts)
        return total

    def _delta(self, obs: Observation) -> Counts:
        delta = Counts()
        if obs.fact is Fact.OFFERED:
            delta.offered = 1
        elif obs.fact is Fact.ANSWERED:
            delta.answered = 1
            delta.wait_answered_s = obs.wait_s
            delta.answered_in_sl = int(obs.wait_s <= self.service_level_s.get(obs.queue, 15))
        elif obs.fact is Fact.ABANDONED:
            delta.abandoned = 1
            delta.wait_abandoned_s = obs.wait_s
        elif obs.fact is Fact.CALLBACK:
            delta.callbacks = 1
        elif obs.fact is Fact.SURVEY:
            name = obs.value if obs.value in {"satisfied", "basic", "dissatisfied"} else "unrated"
            setattr(delta, name, 1)
        return delta
