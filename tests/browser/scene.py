"""A realistic hotline floor for the dashboard tests (the README screenshot comes from the demo).

The shipped ``hotline_merge.yaml`` gives the queues, seats and legacy lines; a real ``KpiBook`` is
filled with a deterministic day of calls (``Observation``s), and seats are spread over every state.
``Floor.snapshot()`` turns it into the ``Snapshot`` the gateway would publish, so a test can record
more calls and publish again. As in the gateway, the resolution rate comes from the order system's
feedback on today's work orders, not from the book. The app factory serves the dashboard on its
own, with known tokens.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry

from gateway.audit import AuditLog
from gateway.credentials import CredentialStore
from gateway.merge.loader import load_config
from gateway.merge.schema import HotlineConfig
from gateway.queues.stats import ALL, CHINA_TZ, Fact, KpiBook, Observation, Rates
from gateway.sessions import SessionStore
from gateway.vocabulary import MergeMode
from gateway.web.audit import audit_middleware, setup_audit
from gateway.web.auth import AUTH_KEY, Authenticator, Throttle
from gateway.web.dashboard import setup_dashboard
from gateway.web.errors import error_middleware
from gateway.web.live import LiveHub
from gateway.web.snapshot import (
    ChartPoint,
    LineView,
    LinkView,
    QueueView,
    SeatCounts,
    SeatView,
    Snapshot,
    overall_targets,
    queue_targets,
)

ROOT = Path(__file__).resolve().parents[2]
SUPERVISOR_TOKEN = "sup-7c1e"
SEAT_TOKEN = "seat-51aa"
ADMIN_TOKEN = "adm-90d2"
SEAT_EXTENSION = "1001"
TOKENS = {"supervisor": frozenset({SUPERVISOR_TOKEN}), "admin": frozenset({ADMIN_TOKEN})}
NOW = dt.datetime(2026, 11, 27, 15, 30, tzinfo=CHINA_TZ).timestamp()  # a Friday afternoon
CHART_HOURS = 6
CHART_STEP_S = 300
PAUSE_REASONS = ("午餐", "培训", "班组会", "休息")


def make_auth(redis: aioredis.Redis, registry: CollectorRegistry | None = None) -> Authenticator:
    """The gateway's authenticator with this scene's environment tokens, sessions in ``redis``."""
    return Authenticator(
        role_tokens=TOKENS,
        seat_tokens={SEAT_TOKEN: SEAT_EXTENSION},
        credentials=CredentialStore(redis),
        sessions=SessionStore(redis),
        throttle=Throttle(registry or CollectorRegistry()),
        session_secret=b"s" * 32,
    )


def make_app(hub: LiveHub, redis: aioredis.Redis, *middlewares: Middleware) -> web.Application:
    app = web.Application(middlewares=[*middlewares, audit_middleware, error_middleware])
    app[AUTH_KEY] = make_auth(redis)
    setup_audit(app, AuditLog(redis))
    setup_dashboard(app, hub)
    return app


@dataclass
class Floor:
    """What the tracker would know now (calls waiting, seats); the counted facts live in ``book``."""

    config: HotlineConfig
    book: KpiBook
    now: float
    waiting: dict[str, int] = field(default_factory=dict)
    longest_wait_s: dict[str, float] = field(default_factory=dict)
    seats: list[SeatView] = field(default_factory=list)
    link: LinkView = field(default_factory=lambda: LinkView("ready", False, ""))
    # The order system's feedback on today's work orders: resolution is not counted in the book.
    resolved: int = 0
    with_feedback: int = 0

    def call(self, queue: str, line: str, wait_s: float, *, answered: bool = True) -> None:
        """One caller who joined ``queue`` via ``line`` and was answered or gave up, ending now."""
        fate = Fact.ANSWERED if answered else Fact.ABANDONED
        self.book.record(Observation(Fact.OFFERED, self.now - wait_s, queue, line))
        self.book.record(Observation(fate, self.now, queue, line, wait_s=wait_s))

    def snapshot(self) -> Snapshot:
        return Snapshot(
            at=dt.datetime.fromtimestamp(self.now, dt.UTC).isoformat(),
            link=self.link,
            queues=[self._queue_view(q.name) for q in self.config.queues],
            seats=self.seats,
            lines=[self._line_view(number, title, mode) for number, title, mode in self._lines()],
            overall=self._overall(),
            chart=[
                ChartPoint(
                    at,
                    self.book.gauge_max("waiting", at, at + CHART_STEP_S - 1),
                    rates.service_level_of_answered,
                )
                for at, rates in self.book.series(ALL, self.now, CHART_HOURS, CHART_STEP_S)
            ],
            targets=overall_targets(self.config),
        )

    def _overall(self) -> dict[str, Rates]:
        rates = self.book.rates(ALL, self.now)
        resolution = round(self.resolved / self.with_feedback, 4) if self.with_feedback else None
        rates["today"] = replace(rates["today"], resolution_rate=resolution, with_feedback=self.with_feedback)
        return rates

    def _queue_view(self, name: str) -> QueueView:
        queue = self.config.queue(name)
        states = [s.state for s in self.seats if name in s.queues and s.state != "logged_out"]
        counts = SeatCounts(
            logged_in=len(states),
            ready=states.count("ready"),
            ringing=states.count("ringing"),
            on_call=states.count("on_call"),
            wrap_up=states.count("wrap_up"),
            paused=states.count("paused"),
        )
        return QueueView(
            name=name,
            title=queue.title,
            kind=queue.kind.value,
            waiting=self.waiting.get(name, 0),
            longest_wait_s=self.longest_wait_s.get(name, 0.0),
            service_level_s=queue.service_level_s,
            seats=counts,
            rates=self.book.rates(f"queue:{name}", self.now),
            targets=queue_targets(queue),
        )

    def _lines(self) -> list[tuple[str, str, str]]:
        main = (self.config.hotline.number, self.config.hotline.name, "hotline")
        return [main] + [(line.number, line.title, line.mode.value) for line in self.config.legacy_lines]

    def _line_view(self, number: str, title: str, mode: str) -> LineView:
        scope = f"line:{number}"
        hourly = self.book.series(scope, self.now, 24, 3600)[-24:]
        today = self.book.day(scope, self.now).offered
        return LineView(number, title, mode, today, [rates.offered for _, rates in hourly])


def empty_floor() -> Floor:
    config = load_config(ROOT / "hotline_merge.yaml")
    book = KpiBook(service_level_s={q.name: q.service_level_s for q in config.queues})
    return Floor(config, book, NOW)


def busy_floor(seed: int = 12345) -> Floor:
    """A weekday afternoon: 30 hours of calls, queues building up, seats in every state."""
    rng = random.Random(seed)
    floor = empty_floor()
    _record_history(floor, rng)
    _staff(floor, rng)
    floor.waiting = {"hotline-general": 7, "expert-market": 2, "subcenter-tax": 1}
    floor.longest_wait_s = {"hotline-general": 41.0, "expert-market": 9.0, "subcenter-tax": 3.0}
    for at in range(int(NOW) - CHART_HOURS * 3600, int(NOW) + 1, 60):  # calls waiting, sampled
        peak = max(0.0, 1 - abs(at - (NOW - 3 * 3600)) / 7200)  # a wave three hours ago
        floor.book.sample("waiting", at, rng.randint(0, 3) + 14 * peak)
    return floor


def _record_history(floor: Floor, rng: random.Random) -> None:
    config = floor.config
    # Calls per hour at the busiest hour, by number: citizens still dial some merged numbers.
    popularity = {config.hotline.number: 90.0}
    for line in config.legacy_lines:
        popularity[line.number] = {MergeMode.PARALLEL: 14.0, MergeMode.SUBCENTER: 18.0}.get(
            line.mode, rng.choice([0.0, 0.3, 1.0, 3.0])
        )
    queue_of = {line.number: line.queue or "hotline-general" for line in config.legacy_lines}
    for hours_ago in range(30, 0, -1):
        hour_start = floor.now - hours_ago * 3600
        local_hour = dt.datetime.fromtimestamp(hour_start, CHINA_TZ).hour
        load = 0.15 if local_hour < 7 or local_hour >= 22 else 1.0 if 9 <= local_hour < 17 else 0.5
        for number, per_hour in popularity.items():
            for _ in range(_poisson(rng, per_hour * load)):
                _one_call(
                    floor,
                    rng,
                    hour_start + rng.uniform(0, 3600),
                    queue_of.get(number, "hotline-general"),
                    number,
                )


def _one_call(floor: Floor, rng: random.Random, at: float, queue: str, line: str) -> None:
    book = floor.book
    wait = rng.expovariate(1 / 9)
    book.record(Observation(Fact.OFFERED, at, queue, line))
    if rng.random() < 0.06:
        book.record(Observation(Fact.ABANDONED, at + wait * 3, queue, line, wait_s=wait * 3))
        return
    book.record(Observation(Fact.ANSWERED, at + wait, queue, line, wait_s=wait))
    ended = at + wait + rng.uniform(120, 420)
    if ended >= floor.now:
        return
    if rng.random() < 0.65:
        vote = rng.choices(["satisfied", "basic", "dissatisfied", "none"], [80, 12, 5, 3])[0]
        book.record(Observation(Fact.SURVEY, ended, value=vote))
    if ended + 3600 < floor.now and _is_today(ended + 3600, floor.now) and rng.random() < 0.5:
        floor.with_feedback += 1
        floor.resolved += rng.random() < 0.9


def _is_today(at: float, now: float) -> bool:
    return dt.datetime.fromtimestamp(at, CHINA_TZ).date() == dt.datetime.fromtimestamp(now, CHINA_TZ).date()


def _staff(floor: Floor, rng: random.Random) -> None:
    states = ["on_call", "ready", "wrap_up", "ringing", "paused", "logged_out"]
    for group in floor.config.seats:
        for extension in group.extension_list():
            state = rng.choices(states, [46, 18, 12, 4, 8, 12])[0]
            floor.seats.append(
                SeatView(
                    node="pbx-1",
                    extension=extension,
                    name=f"{group.name_prefix}{extension[-2:]}",
                    state=state,
                    reason=rng.choice(PAUSE_REASONS) if state == "paused" else "",
                    since=floor.now - rng.randint(3, 900),
                    calls_taken=0 if state == "logged_out" else rng.randint(4, 38),
                    queues=list(group.queues),
                )
            )


def _poisson(rng: random.Random, mean: float) -> int:
    # Unit-rate exponential gaps that fit within ``mean``: a Poisson count without numpy.
    count, t = 0, rng.expovariate(1)
    while t < mean:
        count += 1
        t += rng.expovariate(1)
    return count
