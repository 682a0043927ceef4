"""A transfer and its state machine: pure, no I/O, no clock of its own.

A transfer is one hand-over the gateway drives for one call: requested -> ringing -> answered ->
completed, or cancelled, failed, timed out. ``observe`` reads one AMI event as facts about a
transfer; ``step`` applies a fact (from an event, the API or the deadline) and returns the
effects the service must carry out: hang a leg up, send the caller back, tell the tracker how
the hand-over ended. Monotonic ``now`` is only compared with the deadline; UTC ``wall`` is what
people see.

How each mode is proven, from the recorded traces and the rendered dialplan:

- blind (一键转接): BlindTransfer of the seat's leg into ``hotline-handover`` (trace 05). The caller
  then joins the target queue, or dials the linkage number: ringing; a seat or 110 answering it
  completes the transfer. When the target queue keeps the caller past the deadline, the service
  sends the caller back (``hotline-return``); a linkage number that is busy or never answers
  sends the caller back in the dialplan itself, so here it only fails.
- consult: Atxfer to a digits-only extension (traces 06, 06b). "Successfully queued" proves
  nothing: the consultation leg ``Local/<exten>@hotline-handover`` appearing, joining the target
  queue and being answered are the steps, and only ``AttendedTransfer`` completes it (the seat
  hanging up its leg does that). Cancelling or timing out hangs up the consultation leg, and
  Asterisk gives the seat its caller back.
  Asterisk can also take the Atxfer (the caller is put on hold) and never dial: it collects the
  extension's digits with a dial tone playing, and without one (no indications.conf) a silent
  seat channel reads only the first digit; after ~20 s of prompts it takes the caller off hold,
  with no event to say why (issue 13, defect 3). So a consult whose leg has not appeared within
  a few seconds (``start_by``), or whose seat is taken off hold first, has failed, with a reason.
- three-way: caller and seat redirected into a ConfBridge room, the target originated into it
  (trace 07) with ids the service chose; its leg joining the room completes it. The seat may
  leave at any time and the others go on; if the target never comes and the seat has left, the
  caller is sent back rather than left alone in the room.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.calls.model import seat_id_of
from gateway.vocabulary import HandoverMode, HandoverOutcome, TargetKind


class State(StrEnum):
    REQUESTED = "requested"  # the AMI action is sent or about to be
    RINGING = "ringing"  # the target queue has the call, or the target's phone rings
    ANSWERED = "answered"  # someone at the target answered (a consult talks first)
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


TERMINAL = frozenset({State.COMPLETED, State.CANCELLED, State.FAILED, State.TIMED_OUT})
_DIAL_FAILED = {"BUSY": HandoverOutcome.BUSY, "NOANSWER": HandoverOutcome.NO_ANSWER}


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind  # QUEUE (expert, policy, sub-centre) or EMERGENCY (110/119/120/122)
    name: str  # the queue name or the linkage number
    exten: str  # its digits-only extension in hotline-handover and hotline-threeway
    title: str


@dataclass(slots=True)
class Leg:
    uniqueid: str
    channel: str  # the name Asterisk gave it, needed to act on it


# --- facts -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetLeg:
    """A channel working toward the target (consultation leg, three-way target, linkage call)."""

    uniqueid: str
    channel: str


@dataclass(frozen=True, slots=True)
class Ringing:
    member: bool  # something rings (a queue member, the linkage number), not just a queue wait


@dataclass(frozen=True, slots=True)
class Answered:
    party: str  # seat id or linkage number


@dataclass(frozen=True, slots=True)
class Unreached:
    outcome: HandoverOutcome
    why: str


@dataclass(frozen=True, slots=True)
class Transferred:
    """AttendedTransfer succeeded: the caller is with the target."""


@dataclass(frozen=True, slots=True)
class Joined:
    """The three-way target's leg entered the room."""


class Who(StrEnum):
    CALLER = "caller"
    SEAT = "seat"
    TARGET = "target"


@dataclass(frozen=True, slots=True)
class Gone:
    who: Who


@dataclass(frozen=True, slots=True)
class Refused:
    why: str  # Asterisk's answer to the action


@dataclass(frozen=True, slots=True)
class Held:
    """The seat's leg was put on hold: Asterisk took the Atxfer's feature code."""


@dataclass(frozen=True, slots=True)
class NotStarted:
    """A consult's consultation leg never appeared: by ``start_by``, or the seat is off hold again."""

    late: bool  # True: the start deadline passed; False: Asterisk gave the caller back (Unhold)


@dataclass(frozen=True, slots=True)
class Expired:
    """The deadline passed before anyone at the target answered."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """Asked for through the API."""


Fact = (
    TargetLeg
    | Ringing
    | Answered
    | Unreached
    | Transferred
    | Joined
    | Gone
    | Refused
    | Held
    | NotStarted
    | Expired
    | Cancel
)

# --- effects ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HangUp:
    channel: str


@dataclass(frozen=True, slots=True)
class SendBack:
    """Redirect the caller to its seat if that seat can take it, else first in the general queue."""

    seat: str | None


@dataclass(frozen=True, slots=True)
class Settle:
    """Tell the tracker how the call's hand-over ended (for the call record)."""

    outcome: HandoverOutcome


Effect = HangUp | SendBack | Settle


@dataclass(eq=False)
class Transfer:
    id: str
    call_id: str
    mode: HandoverMode
    target: Target
    from_seat: str
    caller: Leg  # the caller's channel bridged with the seat
    seat: Leg  # the seat's channel bridged with the caller (the transferer)
    requested_at: dt.datetime
    deadline: float  # monotonic; past it an unanswered transfer times out
    node: str  # the gateway node that runs it (only it can act on it)
    override: bool = False  # a supervisor lifted the one-hand-over rule
    room: str | None = None  # three-way: the ConfBridge room
    state: State = State.REQUESTED
    reason: str = ""
    outcome: HandoverOutcome | None = None
    answered_by: str | None = None
    target_legs: dict[str, str] = field(default_factory=dict)  # Uniqueid -> channel name ("" until seen)
    rang: bool = False
    seat_left: bool = False
    start_by: float | None = None  # monotonic; a consult's consultation leg must have appeared by then
    held: bool = False  # a consult: Asterisk put the caller on hold (it took the feature code)
    history: list[tuple[State, dt.datetime]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.history:
            self.history.append((self.state, self.requested_at))

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    @property
    def awaits_answer(self) -> bool:
        """Its deadline still applies: not finished, and nobody at the target has answered."""
        return not self.finished and self.state is not State.ANSWERED

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "call_id": self.call_id, "mode": self.mode.value,
            "target": {"kind": self.target.kind.value, "name": self.target.name, "title": self.target.title},
            "state": self.state.value, "reason": self.reason or None,
            "outcome": self.outcome.value if self.outcome else None,
            "from_seat": self.from_seat, "answered_by": self.answered_by, "override": self.override,
            "room": self.room, "node": self.node,
            "requested_at": _iso(self.requested_at),
            "history": [{"state": state.value, "at": _iso(at)} for state, at in self.history],
        }  # fmt: skip


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


# --- reading events --------------------------------------------------------------------------


def observe(t: Transfer, name: str, f: Mapping[str, str], *, consult_prefix: str) -> list[Fact]:
    """What the AMI event ``name`` with headers ``f`` says about ``t``.

    ``consult_prefix`` is how the consultation leg's channel starts (``Local/<exten>@<context>-``):
    Atxfer gives it no id we choose, so it is recognised by name within the call.
    """
    if t.finished:
        return []
    uniqueid = f.get("Uniqueid", "")
    found = (
        t.mode is HandoverMode.CONSULT
        and bool(uniqueid)
        and uniqueid not in t.target_legs
        and f.get("Linkedid") == t.call_id
        and f.get("Channel", "").startswith(consult_prefix)
    )
    facts: list[Fact] = []
    if found or (uniqueid in t.target_legs and not t.target_legs[uniqueid] and f.get("Channel")):
        facts.append(TargetLeg(uniqueid, f.get("Channel", "")))
    bound = (
        uniqueid == t.caller.uniqueid if t.mode is HandoverMode.BLIND else found or uniqueid in t.target_legs
    )
    return facts + _read(t, name, f, uniqueid, bound)


def _read(t: Transfer, name: str, f: Mapping[str, str], uniqueid: str, bound: bool) -> list[Fact]:
    """``bound``: the event is about the leg that carries the call toward the target."""
    in_target_queue = t.target.kind is TargetKind.QUEUE and f.get("Queue") == t.target.name
    match name:
        case "QueueCallerJoin" if bound and in_target_queue:
            return [Ringing(member=False)]
        case "AgentCalled" if bound and in_target_queue:
            return [Ringing(member=True)]
        case "AgentConnect" if bound and in_target_queue:
            return [Answered(seat_id_of(f.get("Interface", "")))]
        case "DialBegin" if bound and t.target.kind is TargetKind.EMERGENCY and _dials(f, t.target.name):
            return [TargetLeg(f.get("DestUniqueid", ""), f.get("DestChannel", "")), Ringing(member=True)]
        case "DialEnd" if f.get("DestUniqueid") in t.target_legs and t.target.kind is TargetKind.EMERGENCY:
            return _dial_end(t, f.get("DialStatus", ""))
        case "BlindTransfer" if (
            f.get("TransfererUniqueid") == t.seat.uniqueid and f.get("Result") != "Success"
        ):
            return [Unreached(HandoverOutcome.FAILED, f"Asterisk did not transfer: {f.get('Result', '')}")]
        case "AttendedTransfer" if f.get("OrigTransfererUniqueid") == t.seat.uniqueid:
            if f.get("Result") == "Success":
                return [Transferred()]
            return [Unreached(HandoverOutcome.FAILED, f"Asterisk did not transfer: {f.get('Result', '')}")]
        case "Hold" | "Unhold" if t.mode is HandoverMode.CONSULT and uniqueid == t.seat.uniqueid:
            return [Held()] if name == "Hold" else [NotStarted(late=False)]
        case "ConfbridgeJoin" if uniqueid in t.target_legs and f.get("Conference") == t.room:
            return [Joined()]
        case "Hangup":
            return _hangup(t, uniqueid)
    return []


def _dials(f: Mapping[str, str], number: str) -> bool:
    """DialBegin's DialString ``PJSIP/110@carrier-trunk`` or ``110@carrier-trunk`` names ``number``."""
    return f.get("DialString", "").partition("@")[0].rpartition("/")[2] == number


def _dial_end(t: Transfer, status: str) -> list[Fact]:
    if status == "ANSWER":
        return [Answered(t.target.name)]
    if status == "CANCEL":
        return []  # the caller or the gateway stopped it; the Hangup says which
    outcome = _DIAL_FAILED.get(status, HandoverOutcome.FAILED)
    return [Unreached(outcome, f"{t.target.name} did not answer the hand-over ({status or 'no status'})")]


def _hangup(t: Transfer, uniqueid: str) -> list[Fact]:
    if uniqueid == t.caller.uniqueid:
        return [Gone(Who.CALLER)]
    if uniqueid == t.seat.uniqueid:
        return [Gone(Who.SEAT)]
    if uniqueid in t.target_legs:
        return [Gone(Who.TARGET)]
    return []


def _unanswered(t: Transfer, why: str) -> Unreached:
    """Nothing at the target answered: nobody was even rung means every target seat was busy."""
    return Unreached(HandoverOutcome.NO_ANSWER if t.rang else HandoverOutcome.BUSY, why)


# --- the machine -----------------------------------------------------------------------------


def step(t: Transfer, fact: Fact, wall: dt.datetime) -> list[Effect]:
    """Apply ``fact`` to ``t`` (in place); the effects the service must carry out, in order."""
    if t.finished:
        return []
    match fact:
        case TargetLeg(uniqueid, channel):
            t.target_legs[uniqueid] = channel
        case Ringing(member):
            t.rang = t.rang or member
            if t.state is State.REQUESTED:
                _move(t, State.RINGING, wall)
        case Answered(party):
            t.answered_by = party
            if t.state is not State.ANSWERED:
                _move(t, State.ANSWERED, wall)
            if t.mode is HandoverMode.BLIND:
                return _end(t, State.COMPLETED, HandoverOutcome.COMPLETED, "", wall)
        case Transferred() if t.mode is HandoverMode.CONSULT:
            return _end(t, State.COMPLETED, HandoverOutcome.COMPLETED, "", wall)
        case Joined() if t.mode is HandoverMode.THREEWAY:
            return _end(t, State.COMPLETED, HandoverOutcome.COMPLETED, "", wall)
        case Unreached(outcome, why):
            return _end(t, State.FAILED, outcome, why, wall, *_recover(t, blind_returns_itself=True))
        case Refused(why):
            return _end(t, State.FAILED, HandoverOutcome.FAILED, why, wall)
        case Held():
            t.held = True
        case NotStarted(late) if t.state is State.REQUESTED and not t.target_legs:
            return _end(t, State.FAILED, HandoverOutcome.FAILED, _not_started(t, late), wall)
        case Gone(who):
            return _gone(t, who, wall)
        case Expired() if t.awaits_answer:
            why = f"no one at {t.target.title} answered in time"
            return _end(t, State.TIMED_OUT, _unanswered(t, why).outcome, why, wall, *_recover(t))
        case Cancel():
            return _end(t, State.CANCELLED, HandoverOutcome.CANCELLED, "cancelled", wall, *_recover(t))
    return []


def _gone(t: Transfer, who: Who, wall: dt.datetime) -> list[Effect]:
    if who is Who.CALLER:
        # Nobody left to hand over: release whoever was being reached.
        drop = [HangUp(channel) for channel in _first_halves(t)] if t.mode is not HandoverMode.BLIND else []
        return _end(t, State.FAILED, HandoverOutcome.FAILED, "the caller hung up", wall, *drop)
    if who is Who.SEAT:
        # Blind: the seat's leg goes by design. Consult: its hangup is how Asterisk completes the
        # transfer (AttendedTransfer follows). Three-way: the others go on without it.
        t.seat_left = True
        return []
    if t.mode is HandoverMode.BLIND:
        return []  # the linkage call ended; DialEnd said how
    if t.state is State.ANSWERED:
        why = "the target left before the caller was handed over"
        return _end(t, State.FAILED, HandoverOutcome.FAILED, why, wall, *_recover(t))
    unreached = _unanswered(t, f"{t.target.title} could not be reached")
    return _end(t, State.FAILED, unreached.outcome, unreached.why, wall, *_recover(t))


def _not_started(t: Transfer, late: bool) -> str:
    if not t.held:
        return (
            f"Asterisk did not take the Atxfer to {t.target.title} (the caller was never put on hold): "
            "check features.conf's atxfer code and Queue() option t"
        )
    gave_up = "is still collecting" if late else "gave up collecting"
    return (
        f"Asterisk put the caller on hold but never dialled {t.target.title}: it {gave_up} the "
        f"extension's digits ({t.target.exten}); it needs a dial tone (indications.conf) and the "
        "pbx-transfer prompt"
    )


def _recover(t: Transfer, *, blind_returns_itself: bool = False) -> list[Effect]:
    """What gives the caller back to a person when the transfer will not complete."""
    if t.mode is HandoverMode.BLIND:
        # The dialplan sends the caller back itself when the PBX ends the attempt.
        return [] if blind_returns_itself else [SendBack(t.from_seat)]
    effects: list[Effect] = [HangUp(channel) for channel in _first_halves(t)]
    if t.mode is HandoverMode.THREEWAY and t.seat_left:
        effects.append(SendBack(None))  # alone in the room: first in the general queue
    return effects


def _first_halves(t: Transfer) -> list[str]:
    """The target legs to hang up: the ``;1`` half of a Local pair takes its other half with it."""
    known = [channel for channel in t.target_legs.values() if channel]
    firsts = [channel for channel in known if channel.endswith(";1")]
    return firsts or known[:1]


def _move(t: Transfer, state: State, wall: dt.datetime) -> None:
    t.state = state
    t.history.append((state, wall))


def _end(
    t: Transfer, state: State, outcome: HandoverOutcome, why: str, wall: dt.datetime, *effects: Effect
) -> list[Effect]:
    t.reason = why
    t.outcome = outcome
    _move(t, state, wall)
    return [Settle(outcome), *effects]
