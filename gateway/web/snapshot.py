"""What the dashboard shows, as one JSON document: the contract between the gateway and the page.

A ``Snapshot`` adds up every node's live state (``NodeLive``, built from its tracker) and takes
the KPI book's windows (``gateway.queues.stats``); the live hub pushes it to browsers, whole to a
new page and then as deltas (``Wire``). Field names are stable: the page and the tests read them.
Times in seconds; rates in 0..1 or None when there is nothing to divide by. Other instances' nodes
come back from Redis as untrusted input and are parsed (``read_live``) before they are added.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from gateway.calls.model import Seat, SeatState
from gateway.calls.tracker import Tracker
from gateway.dialplan.routing import RoutingPlan
from gateway.merge.schema import HotlineConfig, Queue
from gateway.queues.stats import ALL, KpiBook, Rates
from gateway.readback import Count, Epoch, Seconds, Source, Text, parse, refuse, text
from gateway.records.model import PBX_NODE_PATTERN, QueueName


@dataclass(frozen=True)
class SeatCounts:
    logged_in: Count = 0
    ready: Count = 0
    ringing: Count = 0
    on_call: Count = 0
    wrap_up: Count = 0
    paused: Count = 0


@dataclass(frozen=True)
class Targets:
    """What each figure is judged by (hotline_merge.yaml), shown as its colour and on hover.

    Rates in 0..1 and at least the target; abandon rate and times at most the target; None: none.
    """

    response_rate: float | None = None
    resolution_rate: float | None = None
    satisfaction_rate: float | None = None
    service_level: float | None = None  # of callers answered within service_level_s
    abandon_rate: float | None = None
    asa_s: float | None = None
    longest_wait_s: float | None = None


def queue_targets(queue: Queue) -> Targets:
    return Targets(
        service_level=queue.service_level_target_pct / 100,
        abandon_rate=queue.abandon_rate_target_pct / 100,
        asa_s=float(queue.asa_target_s),
        longest_wait_s=float(queue.longest_wait_target_s),
    )


def overall_targets(config: HotlineConfig) -> Targets:
    """The centre's three rates, and the general seats' targets for the figures over every queue."""
    return replace(
        queue_targets(config.general_queue),
        response_rate=config.targets.response_rate_pct / 100,
        resolution_rate=config.targets.resolution_rate_pct / 100,
        satisfaction_rate=config.targets.satisfaction_rate_pct / 100,
    )


@dataclass(frozen=True)
class QueueView:
    name: str
    title: str
    kind: str  # general | expert | policy | subcenter
    waiting: int
    longest_wait_s: float
    service_level_s: int
    seats: SeatCounts
    rates: dict[str, Rates]  # "15m", "1h", "24h", "today"
    targets: Targets = field(default_factory=Targets)


_SeatStateName = Annotated[str, Field(pattern=f"^({'|'.join(SeatState)})$")]
NodeId = Annotated[str, Field(pattern=PBX_NODE_PATTERN)]


@dataclass(frozen=True, slots=True)  # slots: no dict per seat for the collector to walk
class SeatView:
    node: NodeId  # the Asterisk node it is on: a province's cities reuse each other's extensions
    extension: Text
    name: Text
    state: _SeatStateName  # logged_out | ready | ringing | on_call | wrap_up | paused
    reason: Text  # pause reason, empty otherwise
    # When it entered its state (epoch seconds): fixed while the state lasts, so an unchanged seat
    # is an unchanged view, and the page counts the time in state itself.
    since: Epoch
    calls_taken: Count
    queues: list[QueueName]
    call_id: Text = ""  # the call the seat is talking on (what a supervisor listens to), if any


@dataclass(frozen=True)
class LineView:
    number: str
    title: str
    mode: str  # hotline | merged | parallel | subcenter | legacy
    today: int  # calls offered today (calendar day)
    trend: list[int]  # calls offered per hour over the last 24 h, oldest first


@dataclass(frozen=True)
class LinkView:
    ami: Text  # the AMI link's phase, e.g. "ready", "connecting", "login_failed"
    stale: bool  # live figures may be out of date (link down, resync in progress)
    reason: Text  # why, for the banner; empty when all is well


@dataclass(frozen=True)
class ChartPoint:
    at: int  # epoch seconds, start of the slot
    waiting: int | None  # calls waiting (largest sample in the slot)
    service_level: float | None  # answered within threshold ÷ answered, in the slot


@dataclass(frozen=True)
class Snapshot:
    at: str  # ISO 8601 UTC
    link: LinkView
    queues: list[QueueView]
    seats: list[SeatView]  # by node, then extension
    lines: list[LineView]
    overall: dict[str, Rates]  # the three rates and totals over every queue, per window
    chart: list[ChartPoint] = field(default_factory=list)
    targets: Targets = field(default_factory=Targets)  # for ``overall``

    def to_json(self) -> str:
        return encode(self)


@dataclass(frozen=True)
class QueueLive:
    """One queue's live figures on one node."""

    name: QueueName
    waiting: Count
    longest_wait_s: Seconds
    seats: SeatCounts


@dataclass(frozen=True)
class NodeLive:
    """One node's live state: what its ticker builds, what it mirrors to the other instances
    through Redis, and what the dashboard adds up over every node. Read back from Redis it is
    untrusted (``read_live``)."""

    node: NodeId
    at: Epoch
    link: LinkView
    queues: list[QueueLive]
    seats: list[SeatView]  # by extension

    def to_json(self, seats: SeatJson) -> str:
        """The mirror's JSON; ``seats`` keeps each seat's JSON between two mirrors of the node."""
        head = encode({"node": self.node, "at": self.at, "link": self.link, "queues": self.queues})
        return f'{head[:-1]},"seats":{json_array(seats.encode(self.seats).every)}}}'


_NODE_LIVE = TypeAdapter(NodeLive)


def read_live(key: str, raw: bytes | str, *, node: str) -> NodeLive | None:
    """``node``'s live state read back from Redis, or None (refused, logged and counted)."""
    live = parse(_NODE_LIVE, raw, source=Source.LIVE, key=key)
    if live is None:
        return None
    # A mirror speaks for its own node only: a seat under another's name would be a forged tile.
    other = next((n for n in (live.node, *(s.node for s in live.seats)) if n != node), None)
    if other is not None:
        refuse(Source.LIVE, key, "node", f"node {other} in the mirror of node {node}")
        return None
    return live


def read_node_id(raw: bytes | str, *, key: str) -> str | None:
    """A node id listed in Redis under ``key``, or None (refused)."""
    node = text(raw, source=Source.LIVE, key=key, field="member")
    if node is not None and not re.fullmatch(PBX_NODE_PATTERN, node):
        refuse(Source.LIVE, key, "member", f"not a node id: {node[:40]!r}")
        return None
    return node


def as_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): as_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_plain(v) for v in value]
    return value


def encode(value: Any) -> str:
    return json.dumps(as_plain(value), ensure_ascii=False, separators=(",", ":"))


def json_array(encoded: list[str]) -> str:
    """A JSON array of values each already encoded (the seats' cached JSON)."""
    return f"[{','.join(encoded)}]"


@dataclass(frozen=True)
class SeatsEncoded:
    every: list[str]  # each seat's JSON, in order
    changed: list[str]  # of those, the seats new or changed since the last encode
    gone: list[tuple[str, str]]  # (node, extension) of the seats no longer there


class SeatJson:
    """Seats to JSON, each seat encoded again only when its view changed: with 10,000 seats on a
    page, a few dozen change between two pushes.

    The cache is updated in place, not rebuilt: entries made anew every push would live a push
    long, long enough for the collector to promote them, and promotions are what bring on its
    full collections (0.2 s and more at a province's scale).
    """

    def __init__(self) -> None:
        # Two dicts rather than one of pairs: a pair holding a view is one more object to walk.
        self._views: dict[tuple[str, str], SeatView] = {}
        self._texts: dict[tuple[str, str], str] = {}

    def encode(self, seats: list[SeatView]) -> SeatsEncoded:
        views, texts = self._views, self._texts
        every, changed = [], []
        for view in seats:
            key = (view.node, view.extension)
            old = views.get(key)
            # Views of an unchanged seat are the same object (``SeatViews``) or, read back from a
            # peer's mirror, equal.
            if old is None or (old is not view and old != view):
                views[key] = view
                texts[key] = encode(view)
                changed.append(texts[key])
            every.append(texts[key])
        gone = []
        if len(views) > len(seats):  # every seat shown is known now: the rest are gone
            shown = {(view.node, view.extension) for view in seats}
            gone = [key for key in views if key not in shown]
            for key in gone:
                del views[key], texts[key]
        return SeatsEncoded(every, changed, gone)


class SeatViews:
    """One node's seats as views, each built again only when its seat changed."""

    def __init__(self, node: str) -> None:
        self.node = node
        # What each view shows, as plain values (a tuple of them the collector stops tracking),
        # and the view; updated in place, as ``SeatJson`` is, for the same reason.
        self._shown: dict[str, tuple[object, ...]] = {}
        self._views: dict[str, SeatView] = {}
        self._order: list[str] = []  # extensions, sorted

    def __call__(self, seats: Collection[Seat]) -> list[SeatView]:
        shown, views = self._shown, self._views
        resort = False  # an extension came or went
        for seat in seats:
            # Everything a view shows, cheaply: the time in state is fixed by ``state_since``.
            paused = seat.paused_reason if seat.state is SeatState.PAUSED else None
            what = (
                seat.state.value,
                seat.state_since,
                paused,
                seat.calls_taken,
                seat.name,
                *seat.active_calls,
                "|",
                *seat.memberships,
            )
            known = shown.get(seat.seat_id)
            if known != what:
                resort = resort or known is None
                shown[seat.seat_id] = what
                views[seat.seat_id] = self._view(seat)
        if len(seats) < len(views):  # every seat is in ``views`` now: the rest are gone
            present = {seat.seat_id for seat in seats}
            for extension in [e for e in views if e not in present]:
                del views[extension], shown[extension]
            resort = True
        if resort:
            self._order = sorted(views)
        return [views[extension] for extension in self._order]

    def _view(self, seat: Seat) -> SeatView:
        return SeatView(
            node=self.node,
            extension=seat.seat_id,
            name=seat.name,
            state=seat.state.value,
            reason=(seat.paused_reason or "") if seat.state is SeatState.PAUSED else "",
            since=round(seat.state_since_wall.timestamp(), 1),
            calls_taken=seat.calls_taken,
            queues=sorted(seat.memberships),
            call_id=min(seat.active_calls, default=""),
        )


def node_live(
    *, tracker: Tracker, plan: RoutingPlan, seats: SeatViews, link: LinkView, now: float, wall: float
) -> NodeLive:
    """One node's live state from its tracker (``now`` monotonic, ``wall`` epoch seconds)."""
    states_by_queue: dict[str, list[SeatState]] = {}
    for seat in tracker.seats.values():
        if seat.state is not SeatState.LOGGED_OUT:
            for queue in seat.memberships:
                states_by_queue.setdefault(queue, []).append(seat.state)
    queues = []
    for name in plan.queues:
        figures = tracker.queues.get(name)
        states = states_by_queue.get(name, [])
        counts = SeatCounts(
            logged_in=len(states),
            ready=states.count(SeatState.READY),
            ringing=states.count(SeatState.RINGING),
            on_call=states.count(SeatState.ON_CALL),
            wrap_up=states.count(SeatState.WRAP_UP),
            paused=states.count(SeatState.PAUSED),
        )
        waiting = len(figures.waiting) if figures else 0
        longest = round(figures.longest_wait_s(now), 1) if figures else 0.0
        queues.append(QueueLive(name, waiting, longest, counts))
    return NodeLive(seats.node, round(wall, 3), link, queues, seats(tracker.seats.values()))


def build_snapshot(
    *,
    home: str,
    link: LinkView,
    live: list[NodeLive],
    plan: RoutingPlan,
    config: HotlineConfig,
    book: KpiBook,
    wall: dt.datetime,
    resolution: tuple[float | None, int] = (None, 0),
    chart_hours: int = 4,
    stale_after_s: float = 5.0,
) -> Snapshot:
    """Everything the dashboard shows: every node's live state added up (waiting calls and seats
    per queue, the longest wait anywhere), the KPI book's windows (shared by every instance through
    Redis), the order system's feedback (``resolution``: rate and how many work orders it covers,
    today) and the config's targets.

    ``link`` is the ``home`` node's (this instance's own) and its reason reads as it is; another
    node's problem, or its state older than ``stale_after_s``, makes the picture stale, naming it.
    """
    configured = {q.name: q for q in config.queues}
    epoch = wall.timestamp()
    totals = {name: QueueLive(name, 0, 0.0, SeatCounts()) for name in plan.queues}
    reasons = [link.reason] if link.reason else []
    seats: list[SeatView] = []
    for part in sorted(live, key=lambda p: p.node):
        for queue in part.queues:
            total = totals.get(queue.name)
            if total is not None:
                totals[queue.name] = _add(total, queue)
        seats += part.seats
        age = epoch - part.at
        if part.node == home:
            continue
        if age > stale_after_s:
            reasons.append(f"节点 {part.node} 的数据已 {age:.0f} 秒未更新")
        elif part.link.stale:
            reasons.append(f"节点 {part.node}: {part.link.reason}")
    queues = [
        QueueView(
            name=name,
            title=queue_plan.title,
            kind=queue_plan.kind,
            waiting=totals[name].waiting,
            longest_wait_s=totals[name].longest_wait_s,
            service_level_s=queue_plan.service_level_s,
            seats=totals[name].seats,
            rates=book.rates(f"queue:{name}", epoch),
            targets=queue_targets(configured[name]) if name in configured else Targets(),
        )
        for name, queue_plan in plan.queues.items()
    ]
    lines = sorted(
        (
            LineView(
                number=route.number,
                title=route.title,
                mode=route.merge_mode,
                today=book.day(f"line:{route.number}", epoch).offered,
                trend=[
                    r.offered for _, r in book.series(f"line:{route.number}", epoch, hours=24, step_s=3600)
                ][-24:],
            )
            for route in plan.routes.values()
        ),
        key=lambda line: (-line.today, line.number),
    )
    rate, covered = resolution
    overall = {
        window: replace(rates, resolution_rate=rate, with_feedback=covered) if window == "today" else rates
        for window, rates in book.rates(ALL, epoch).items()
    }
    chart = [
        ChartPoint(
            at=at, waiting=book.gauge_max("waiting", at, at + 299), service_level=r.service_level_of_answered
        )
        for at, r in book.series(ALL, epoch, hours=chart_hours)
    ]
    return Snapshot(
        at=wall.isoformat(timespec="milliseconds"),
        link=LinkView(ami=link.ami, stale=bool(reasons), reason="；".join(reasons)),
        queues=queues,
        seats=seats,
        lines=lines,
        overall=overall,
        chart=chart,
        targets=overall_targets(config),
    )


def _add(total: QueueLive, part: QueueLive) -> QueueLive:
    counts = SeatCounts(
        *map(sum, zip(dataclasses.astuple(total.seats), dataclasses.astuple(part.seats), strict=True))
    )
    longest = max(total.longest_wait_s, part.longest_wait_s)
    return QueueLive(total.name, total.waiting + part.waiting, longest, counts)


class Wire:
    """The snapshots as a page receives them: the first one whole, then what changed since the one
    before (a *delta*): the top-level parts that changed, the seats new or changed, the seats gone.
    With 10,000 seats a whole snapshot is over a megabyte and a delta a few kilobytes."""

    PARTS = ("link", "queues", "lines", "overall", "chart", "targets")

    def __init__(self) -> None:
        self._seats = SeatJson()
        self._parts: dict[str, str] = {}
        self._every: list[str] = []
        self._at = ""

    def advance(self, snapshot: Snapshot, base: int) -> str:
        """Take ``snapshot`` in; return the delta that turns the one before (numbered ``base``) into it."""
        seats = self._seats.encode(snapshot.seats)
        parts = {name: encode(getattr(snapshot, name)) for name in self.PARTS}
        changed = [f'"{name}":{text}' for name, text in parts.items() if self._parts.get(name) != text]
        self._parts, self._every, self._at = parts, seats.every, snapshot.at
        body = [f'"at":{encode(self._at)}', f'"base":{base}', *changed]
        return (
            "{"
            + ",".join([*body, f'"seats":{json_array(seats.changed)}', f'"gone":{encode(seats.gone)}'])
            + "}"
        )

    def whole(self) -> str:
        """The snapshot last taken in, whole: the same text as its ``to_json``."""
        parts = {"at": encode(self._at), **self._parts, "seats": json_array(self._every)}
        order = [f.name for f in dataclasses.fields(Snapshot)]
        return "{" + ",".join(f'"{name}":{parts[name]}' for name in order) + "}"
