"""What the dashboard shows, as one JSON document: the contract between the gateway and the page.

A ``Snapshot`` is built from the live tracker state and the KPI book (``gateway.queues.stats``)
and pushed to browsers by the live hub. Field names are stable: the page and the tests read them.
Times in seconds; rates in 0..1 or None when there is nothing to divide by. Other nodes' live
state comes back from Redis as untrusted input and is parsed (``Peer``) before it is merged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter

from gateway.calls.model import Seat, SeatState
from gateway.calls.tracker import Tracker
from gateway.dialplan.routing import RoutingPlan
from gateway.merge.schema import HotlineConfig, Queue
from gateway.queues.stats import ALL, KpiBook, Rates
from gateway.readback import Count, Seconds, Source, Text, parse
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


@dataclass(frozen=True)
class SeatView:
    extension: Text
    name: Text
    state: _SeatStateName  # logged_out | ready | ringing | on_call | wrap_up | paused
    reason: Text  # pause reason, empty otherwise
    since_s: Seconds  # time in the current state
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
    ami: str  # the AMI link's phase, e.g. "ready", "connecting", "login_failed"
    stale: bool  # live figures may be out of date (link down, resync in progress)
    reason: str  # why, for the banner; empty when all is well


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
    seats: list[SeatView]
    lines: list[LineView]
    overall: dict[str, Rates]  # the three rates and totals over every queue, per window
    chart: list[ChartPoint] = field(default_factory=list)
    targets: Targets = field(default_factory=Targets)  # for ``overall``

    def to_json(self) -> str:
        return json.dumps(as_plain(self), ensure_ascii=False, separators=(",", ":"))


class PeerLink(BaseModel):
    stale: bool
    reason: Text


class PeerQueue(BaseModel):
    name: QueueName
    waiting: Count
    longest_wait_s: Seconds
    seats: SeatCounts


class Peer(BaseModel):
    """The part of another node's mirrored snapshot (``as_plain`` plus ``node``) that is merged."""

    node: Annotated[str, Field(pattern=PBX_NODE_PATTERN)]
    at: AwareDatetime
    link: PeerLink
    queues: list[PeerQueue]
    seats: list[SeatView]


_PEER = TypeAdapter(Peer)


def read_peer(key: str, raw: bytes | str) -> Peer | None:
    """Another node's live state read back from Redis, or None (refused, logged and counted)."""
    return parse(_PEER, raw, source=Source.LIVE, key=key)


def as_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): as_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_plain(v) for v in value]
    return value


def build_snapshot(
    *,
    tracker: Tracker,
    plan: RoutingPlan,
    config: HotlineConfig,
    book: KpiBook,
    link: LinkView,
    now: float,
    wall: dt.datetime,
    resolution: tuple[float | None, int] = (None, 0),
    chart_hours: int = 4,
) -> Snapshot:
    """Everything the dashboard shows, from the tracker (live), the KPI book (windows) and the
    order system's feedback (``resolution``: rate and how many work orders it covers, today),
    with the config's targets."""
    configured = {q.name: q for q in config.queues}
    epoch = wall.timestamp()
    seats_by_queue: dict[str, list[Seat]] = {}
    for seat in tracker.seats.values():
        for queue in seat.memberships:
            seats_by_queue.setdefault(queue, []).append(seat)
    queues = []
    for name, queue_plan in plan.queues.items():
        figures = tracker.queues.get(name)
        members = seats_by_queue.get(name, [])
        states = [seat.state for seat in members if seat.state is not SeatState.LOGGED_OUT]
        queues.append(
            QueueView(
                name=name,
                title=queue_plan.title,
                kind=queue_plan.kind,
                waiting=len(figures.waiting) if figures else 0,
                longest_wait_s=round(figures.longest_wait_s(now), 1) if figures else 0.0,
                service_level_s=queue_plan.service_level_s,
                seats=SeatCounts(
                    logged_in=len(states),
                    ready=states.count(SeatState.READY),
                    ringing=states.count(SeatState.RINGING),
                    on_call=states.count(SeatState.ON_CALL),
                    wrap_up=states.count(SeatState.WRAP_UP),
                    paused=states.count(SeatState.PAUSED),
                ),
                rates=book.rates(f"queue:{name}", epoch),
                targets=queue_targets(configured[name]) if name in configured else Targets(),
            )
        )
    seats = [
        SeatView(
            extension=seat.seat_id,
            name=seat.name,
            state=seat.state.value,
            reason=seat.paused_reason or "",
            since_s=round(seat.time_in_state(now), 1),
            calls_taken=seat.calls_taken,
            queues=sorted(seat.memberships),
            call_id=min(seat.active_calls, default=""),
        )
        for seat in sorted(tracker.seats.values(), key=lambda s: s.seat_id)
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
        link=link,
        queues=queues,
        seats=seats,
        lines=lines,
        overall=overall,
        chart=chart,
        targets=overall_targets(config),
    )


def merge_live(own: Snapshot, peers: list[Peer], *, now: float, stale_after_s: float = 5.0) -> Snapshot:
    """Add other nodes' live parts (mirrored through Redis) to this instance's snapshot.

    Waiting calls and seats add up per queue and the longest wait is the longest anywhere; the
    KPI parts (rates, lines, chart) already come from the shared Redis buckets. A peer whose
    mirror is older than ``stale_after_s`` makes the whole picture stale, naming its node.
    """
    if not peers:
        return own
    by_name = {q.name: q for q in own.queues}
    waiting = {name: q.waiting for name, q in by_name.items()}
    longest = {name: q.longest_wait_s for name, q in by_name.items()}
    seats = {name: dataclasses.asdict(q.seats) for name, q in by_name.items()}
    extra_seats = []
    reasons = [own.link.reason] if own.link.reason else []
    for peer in peers:
        for queue in peer.queues:
            if queue.name not in by_name:
                continue
            waiting[queue.name] += queue.waiting
            longest[queue.name] = max(longest[queue.name], queue.longest_wait_s)
            for state, count in dataclasses.asdict(queue.seats).items():
                seats[queue.name][state] += count
        extra_seats += peer.seats
        age = now - peer.at.timestamp()
        if age > stale_after_s:
            reasons.append(f"节点 {peer.node} 的数据已 {age:.0f} 秒未更新")
        elif peer.link.stale:
            reasons.append(f"节点 {peer.node}: {peer.link.reason}")
    queues = [
        replace(q, waiting=waiting[q.name], longest_wait_s=longest[q.name], seats=SeatCounts(**seats[q.name]))
        for q in own.queues
    ]
    link = LinkView(ami=own.link.ami, stale=bool(reasons), reason="；".join(reasons))
    return replace(
        own, queues=queues, seats=sorted([*own.seats, *extra_seats], key=lambda s: s.extension), link=link
    )
