"""What the tracker knows: calls and their legs, parties, queue visits and hand-overs; seats;
queues. Plain mutable dataclasses owned by ``tracker``; everybody else reads them.

A *call* is every channel sharing one Asterisk Linkedid (plus channels adopted into it, e.g. a
specialist originated into the call's conference). A *leg* is one channel (by Uniqueid). A
*party* is someone the caller was offered or connected to: a seat, or an external number such as
110; each has its own ring, talk and hold timers, so the transferring seat is never billed for
the specialist's time. Times come in two kinds: wall-clock UTC datetimes for records, monotonic
seconds (``Stopwatch``) for every duration.

It does not know Asterisk's event names (``tracker``) or the record format (``gateway.records``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from gateway.vocabulary import (
    DispositionKind,
    HandoverMode,
    HandoverOutcome,
    PartyKind,
    QueueResult,
    TargetKind,
)


class Stopwatch:
    """A duration that runs while a condition holds; ``run(cond, now)`` is idempotent."""

    __slots__ = ("started", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.started: float | None = None

    def run(self, running: bool, now: float) -> None:
        if running and self.started is None:
            self.started = now
        elif not running and self.started is not None:
            self.total += max(0.0, now - self.started)
            self.started = None

    def seconds(self, now: float) -> float:
        return self.total + (max(0.0, now - self.started) if self.started is not None else 0.0)

    @property
    def running(self) -> bool:
        return self.started is not None


class LegRole(StrEnum):
    CALLER = "caller"  # the citizen's channel(s): the origin and its Local pair
    SEAT = "seat"  # a channel reaching a seat
    CONSULT = "consult"  # a seat's consultation call during an attended transfer
    EXTERNAL = "external"  # a channel to an outside number (110, a department)
    OTHER = "other"


class SeatState(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class DeviceStatus(IntEnum):
    """app_queue member Status (Asterisk device states)."""

    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8


@dataclass(slots=True, eq=False)
class Leg:
    uniqueid: str
    channel: str
    role: LegRole
    exten: str = ""
    pair: str | None = None  # the other half of a Local channel pair
    on_hold: bool = False
    conference: str | None = None
    recordings: list[str] = field(default_factory=list)
    seen_in_resync: bool = True


@dataclass(slots=True, eq=False)
class Party:
    kind: PartyKind
    party: str  # seat id, or the number dialled for external parties
    queue: str | None
    offered_at: dt.datetime
    leg: str | None  # Uniqueid of the party's own channel
    via_leg: str | None  # the caller/consult leg it was offered to
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    no_answer: bool = False
    ring: Stopwatch = field(default_factory=Stopwatch)
    talk: Stopwatch = field(default_factory=Stopwatch)
    hold: Stopwatch = field(default_factory=Stopwatch)
    recordings: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Answered and not ended: connected to the call."""
        return self.answered_at is not None and self.ended_at is None

    @property
    def ringing(self) -> bool:
        return self.answered_at is None and self.ended_at is None


@dataclass(slots=True, eq=False)
class QueueVisit:
    queue: str
    leg: str
    joined_at: dt.datetime
    joined_mono: float
    consult: bool = False  # a seat's consultation call queued, not the caller
    left_at: dt.datetime | None = None
    left_mono: float | None = None
    result: QueueResult | None = None
    position: int | None = None
    # app_queue sent QueueCallerAbandon: a hang-up, or a Queue() timeout (it reports both so);
    # the caller's next event tells which (``legs.decide_abandon``).
    abandon_reported: bool = False

    def wait_s(self, now: float) -> float:
        return max(0.0, (self.left_mono if self.left_mono is not None else now) - self.joined_mono)


@dataclass(slots=True, eq=False)
class Handover:
    at: dt.datetime
    mode: HandoverMode
    from_seat: str | None
    target_kind: TargetKind | None = None
    target: str | None = None
    outcome: HandoverOutcome = HandoverOutcome.PENDING
    recording: str | None = None

    @property
    def emergency_service(self) -> str | None:
        return self.target if self.target_kind is TargetKind.EMERGENCY else None


@dataclass(slots=True, frozen=True)
class Survey:
    result: str
    key: str | None
    at: dt.datetime


@dataclass(slots=True, frozen=True)
class CallbackRequest:
    number: str | None
    queue: str | None
    at: dt.datetime
    joined_at: dt.datetime  # when the caller first queued (callbacks are made in this order)


@dataclass(slots=True, frozen=True)
class Disposition:
    kind: DispositionKind
    abandoned_after_s: float | None = None  # queue wait before hanging up (abandoned only)
    emergency_service: str | None = None
    callback_number: str | None = None


@dataclass(slots=True, eq=False)
class Call:
    call_id: str  # the Linkedid
    arrived_at: dt.datetime
    arrived_mono: float
    citizen: bool = False  # a citizen's call (inbound, queued or tagged), not e.g. a seat's originate
    caller_number: str | None = None
    legacy_line: str | None = None  # the number dialled (12345 or a merged legacy line)
    merge_mode: str | None = None
    department: str | None = None
    category_code: str | None = None
    legs: dict[str, Leg] = field(default_factory=dict)
    queues: list[QueueVisit] = field(default_factory=list)
    parties: list[Party] = field(default_factory=list)
    handovers: list[Handover] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    survey: Survey | None = None
    callback: CallbackRequest | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    disposition: Disposition | None = None
    wrap_up_s: float | None = None  # the last answering seat's configured wrap-up, if known
    wait: Stopwatch = field(default_factory=Stopwatch)
    ring: Stopwatch = field(default_factory=Stopwatch)
    talk: Stopwatch = field(default_factory=Stopwatch)
    hold: Stopwatch = field(default_factory=Stopwatch)

    @property
    def queue_joined_at(self) -> dt.datetime | None:
        return next((v.joined_at for v in self.queues if not v.consult), None)

    @property
    def seat_ids(self) -> list[str]:
        """Seats that answered, in order."""
        return [p.party for p in self.parties if p.kind is PartyKind.SEAT and p.answered_at is not None]

    def timers(self, now: float) -> dict[str, float]:
        return {
            "wait_s": self.wait.seconds(now),
            "ring_s": self.ring.seconds(now),
            "talk_s": self.talk.seconds(now),
            "hold_s": self.hold.seconds(now),
        }


@dataclass(slots=True, eq=False)
class Membership:
    queue: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str | None = None
    dynamic: bool = False
    wrapup_s: int = 0
    seen_in_resync: bool = True


@dataclass(slots=True, eq=False)
class Seat:
    seat_id: str
    interface: str
    name: str
    state: SeatState
    state_since: float
    state_since_wall: dt.datetime
    memberships: dict[str, Membership] = field(default_factory=dict)
    device_status: DeviceStatus = DeviceStatus.UNKNOWN
    calls_taken: int = 0  # answered since the tracker started
    ringing_calls: set[str] = field(default_factory=set)
    active_calls: set[str] = field(default_factory=set)
    wrap_up_until: float | None = None
    seconds_in: dict[SeatState, float] = field(default_factory=dict)

    @property
    def paused_reason(self) -> str | None:
        return next((m.paused_reason or "" for m in self.memberships.values() if m.paused), None)

    def time_in_state(self, now: float) -> float:
        return max(0.0, now - self.state_since)


@dataclass(slots=True, eq=False)
class QueueFigures:
    """Counts since the tracker started; every rate names its denominator."""

    name: str
    service_level_s: int
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_within_sl: int = 0
    wait_answered_s: float = 0.0  # summed waits of answered callers (÷ answered for the average)
    waiting: dict[str, QueueVisit] = field(default_factory=dict)  # by leg Uniqueid

    def longest_wait_s(self, now: float) -> float:
        return max((v.wait_s(now) for v in self.waiting.values()), default=0.0)

    @property
    def service_level_of_answered(self) -> float | None:
        """Answered within the service level ÷ answered."""
        return self.answered_within_sl / self.answered if self.answered else None

    @property
    def abandoned_of_offered(self) -> float | None:
        """Abandoned ÷ offered."""
        return self.abandoned / self.offered if self.offered else None

    @property
    def average_wait_of_answered_s(self) -> float | None:
        """Summed wait of answered callers ÷ answered."""
        return self.wait_answered_s / self.answered if self.answered else None


# --- names ---------------------------------------------------------------------------------------

_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8,}(?:;[12])?$")


def device_of(channel: str) -> str:
    """``Local/1001@agents-00000001;1`` -> ``Local/1001@agents``; ``PJSIP/1001-0000000a`` -> ``PJSIP/1001``."""
    return _CHANNEL_SUFFIX.sub("", channel)


def seat_id_of(interface: str) -> str:
    """The short seat id of a member interface or device: ``Local/1001@agents/n`` -> ``1001``."""
    resource = interface.partition("/")[2] or interface
    return resource.partition("@")[0].partition("/")[0] or interface
