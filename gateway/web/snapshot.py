"""What the dashboard shows, as one JSON document: the contract between the gateway and the page.

A ``Snapshot`` is built from the live tracker state and the KPI book (``gateway.queues.stats``)
and pushed to browsers by the live hub. Field names are stable: the page and the tests read them.
Times in seconds; rates in 0..1 or None when there is nothing to divide by.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from gateway.queues.stats import Rates


@dataclass(frozen=True)
class SeatCounts:
    logged_in: int = 0
    ready: int = 0
    ringing: int = 0
    on_call: int = 0
    wrap_up: int = 0
    paused: int = 0


@dataclass(frozen=True)
class QueueView:
    name: str
    title: str
    kind: str  # general | expert | policy | subcenter
    waiting: int
    longest_wait_s: float  # shown red above service_level_s
    service_level_s: int
    seats: SeatCounts
    rates: dict[str, Rates]  # "15m", "1h", "24h", "today"


@dataclass(frozen=True)
class SeatView:
    extension: str
    name: str
    state: str  # logged_out | ready | ringing | on_call | wrap_up | paused
    reason: str  # pause reason, empty otherwise
    since_s: float  # time in the current state
    calls_taken: int
    queues: list[str]


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

    def to_json(self) -> str:
        return json.dumps(as_plain(self), ensure_ascii=False, separators=(",", ":"))


def as_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): as_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_plain(v) for v in value]
    return value
