"""The tracker's state, its outputs, its handler tables and how it reads untrusted event values.

``TrackerState`` is the one object every part of the tracker works on (legs and calls, seats,
hand-overs and conferences, resync): plain maps, no behaviour. Handlers are registered per module
with ``Handlers.on`` / ``Handlers.on_snapshot`` (a table, no method names looked up at run time);
``gateway.calls.tracker`` joins the tables. Event text is untrusted (trace 10): every value goes
through ``valid`` against a pattern before it reaches a call.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.ami.protocol import Message
from gateway.calls.model import Call, Leg, Party, QueueFigures, QueueVisit, Seat, Survey
from gateway.contract import VAR_CATEGORY, VAR_DEPARTMENT, VAR_LEGACY_LINE, VAR_MERGE_MODE
from gateway.vocabulary import CATEGORY_RE, PHONE_RE

TOKEN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
EPOCH = re.compile(r"[0-9]{9,11}")  # the dialplan's ${EPOCH}: whole seconds since 1970
TEXT = re.compile(r"[^\x00-\x1f]{1,200}")  # printable text: a department, a recording file
MAX_TEXT = 200
EMERGENCY_NUMBERS = frozenset({"110", "119", "120", "122"})

# Channel variables the dialplan sets on every inbound call -> the call's attribute and its pattern.
CALL_FIELDS: dict[str, tuple[str, re.Pattern[str]]] = {
    VAR_LEGACY_LINE: ("legacy_line", PHONE_RE),
    VAR_MERGE_MODE: ("merge_mode", TOKEN),
    VAR_DEPARTMENT: ("department", TEXT),
    VAR_CATEGORY: ("category_code", CATEGORY_RE),
}


@dataclass(frozen=True, slots=True)
class QueueRules:
    service_level_s: int = 20
    wrapup_s: int = 0


class UpdateKind(StrEnum):
    CALLBACK_REQUESTED = "callback_requested"
    EMERGENCY_HANDOVER = "emergency_handover"
    LATE_SURVEY = "late_survey"  # a survey result for a call already reported as ended


@dataclass(frozen=True, slots=True)
class CallEnded:
    call: Call


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """A live call reached a state the order system must know now (read ``call`` at once)."""

    kind: UpdateKind
    call_id: str
    call: Call | None
    survey: Survey | None = None


Output = CallEnded | CallUpdate


@dataclass(eq=False)
class TrackerState:
    """Everything the tracker knows; the maps index the same calls, legs and seats."""

    inbound_contexts: frozenset[str]
    queue_rules: dict[str, QueueRules]
    default_rules: QueueRules
    emergency_numbers: frozenset[str]
    ended_memory: int
    seats: dict[str, Seat] = field(default_factory=dict)
    queues: dict[str, QueueFigures] = field(default_factory=dict)
    stale: bool = False
    groups: dict[str, Call] = field(default_factory=dict)  # every Linkedid seen, citizen call or not
    leg_call: dict[str, Call] = field(default_factory=dict)  # live legs by Uniqueid
    party_of_leg: dict[str, Party] = field(default_factory=dict)
    conferences: dict[str, Call] = field(default_factory=dict)
    aliases: dict[str, Call] = field(
        default_factory=dict
    )  # Linkedids joined into a live call (Handover Call:)
    seat_by_device: dict[str, str] = field(default_factory=dict)
    wrapping: set[str] = field(default_factory=set)
    ended: dict[str, None] = field(default_factory=dict)  # recently ended Linkedids, oldest first
    gone_legs: dict[str, None] = field(default_factory=dict)  # recently hung-up Uniqueids, oldest first
    # Legs that left a queue after QueueCallerAbandon: hung up or timed out, decided at their next event.
    undecided: dict[str, QueueVisit] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)  # of the event being applied
    resync_entries: set[tuple[str, str]] = field(default_factory=set)
    # A resync's callers talking to a seat (Queue() bridged): bridge -> (queue, call, leg, joined).
    resync_bridged: dict[str, tuple[str, Call, Leg, float]] = field(default_factory=dict)
    resync_seat_legs: dict[str, tuple[str, float]] = field(default_factory=dict)  # bridge -> (seat leg, rung)

    @classmethod
    def of(
        cls,
        *,
        inbound_contexts: Iterable[str],
        queue_rules: Mapping[str, QueueRules] | None,
        default_rules: QueueRules,
        emergency_numbers: Iterable[str],
        ended_memory: int,
    ) -> TrackerState:
        return cls(
            frozenset(inbound_contexts),
            dict(queue_rules or {}),
            default_rules,
            frozenset(emergency_numbers),
            ended_memory,
        )

    def take_outputs(self) -> list[Output]:
        outputs, self.outputs = self.outputs, []
        return outputs


Handler = Callable[[TrackerState, dict[str, str], Message, float, dt.datetime], None]


class Handlers:
    """One module's handler table, filled by decorating its functions."""

    def __init__(self) -> None:
        self.live: dict[str, Handler] = {}
        self.snapshot: dict[str, Handler] = {}

    def on(self, *events: str) -> Callable[[Handler], Handler]:
        """``@handlers.on("Hold", "Unhold")``: the function handles these live events."""
        return self._register(self.live, events)

    def on_snapshot(self, *events: str) -> Callable[[Handler], Handler]:
        """The function handles these list items of a resync snapshot."""
        return self._register(self.snapshot, events)

    @staticmethod
    def _register(table: dict[str, Handler], events: tuple[str, ...]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for event in events:
                if event in table:
                    raise ValueError(f"{event} already has a handler: {table[event].__qualname__}")
                table[event] = handler
            return handler

        return register


def join_tables(*tables: Mapping[str, Handler]) -> dict[str, Handler]:
    """One table from several modules'; an event handled twice is a bug."""
    joined: dict[str, Handler] = {}
    for table in tables:
        twice = joined.keys() & table.keys()
        if twice:
            raise ValueError(f"events handled twice: {sorted(twice)}")
        joined |= table
    return joined


# --- reading untrusted values ----------------------------------------------------------------------


def as_int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or "")
    except ValueError:
        return default


def valid(value: str | None, pattern: re.Pattern[str]) -> str | None:
    return value if value is not None and pattern.fullmatch(value) else None


def interface_device(interface: str) -> str:
    """``Local/1001@agents/n`` -> ``Local/1001@agents`` (the device its channels are named after)."""
    tech, _, resource = interface.partition("/")
    return f"{tech}/{resource.partition('/')[0]}"


def duration_s(value: str | None) -> float:
    """CoreShowChannel ``Duration: HH:MM:SS`` (or Status ``Seconds: N``) in seconds."""
    parts = (value or "").split(":")
    try:
        return float(sum(int(p) * 60**i for i, p in enumerate(reversed(parts))))
    except ValueError:
        return 0.0
