"""The tracker: a pure reducer from AMI events to calls, seats and queue figures.

No I/O and no asyncio: ``apply(event, now, wall)`` takes the monotonic ``now`` (durations) and a
UTC ``wall`` time (records) with every event, so replaying a recorded trace gives the same state
every time. Finished calls and the moments the order system must hear about at once come out of
``drain()``. Unknown events, unknown ids and garbled values are ignored, never raised.

What the real Asterisk 22 traces taught, and how it is handled here:

- Redirect out of a queue emits no transfer event, and the first queue's AgentComplete only
  arrives when the caller finally hangs up, with a TalkTime including the expert's time (trace
  04). So AgentComplete is not used at all: each party's talk time is measured here from its own
  leg (AgentConnect to its Hangup, ConfbridgeLeave or a transfer event), and a caller who joins a
  new queue while connected to a seat has been handed over.
- BlindTransfer (05) and AttendedTransfer (06) end the transferring seat's party at once; the
  consultation call of an attended transfer is its own leg, queued in the target queue, and its
  queue wait is not the caller's wait.
- Atxfer's "successfully queued" proves nothing (06b): an attended hand-over stays pending until
  AttendedTransfer, and is cancelled if the consultation leg hangs up without it.
- A specialist originated into the call's conference has its own Linkedid (07): a leg joining a
  conference owned by a call is adopted into that call. What the gateway originates for a call
  (a three-way target) names the call in its HotlineHandover UserEvent (``Call: <Linkedid>``):
  from then on every channel of its Linkedid belongs to the call, so the target's queue visit and
  ringing are the call's own. (VarSet would be earlier, but needs the ``dialplan`` read class,
  which the gateway's manager user does not have.)
- A failed blind hand-over sends the caller back (dialplan ``hotline-return``): a seat dialled
  straight from the caller's leg is a seat party without a queue, and going back into a queue
  after a target queue that never answered is the return, not a second hand-over.
- AgentRingNoAnswer RingTime is in ms, AgentConnect RingTime in s (02): ring time is measured
  here from AgentCalled, not taken from either.
- Event text is untrusted (10): values are checked against patterns before they reach a record,
  and UserEvents only ever touch a call that already exists.

Bridge events are not needed: a party ends when its own leg hangs up, leaves the conference or is
transferred, which is exactly when it stops working on the call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from gateway.ami.protocol import Message
from gateway.calls.model import (
    Call,
    CallbackRequest,
    DeviceStatus,
    Disposition,
    DispositionKind,
    Handover,
    HandoverMode,
    HandoverOutcome,
    Leg,
    LegRole,
    Membership,
    Party,
    PartyKind,
    QueueFigures,
    QueueResult,
    QueueVisit,
    Seat,
    SeatState,
    Survey,
    TargetKind,
    device_of,
    seat_id_of,
)

_PHONE = re.compile(r"\+?[0-9]{2,20}")
_TOKEN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_QUEUE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_DTMF_KEY = re.compile(r"[0-9*#]")
_CATEGORY = re.compile(r"[0-9]{6}")
_EPOCH = re.compile(r"[0-9]{9,11}")  # the dialplan's ${EPOCH}: whole seconds since 1970
_RECORDING = re.compile(r"[^\x00-\x1f]{1,200}")
_MAX_TEXT = 200
_BUSY_DEVICE = frozenset({DeviceStatus.INUSE, DeviceStatus.BUSY, DeviceStatus.RINGINUSE, DeviceStatus.ONHOLD})
_GONE_DEVICE = frozenset({DeviceStatus.INVALID, DeviceStatus.UNAVAILABLE})
_DIAL_FAILED = {"BUSY": HandoverOutcome.BUSY, "NOANSWER": HandoverOutcome.NO_ANSWER}
_LEFT_UNANSWERED = frozenset({QueueResult.TIMEOUT, QueueResult.OVERFLOWED})

# Channel variables the dialplan sets on every inbound call (gateway.dialplan.routing).
_CALL_FIELDS: dict[str, tuple[str, re.Pattern[str]]] = {
    "LEGACY_LINE": ("legacy_line", _PHONE),
    "MERGE_MODE": ("merge_mode", _TOKEN),
    "DEPARTMENT": ("department", re.compile(r"[^\x00-\x1f]{1,200}")),
    "CATEGORY_CODE": ("category_code", _CATEGORY),
}
CALL_VARIABLES = tuple(_CALL_FIELDS)  # what a resync asks Status for, for calls it never saw start
# The same facts as headers of the dialplan's HotlineIntake UserEvent.
_INTAKE_FIELDS = {"LegacyLine": "LEGACY_LINE", "MergeMode": "MERGE_MODE", "Department": "DEPARTMENT"}
_RECORDING_VARIABLES = frozenset({"HOTLINE_RECORDING", "MIXMONITOR_FILENAME"})

EMERGENCY_NUMBERS = frozenset({"110", "119", "120", "122"})


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
_Handler = Callable[[dict[str, str], Message, float, dt.datetime], None]


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or "")
    except ValueError:
        return default


def _valid(value: str | None, pattern: re.Pattern[str]) -> str | None:
    return value if value is not None and pattern.fullmatch(value) else None


def _interface_device(interface: str) -> str:
    """``Local/1001@agents/n`` -> ``Local/1001@agents`` (the device its channels are named after)."""
    tech, _, resource = interface.partition("/")
    return f"{tech}/{resource.partition('/')[0]}"


def _duration_s(value: str | None) -> float:
    """CoreShowChannel ``Duration: HH:MM:SS`` (or Status ``Seconds: N``) in seconds."""
    parts = (value or "").split(":")
    try:
        return float(sum(int(p) * 60**i for i, p in enumerate(reversed(parts))))
    except ValueError:
        return 0.0


def _add_recording(recordings: list[str], name: str) -> None:
    """Keep one entry per file: the dialplan variable and MixMonitor's argument name the same file."""
    for i, known in enumerate(recordings):
        if known == name or known.endswith("/" + name):
            recordings[i] = name if len(name) < len(known) else known
            return
        if name.endswith("/" + known):
            return
    recordings.append(name)


class Tracker:
    """Live state of the hotline as Asterisk reports it. Feed every event in order."""

    def __init__(
        self,
        *,
        inbound_contexts: Iterable[str] = ("from-pstn",),
        queue_rules: Mapping[str, QueueRules] | None = None,
        default_rules: QueueRules = QueueRules(),
        emergency_numbers: Iterable[str] = EMERGENCY_NUMBERS,
        ended_memory: int = 10_000,
    ) -> None:
        self.inbound_contexts = frozenset(inbound_contexts)
        self.queue_rules = dict(queue_rules or {})
        self.default_rules = default_rules
        self.emergency_numbers = frozenset(emergency_numbers)
        self.seats: dict[str, Seat] = {}
        self.queues: dict[str, QueueFigures] = {}
        self.stale = False
        self._groups: dict[str, Call] = {}  # every Linkedid seen, citizen call or not
        self._leg_call: dict[str, Call] = {}  # live legs by Uniqueid
        self._party_of_leg: dict[str, Party] = {}
        self._conferences: dict[str, Call] = {}
        self._aliases: dict[str, Call] = {}  # Linkedids joined into a live call (HotlineHandover Call:)
        self._seat_by_device: dict[str, str] = {}
        self._wrapping: set[str] = set()
        self._ended: dict[str, None] = {}  # recently ended Linkedids, oldest first
        self._gone_legs: dict[str, None] = {}  # recently hung-up Uniqueids, oldest first
        self._ended_memory = ended_memory
        self._outputs: list[Output] = []
        self._resync_entries: set[tuple[str, str]] = set()
        # A resync's callers talking to a seat (Queue() bridged): bridge -> (queue, call, leg, joined).
        self._resync_bridged: dict[str, tuple[str, Call, Leg, float]] = {}
        self._resync_seat_legs: dict[str, tuple[str, float]] = {}  # bridge -> (seat leg, when rung)
        self._handlers: dict[str, _Handler] = {
            name: getattr(self, method) for name, method in _LIVE_HANDLERS.items()
        }
        self._snapshot_handlers: dict[str, _Handler] = {
            name: getattr(self, method) for name, method in _SNAPSHOT_HANDLERS.items()
        }

    # --- public API ----------------------------------------------------------------------------

    @property
    def calls(self) -> dict[str, Call]:
        """Live citizen calls by Linkedid."""
        return {cid: call for cid, call in self._groups.items() if call.citizen}

    @property
    def live_legs(self) -> int:
        """Channels currently tracked (citizen calls or not): a leak shows here first."""
        return len(self._leg_call)

    def call_of_leg(self, uniqueid: str) -> Call | None:
        return self._leg_call.get(uniqueid)

    def apply(self, event: Message, now: float, wall: dt.datetime) -> None:
        name = event.event
        handler = self._handlers.get(name) if name is not None else None
        if handler is not None:
            handler(event.as_dict(), event, now, wall)

    def settle_handover(self, call_id: str, outcome: HandoverOutcome) -> None:
        """The gateway's transfer service knows how a hand-over it drove ended (e.g. it timed out)."""
        call = self._groups.get(call_id)
        handover = self._open_handover(call) if call is not None else None
        if handover is not None:
            handover.outcome = outcome

    def tick(self, now: float, wall: dt.datetime) -> None:
        """Let time pass: seats whose wrap-up is over become ready (no event says so)."""
        for seat_id in [s for s in self._wrapping if (self.seats[s].wrap_up_until or 0.0) <= now]:
            self._wrapping.discard(seat_id)
            seat = self.seats[seat_id]
            seat.wrap_up_until = None
            self._refresh_seat(seat, now, wall)

    def drain(self) -> list[Output]:
        """Calls that ended and urgent updates since the last drain, in order."""
        outputs, self._outputs = self._outputs, []
        return outputs

    # --- resync: begin, apply the snapshot lists, end ------------------------------------------

    def begin_resync(self) -> None:
        """Mark everything stale; what the snapshot does not confirm is gone at ``end_resync``."""
        self.stale = True
        self._resync_entries.clear()
        self._resync_bridged.clear()
        self._resync_seat_legs.clear()
        for call in self._groups.values():
            for leg in call.legs.values():
                leg.seen_in_resync = False
        for seat in self.seats.values():
            for membership in seat.memberships.values():
                membership.seen_in_resync = False

    def apply_snapshot(self, events: Iterable[Message], now: float, wall: dt.datetime) -> None:
        """The list items of CoreShowChannels, Status and QueueStatus, in any order.

        Members come first (a seat must be known to recognise its channel), then channels (a
        QueueEntry names a Uniqueid but not its Linkedid), then queue entries.
        """
        known = [(_SNAPSHOT_ORDER.get(e.event or "", -1), n, e) for n, e in enumerate(events)]
        for _, _, event in sorted(item for item in known if item[0] >= 0):
            handler = self._snapshot_handlers[event.event or ""]
            handler(event.as_dict(), event, now, wall)

    def end_resync(self, now: float, wall: dt.datetime) -> None:
        """Close what vanished while the link was down: calls end as "ended during PBX outage"."""
        self._resync_answered(now, wall)
        for call in list(self._groups.values()):
            for leg in [leg for leg in call.legs.values() if not leg.seen_in_resync]:
                self._leg_gone(call, leg, now, wall, outage=True)
            for visit in call.queues:
                if visit.left_mono is None and (visit.queue, visit.leg) not in self._resync_entries:
                    self._leave_queue(visit, now, wall, QueueResult.PBX_OUTAGE)
            if call.call_id in self._groups:
                self._sync_clocks(call, now)
        for seat in self.seats.values():
            for queue in [q for q, m in seat.memberships.items() if not m.seen_in_resync]:
                del seat.memberships[queue]
            self._refresh_seat(seat, now, wall)
        self.stale = False

    def _resync_answered(self, now: float, wall: dt.datetime) -> None:
        """Callers already talking to a seat are queue visits answered before the snapshot.

        QueueStatus lists only waiting callers: an answered one is a channel still in Queue()
        sharing a bridge with a seat's AppQueue leg (trace 08). It was answered about when that
        leg was created (rung); it joined at most its own channel's age ago.
        """
        for bridge, (queue, call, leg, joined) in self._resync_bridged.items():
            if call.legs.get(leg.uniqueid) is not leg or any(
                v.queue == queue and v.leg == leg.uniqueid for v in call.queues
            ):
                continue  # gone since, or known (live events, or an earlier session)
            seat_leg, answered = self._resync_seat_legs.get(bridge, ("", now))
            answered = max(joined, answered)
            call.citizen = True
            if leg.role is LegRole.OTHER:
                self._mark_role(call, leg, LegRole.CALLER)
            visit = QueueVisit(queue, leg.uniqueid, wall - dt.timedelta(seconds=now - joined), joined)
            visit.left_mono, visit.left_at = answered, wall - dt.timedelta(seconds=now - answered)
            call.queues.append(visit)
            self._queue(queue).offered += 1
            self._count_answered(visit, now, wall)
            party = self._party_of_leg.get(seat_leg)
            if party is not None and party.queue is None:
                party.queue = queue
        self._resync_bridged.clear()
        self._resync_seat_legs.clear()

    # --- calls and legs ------------------------------------------------------------------------

    def _group(self, linkedid: str | None, now: float, wall: dt.datetime) -> Call | None:
        if not linkedid or linkedid in self._ended:
            return None
        alias = self._aliases.get(linkedid)
        if alias is not None:
            return alias
        call = self._groups.get(linkedid)
        if call is None:
            call = self._groups[linkedid] = Call(linkedid, wall, now)
        return call

    def _leg(
        self, f: dict[str, str], now: float, wall: dt.datetime, prefix: str = ""
    ) -> tuple[Call, Leg] | None:
        """The leg an event is about, created if its Newchannel was missed (e.g. after a resync).

        Any event about a leg proves it is up, so it counts as seen by a running resync; a leg
        that has hung up is never brought back by a late event or a snapshot taken before.
        """
        uniqueid = f.get(f"{prefix}Uniqueid")
        if not uniqueid or uniqueid in self._gone_legs:
            return None
        call = self._leg_call.get(uniqueid)
        if call is not None:
            leg = call.legs[uniqueid]
            leg.seen_in_resync = True
            return call, leg
        linkedid = f.get(f"{prefix}Linkedid")
        call = self._group(linkedid, now, wall)
        if call is None:
            return None
        role = LegRole.CALLER if uniqueid == linkedid else LegRole.OTHER
        leg = Leg(uniqueid, f.get(f"{prefix}Channel", ""), role, exten=f.get(f"{prefix}Exten", ""))
        call.legs[uniqueid] = leg
        self._leg_call[uniqueid] = call
        if role is LegRole.CALLER:
            self._caller_facts(call, f, prefix)
        return call, leg

    def _caller_facts(self, call: Call, f: dict[str, str], prefix: str = "") -> None:
        if f.get(f"{prefix}Context") in self.inbound_contexts:
            call.citizen = True
            if call.legacy_line is None:
                call.legacy_line = _valid(f.get(f"{prefix}Exten"), _PHONE)
        if call.caller_number is None:
            call.caller_number = _valid(f.get(f"{prefix}CallerIDNum"), _PHONE)

    def _set_field(self, call: Call, variable: str, value: str | None) -> None:
        attribute, pattern = _CALL_FIELDS[variable]
        checked = _valid(value, pattern)
        if checked is not None:
            setattr(call, attribute, checked)
            if variable == "LEGACY_LINE":
                call.citizen = True

    def _recording(self, call: Call, leg: Leg | None, name: str | None) -> None:
        if _valid(name, _RECORDING) is None or name is None:
            return
        _add_recording(call.recordings, name)
        if leg is None:
            return
        _add_recording(leg.recordings, name)
        for party in call.parties:
            if party.ended_at is None and leg.uniqueid in (party.leg, party.via_leg):
                _add_recording(party.recordings, name)

    def _adopt(self, call: Call, leg: Leg, role: LegRole) -> None:
        """Move a leg from its own Linkedid group into ``call`` (a conference joined into it)."""
        old = self._leg_call.get(leg.uniqueid)
        if old is not None and old is not call:
            del old.legs[leg.uniqueid]
            if not old.legs and not old.citizen:
                del self._groups[old.call_id]
        leg.role = role
        call.legs[leg.uniqueid] = leg
        self._leg_call[leg.uniqueid] = call

    def _join(self, group: Call, linkedid: str) -> Call:
        """``group`` works for the live citizen call ``linkedid`` (if any): all its channels join it."""
        owner = self._groups.get(linkedid)
        if owner is None or not owner.citizen or owner is group or group.citizen:
            return group
        self._aliases[group.call_id] = owner
        for leg in list(group.legs.values()):
            self._adopt(owner, leg, LegRole.CONSULT)
        return owner

    def _mark_role(self, call: Call, leg: Leg, role: LegRole) -> None:
        leg.role = role
        pair = call.legs.get(leg.pair) if leg.pair else None
        if pair is not None:
            pair.role = role

    # --- parties and clocks ----------------------------------------------------------------------

    def _add_party(
        self,
        call: Call,
        kind: PartyKind,
        party_id: str,
        queue: str | None,
        wall: dt.datetime,
        leg: Leg,
        via: Leg | None,
        *,
        answered: bool = False,
    ) -> Party:
        """A new party on ``leg``; recordings running on its leg or the leg it was offered to are its too."""
        party = Party(kind, party_id, queue, wall, leg.uniqueid, via.uniqueid if via else None)
        for name in [*(via.recordings if via else ()), *leg.recordings]:
            _add_recording(party.recordings, name)
        if answered:
            party.answered_at = wall
            call.answered_at = call.answered_at or wall
        call.parties.append(party)
        self._party_of_leg[leg.uniqueid] = party
        return party

    def _active_seat_party(self, call: Call) -> Party | None:
        return next((p for p in reversed(call.parties) if p.active and p.kind is PartyKind.SEAT), None)

    def _end_party(self, call: Call, party: Party, now: float, wall: dt.datetime) -> None:
        if party.ended_at is not None:
            return
        party.ended_at = wall
        if party.answered_at is None:
            party.no_answer = True
        self._party_clocks(call, party, now)
        seat = self.seats.get(party.party) if party.kind is PartyKind.SEAT else None
        if seat is not None:
            seat.ringing_calls.discard(call.call_id)
            if party.answered_at is not None and not any(
                p.active and p.party == seat.seat_id for p in call.parties
            ):
                seat.active_calls.discard(call.call_id)
                wrapup = self._wrapup_s(seat, party.queue)
                if wrapup:
                    seat.wrap_up_until = now + wrapup
                    self._wrapping.add(seat.seat_id)
            self._refresh_seat(seat, now, wall)

    def _wrapup_s(self, seat: Seat, queue: str | None) -> int:
        membership = seat.memberships.get(queue) if queue else None
        if membership is not None and membership.wrapup_s:
            return membership.wrapup_s
        return self.queue_rules.get(queue or "", self.default_rules).wrapup_s if queue else 0

    def _party_clocks(self, call: Call, party: Party, now: float) -> None:
        # The seat may hold from its phone's own channel, behind the Local channel app_queue dialled.
        held = any(
            leg.on_hold and self._party_of_leg.get(leg.uniqueid) is party for leg in call.legs.values()
        )
        party.ring.run(party.ringing, now)
        party.talk.run(party.active and not held, now)
        party.hold.run(party.active and held, now)

    def _sync_clocks(self, call: Call, now: float) -> None:
        connected = False
        ringing = False
        for party in call.parties:
            if party.ended_at is None:
                self._party_clocks(call, party, now)
                connected = connected or party.active
                ringing = ringing or party.ringing
        held = any(leg.on_hold for leg in call.legs.values())
        call.wait.run(any(v.left_mono is None and not v.consult for v in call.queues), now)
        call.ring.run(ringing, now)
        call.talk.run(connected and not held, now)
        call.hold.run(connected and held, now)

    def _leave_queue(self, visit: QueueVisit, now: float, wall: dt.datetime, result: QueueResult) -> None:
        if visit.left_mono is None:
            visit.left_mono = now
            visit.left_at = wall
        if visit.result is None:
            visit.result = result
        figures = self.queues.get(visit.queue)
        if figures is not None:
            figures.waiting.pop(visit.leg, None)

    def _open_handover(self, call: Call) -> Handover | None:
        return next((h for h in reversed(call.handovers) if h.outcome is HandoverOutcome.PENDING), None)

    def _consult_mode(self, call: Call) -> HandoverMode:
        """A leg working toward a target: a three-way's target leg if a three-way is open, else a consult."""
        handover = self._open_handover(call)
        threeway = handover is not None and handover.mode is HandoverMode.THREEWAY
        return HandoverMode.THREEWAY if threeway else HandoverMode.ATTENDED

    def _settle_unanswered(self, call: Call, leg: Leg) -> None:
        """The caller moves on after a blind hand-over's target queue let it go unanswered."""
        handover = self._open_handover(call)
        if (
            handover is None
            or handover.mode is not HandoverMode.BLIND
            or handover.target_kind is not TargetKind.QUEUE
        ):
            return
        left = (
            v.result in _LEFT_UNANSWERED
            for v in call.queues
            if v.queue == handover.target and v.leg in (leg.uniqueid, leg.pair)
        )
        if any(left):
            handover.outcome = HandoverOutcome.NO_ANSWER

    def _handover(
        self, call: Call, mode: HandoverMode, wall: dt.datetime, kind: TargetKind | None, target: str | None
    ) -> Handover:
        """The pending hand-over of this call (filling in what it lacked) or a new one."""
        handover = self._open_handover(call)
        if handover is None or handover.mode is not mode:
            seat = self._active_seat_party(call)
            if seat is None:
                seat = next(
                    (p for p in reversed(call.parties) if p.answered_at and p.kind is PartyKind.SEAT), None
                )
            handover = Handover(wall, mode, seat.party if seat else None)
            call.handovers.append(handover)
        if handover.target_kind is None and kind is not None:
            handover.target_kind = kind
            handover.target = target
        elif handover.target is None:
            handover.target = target
        return handover

    def _finish_handovers(self, call: Call) -> None:
        for handover in call.handovers:
            if handover.outcome is HandoverOutcome.PENDING:
                # The call ended first: during a consult that is a failed hand-over (nobody took the
                # caller back); otherwise the target never answered before the caller gave up.
                attended = handover.mode is HandoverMode.ATTENDED
                handover.outcome = HandoverOutcome.FAILED if attended else HandoverOutcome.NO_ANSWER
            if handover.target_kind is None:
                handover.target_kind = TargetKind.EXTERNAL
            if handover.target is None:
                handover.target = "unknown"

    def _leg_gone(self, call: Call, leg: Leg, now: float, wall: dt.datetime, *, outage: bool = False) -> None:
        if call.legs.pop(leg.uniqueid, None) is None:
            return  # already gone with its whole call
        self._leg_call.pop(leg.uniqueid, None)
        self._forget(self._gone_legs, leg.uniqueid)
        leg.on_hold = False
        party = self._party_of_leg.pop(leg.uniqueid, None)
        if party is not None:
            self._end_party(call, party, now, wall)
        for visit in call.queues:
            if visit.leg == leg.uniqueid and visit.left_mono is None:
                self._leave_queue(
                    visit, now, wall, QueueResult.PBX_OUTAGE if outage else QueueResult.ABANDONED
                )
        if leg.role is LegRole.CONSULT:
            handover = self._open_handover(call)
            if (
                handover is not None
                and handover.mode is HandoverMode.ATTENDED
                and not any(other.role is LegRole.CONSULT for other in call.legs.values())
            ):
                handover.outcome = HandoverOutcome.CANCELLED
        if not call.citizen:
            if not call.legs:
                del self._groups[call.call_id]
        elif not any(other.role is LegRole.CALLER for other in call.legs.values()):
            self._finalize(call, now, wall, outage=outage)
        else:
            self._sync_clocks(call, now)

    def _finalize(self, call: Call, now: float, wall: dt.datetime, *, outage: bool = False) -> None:
        for party in call.parties:
            self._end_party(call, party, now, wall)
        for visit in call.queues:
            self._leave_queue(visit, now, wall, QueueResult.PBX_OUTAGE if outage else QueueResult.ABANDONED)
        for uniqueid in call.legs:
            # Legs still up belong to the ended call (a seat's Local half, an adopted specialist).
            self._leg_call.pop(uniqueid, None)
            self._party_of_leg.pop(uniqueid, None)
            self._forget(self._gone_legs, uniqueid)
        call.legs.clear()
        self._sync_clocks(call, now)
        call.ended_at = wall
        call.disposition = self._disposition(call, now, outage)
        self._finish_handovers(call)
        last = next((p for p in reversed(call.parties) if p.answered_at and p.kind is PartyKind.SEAT), None)
        if last is not None and last.party in self.seats:
            call.wrap_up_s = float(self._wrapup_s(self.seats[last.party], last.queue))
        for conference in [name for name, owner in self._conferences.items() if owner is call]:
            del self._conferences[conference]
        for linkedid in [name for name, owner in self._aliases.items() if owner is call]:
            del self._aliases[linkedid]
        del self._groups[call.call_id]
        self._forget(self._ended, call.call_id)
        self._outputs.append(CallEnded(call))

    def _forget(self, memory: dict[str, None], key: str) -> None:
        """Remember ``key`` as finished, keeping only the most recent ``ended_memory`` keys."""
        memory[key] = None
        if len(memory) > self._ended_memory:
            del memory[next(iter(memory))]

    def _disposition(self, call: Call, now: float, outage: bool) -> Disposition:
        if outage:
            return Disposition(DispositionKind.PBX_OUTAGE)
        emergency = next(
            (
                h.target
                for h in call.handovers
                if h.target_kind is TargetKind.EMERGENCY and h.outcome is HandoverOutcome.COMPLETED
            ),
            None,
        )
        if emergency is not None:
            return Disposition(DispositionKind.EMERGENCY_HANDOVER, emergency_service=emergency)
        if call.callback is not None:
            return Disposition(DispositionKind.CALLBACK_REQUESTED, callback_number=call.callback.number)
        if call.answered_at is not None:
            return Disposition(DispositionKind.ANSWERED)
        queued = any(not v.consult for v in call.queues)
        waited = call.wait.seconds(now) if queued else max(0.0, now - call.arrived_mono)
        return Disposition(DispositionKind.ABANDONED, abandoned_after_s=waited)

    # --- seats ---------------------------------------------------------------------------------

    def _seat(self, interface: str, name: str | None, now: float, wall: dt.datetime) -> Seat:
        seat_id = seat_id_of(interface)
        seat = self.seats.get(seat_id)
        if seat is None:
            seat = self.seats[seat_id] = Seat(
                seat_id, interface, name or seat_id, SeatState.LOGGED_OUT, now, wall
            )
            self._seat_by_device[_interface_device(interface)] = seat_id
        elif name:
            seat.name = name
        return seat

    def _seat_of_channel(self, channel: str) -> Seat | None:
        seat_id = self._seat_by_device.get(device_of(channel))
        return self.seats.get(seat_id) if seat_id else None

    def _refresh_seat(self, seat: Seat, now: float, wall: dt.datetime) -> None:
        status = seat.device_status
        # What the tracker saw beats the device state: a Local member is "in use" while it rings.
        if seat.active_calls:
            state = SeatState.ON_CALL
        elif seat.ringing_calls:
            state = SeatState.RINGING
        elif status in _BUSY_DEVICE and seat.memberships:
            state = SeatState.ON_CALL
        elif status is DeviceStatus.RINGING and seat.memberships:
            state = SeatState.RINGING
        elif not seat.memberships or status in _GONE_DEVICE:
            state = SeatState.LOGGED_OUT
        elif seat.wrap_up_until is not None and now < seat.wrap_up_until:
            state = SeatState.WRAP_UP
        elif any(m.paused for m in seat.memberships.values()):
            state = SeatState.PAUSED
        else:
            state = SeatState.READY
        if state is not seat.state:
            seat.seconds_in[seat.state] = seat.seconds_in.get(seat.state, 0.0) + max(
                0.0, now - seat.state_since
            )
            seat.state = state
            seat.state_since = now
            seat.state_since_wall = wall

    def _queue(self, name: str) -> QueueFigures:
        figures = self.queues.get(name)
        if figures is None:
            rules = self.queue_rules.get(name, self.default_rules)
            figures = self.queues[name] = QueueFigures(name, rules.service_level_s)
        return figures

    # --- live event handlers (see _LIVE_HANDLERS) ------------------------------------------------

    def _on_newchannel(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        self._leg(f, now, wall)

    def _on_local_bridge(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        one, two = self._leg(f, now, wall, "LocalOne"), self._leg(f, now, wall, "LocalTwo")
        if one is None or two is None or one[0] is not two[0]:
            return
        one[1].pair, two[1].pair = two[1].uniqueid, one[1].uniqueid
        if one[1].role is LegRole.CALLER:
            two[1].role = LegRole.CALLER

    def _on_caller_id(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        found = self._leg(f, now, wall)
        if found is not None and found[1].role is LegRole.CALLER and found[0].caller_number is None:
            found[0].caller_number = _valid(f.get("CallerIDNum"), _PHONE)

    def _on_varset(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        variable = f.get("Variable", "").lstrip("_")
        if variable not in _CALL_FIELDS and variable not in _RECORDING_VARIABLES:
            return
        found = self._leg(f, now, wall)
        if found is None:
            return
        call, leg = found
        if variable in _CALL_FIELDS:
            self._set_field(call, variable, f.get("Value"))
        else:
            self._recording(call, leg, f.get("Value"))

    def _on_newexten(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        if f.get("Application") != "MixMonitor":
            return
        found = self._leg(f, now, wall)
        if found is not None:
            self._recording(found[0], found[1], f.get("AppData", "").partition(",")[0].strip())

    def _on_queue_caller_join(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        queue = _valid(f.get("Queue"), _QUEUE)
        found = self._leg(f, now, wall)
        if queue is None or found is None:
            return
        call, leg = found
        call.citizen = True
        if call.caller_number is None and leg.role is not LegRole.CONSULT:
            call.caller_number = _valid(f.get("CallerIDNum"), _PHONE)
        working = self._active_seat_party(call)
        consult = leg.role is LegRole.CONSULT or (leg.role is not LegRole.CALLER and working is not None)
        if consult:
            self._mark_role(call, leg, LegRole.CONSULT)
        elif leg.role is LegRole.OTHER:
            self._mark_role(call, leg, LegRole.CALLER)
        for earlier in call.queues:
            if earlier.leg == leg.uniqueid and earlier.result is QueueResult.TIMEOUT:
                earlier.result = QueueResult.OVERFLOWED
        figures = self._queue(queue)
        figures.offered += 1
        visit = QueueVisit(
            queue, leg.uniqueid, wall, now, consult=consult, position=_int(f.get("Position")) or None
        )
        call.queues.append(visit)
        figures.waiting[leg.uniqueid] = visit
        if self.stale:
            self._resync_entries.add((queue, leg.uniqueid))  # newer than any snapshot in flight
        if consult:
            self._handover(call, self._consult_mode(call), wall, TargetKind.QUEUE, queue)
        else:
            self._settle_unanswered(call, leg)
            with_seat = [p for p in call.parties if p.active and p.via_leg in (leg.uniqueid, leg.pair)]
            handover = self._open_handover(call)
            if with_seat or (handover is not None and handover.mode is HandoverMode.BLIND):
                # Queued again while with a seat: a Redirect (no transfer event); or the queue a
                # pending blind transfer named. Back in a queue after an unanswered one: the return.
                for party in with_seat:
                    self._end_party(call, party, now, wall)
                self._handover(call, HandoverMode.BLIND, wall, TargetKind.QUEUE, queue)
        self._sync_clocks(call, now)

    def _on_queue_caller_abandon(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        figures = self.queues.get(f.get("Queue", ""))
        visit = figures.waiting.get(f.get("Uniqueid", "")) if figures else None
        if figures is not None and visit is not None and visit.result is None:
            visit.result = QueueResult.ABANDONED
            figures.abandoned += 1

    def _on_queue_caller_leave(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        figures = self.queues.get(f.get("Queue", ""))
        visit = figures.waiting.get(f.get("Uniqueid", "")) if figures else None
        call = self._leg_call.get(f.get("Uniqueid", ""))
        if visit is None or call is None:
            return
        # Leave comes before AgentConnect: "timeout" is provisional until an answer says otherwise.
        self._leave_queue(visit, now, wall, QueueResult.TIMEOUT)
        self._sync_clocks(call, now)

    def _offer(self, f: dict[str, str], now: float, wall: dt.datetime) -> tuple[Call, Leg, Party] | None:
        """The seat party an AgentCalled/AgentConnect is about, created on first sight."""
        interface = f.get("Interface")
        found = self._leg(f, now, wall)
        target = self._leg(f, now, wall, "Dest")
        if not interface or found is None or target is None or target[0] is not found[0]:
            return None
        call, via = found
        seat_leg = target[1]
        party = self._party_of_leg.get(seat_leg.uniqueid)
        if party is not None:
            return call, via, party
        seat = self._seat(interface, f.get("MemberName"), now, wall)
        self._mark_role(call, seat_leg, LegRole.SEAT)
        party = self._add_party(
            call, PartyKind.SEAT, seat.seat_id, _valid(f.get("Queue"), _QUEUE), wall, seat_leg, via
        )
        seat.ringing_calls.add(call.call_id)
        self._refresh_seat(seat, now, wall)
        return call, via, party

    def _on_agent_called(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        offered = self._offer(f, now, wall)
        if offered is not None:
            self._sync_clocks(offered[0], now)

    def _on_agent_ring_no_answer(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        party = self._party_of_leg.get(f.get("DestUniqueid", ""))
        call = self._leg_call.get(f.get("DestUniqueid", ""))
        if party is not None and call is not None and party.ringing:
            self._end_party(call, party, now, wall)
            self._sync_clocks(call, now)

    def _on_agent_connect(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        offered = self._offer(f, now, wall)
        if offered is None or offered[2].answered_at is not None or offered[2].ended_at is not None:
            return
        call, via, party = offered
        self._seat_answered(call, party, now, wall)
        visit = next(
            (v for v in reversed(call.queues) if v.leg == via.uniqueid and v.queue == party.queue), None
        )
        if visit is not None and visit.result in (None, QueueResult.TIMEOUT):
            self._count_answered(visit, now, wall)
        handover = self._open_handover(call)
        if handover is not None and handover.mode is HandoverMode.BLIND and handover.target == party.queue:
            handover.outcome = HandoverOutcome.COMPLETED
        self._sync_clocks(call, now)

    def _count_answered(self, visit: QueueVisit, now: float, wall: dt.datetime) -> None:
        self._leave_queue(visit, now, wall, QueueResult.ANSWERED)
        visit.result = QueueResult.ANSWERED
        figures = self._queue(visit.queue)
        figures.answered += 1
        wait = visit.wait_s(now)
        figures.wait_answered_s += wait
        if wait <= figures.service_level_s:
            figures.answered_within_sl += 1

    def _seat_answered(self, call: Call, party: Party, now: float, wall: dt.datetime) -> None:
        party.answered_at = wall
        call.answered_at = call.answered_at or wall
        seat = self.seats.get(party.party)
        if seat is not None:
            seat.ringing_calls.discard(call.call_id)
            seat.active_calls.add(call.call_id)
            seat.calls_taken += 1
            seat.wrap_up_until = None
            self._wrapping.discard(seat.seat_id)
            self._refresh_seat(seat, now, wall)

    def _on_hold(self, f: dict[str, str], message: Message, now: float, wall: dt.datetime) -> None:
        call = self._leg_call.get(f.get("Uniqueid", ""))
        if call is not None:
            call.legs[f["Uniqueid"]].on_hold = message.event == "Hold"
            self._sync_clocks(call, now)

    def _on_blind_transfer(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        transferer = f.get("TransfererUniqueid", "")
        call = self._leg_call.get(f.get("TransfereeUniqueid", "")) or self._leg_call.get(transferer)
        if call is None:
            return
        handover = self._handover(call, HandoverMode.BLIND, wall, None, None)
        handover.target = f"{f.get('Extension', '')}@{f.get('Context', '')}"
        if f.get("Result") != "Success":
            handover.outcome = HandoverOutcome.FAILED
            return
        party = self._party_of_leg.get(transferer)
        if party is not None:
            self._end_party(call, party, now, wall)
        self._sync_clocks(call, now)

    def _on_attended_transfer(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        transferer = f.get("OrigTransfererUniqueid", "")
        call = self._leg_call.get(f.get("TransfereeUniqueid", "")) or self._leg_call.get(transferer)
        if call is None:
            return
        target_leg = f.get("TransferTargetUniqueid", "")
        target = call.legs.get(target_leg)
        reached = next(
            (p for p in call.parties if target is not None and p.via_leg in (target_leg, target.pair)), None
        )
        name: str | None = reached.party if reached is not None else f.get("TransferTargetExten") or None
        kind = TargetKind.SEAT if reached is not None else TargetKind.EXTERNAL
        handover = self._handover(call, HandoverMode.ATTENDED, wall, kind, name)
        if f.get("Result") != "Success":
            handover.outcome = HandoverOutcome.FAILED
            return
        handover.outcome = HandoverOutcome.COMPLETED
        party = self._party_of_leg.get(transferer)
        if party is not None:
            self._end_party(call, party, now, wall)
        self._sync_clocks(call, now)

    def _on_dial_begin(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        """An outside number dialled from the call (emergency linkage, a department)."""
        source = self._leg_call.get(f.get("Uniqueid", ""))
        target = self._leg(f, now, wall, "Dest")
        if source is None or target is None or target[0] is not source or not source.citizen:
            return
        call, leg = target
        source_leg = source.legs[f["Uniqueid"]]
        if leg.role is not LegRole.OTHER:
            return  # queue members are SEAT legs already (AgentCalled comes first)
        seat_party = self._party_of_leg.get(source_leg.uniqueid) or self._party_of_leg.get(
            source_leg.pair or ""
        )
        if source_leg.role is LegRole.SEAT and seat_party is not None:
            # A seat's phone dialled by its Local member channel: the same party, its own leg.
            self._mark_role(call, leg, LegRole.SEAT)
            self._party_of_leg[leg.uniqueid] = seat_party
            return
        if source_leg.role not in (LegRole.CALLER, LegRole.CONSULT):
            return
        self._settle_unanswered(call, source_leg)
        seat = self._seat_of_channel(leg.channel)
        if seat is not None:
            # A seat dialled straight from the caller (hotline-return): a seat party with no queue.
            self._mark_role(call, leg, LegRole.SEAT)
            self._add_party(call, PartyKind.SEAT, seat.seat_id, None, wall, leg, source_leg)
            seat.ringing_calls.add(call.call_id)
            self._refresh_seat(seat, now, wall)
            self._sync_clocks(call, now)
            return
        # Dial(PJSIP/110@carrier-trunk) reports "PJSIP/110@carrier-trunk" or "110@carrier-trunk".
        dialled = f.get("DialString", "")
        resource = dialled.partition("/")[2] if "/" in dialled.partition("@")[0] else dialled
        number = resource.partition("@")[0] or leg.exten
        self._mark_role(call, leg, LegRole.EXTERNAL)
        self._add_party(call, PartyKind.EXTERNAL, number, None, wall, leg, source_leg)
        self._sync_clocks(call, now)

    def _on_dial_end(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        party = self._party_of_leg.get(f.get("DestUniqueid", ""))
        call = self._leg_call.get(f.get("DestUniqueid", ""))
        if party is None or call is None or not party.ringing:
            return
        status = f.get("DialStatus", "")
        if party.kind is PartyKind.SEAT:
            if party.queue is None:  # queue members are answered by AgentConnect
                if status == "ANSWER":
                    self._seat_answered(call, party, now, wall)
                else:
                    self._end_party(call, party, now, wall)
                self._sync_clocks(call, now)
            return
        handover = self._open_handover(call)
        if status == "ANSWER":
            party.answered_at = wall
            call.answered_at = call.answered_at or wall
            if handover is not None and handover.target == party.party:
                handover.outcome = HandoverOutcome.COMPLETED
        else:
            self._end_party(call, party, now, wall)
            if handover is not None and handover.target == party.party:
                handover.outcome = _DIAL_FAILED.get(status, HandoverOutcome.FAILED)
        self._sync_clocks(call, now)

    def _on_confbridge_join(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        conference = f.get("Conference")
        found = self._leg(f, now, wall)
        if not conference or found is None:
            return
        call, leg = found
        if call.citizen and leg.role in (LegRole.CALLER, LegRole.SEAT, LegRole.CONSULT):
            leg.conference = conference
            if self._conferences.setdefault(conference, call) is not call:
                return
            if leg.role is LegRole.CALLER:
                self._handover(call, HandoverMode.THREEWAY, wall, None, None)
            elif leg.role is LegRole.CONSULT and self._consult_mode(call) is HandoverMode.THREEWAY:
                # The target's leg (joined by its HotlineHandover) is in: the three-way stands.
                handover = self._handover(call, HandoverMode.THREEWAY, wall, None, None)
                handover.outcome = HandoverOutcome.COMPLETED
            return
        owner = self._conferences.get(conference)
        if owner is None or (owner is call and leg.role is not LegRole.OTHER):
            return
        seat = self._seat_of_channel(leg.channel)
        number = f.get("CallerIDNum") if seat is None else None
        party_id = seat.seat_id if seat is not None else (leg.exten or _valid(number, _PHONE) or "unknown")
        self._adopt(owner, leg, LegRole.SEAT if seat is not None else LegRole.EXTERNAL)
        leg.conference = conference
        kind = PartyKind.SEAT if seat is not None else PartyKind.EXTERNAL
        self._add_party(owner, kind, party_id, None, wall, leg, None, answered=True)
        if seat is not None:
            seat.active_calls.add(owner.call_id)
            seat.calls_taken += 1
            self._refresh_seat(seat, now, wall)
        if seat is not None:
            target_kind = TargetKind.SEAT
        elif party_id in self.emergency_numbers:
            target_kind = TargetKind.EMERGENCY
        else:
            target_kind = TargetKind.EXTERNAL
        handover = self._handover(owner, HandoverMode.THREEWAY, wall, target_kind, party_id)
        handover.outcome = HandoverOutcome.COMPLETED
        if target_kind is TargetKind.EMERGENCY:
            self._outputs.append(CallUpdate(UpdateKind.EMERGENCY_HANDOVER, owner.call_id, owner))
        self._sync_clocks(owner, now)

    def _on_confbridge_leave(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        uniqueid = f.get("Uniqueid", "")
        call = self._leg_call.get(uniqueid)
        party = self._party_of_leg.get(uniqueid)
        if call is not None:
            call.legs[uniqueid].conference = None
            if party is not None:
                self._end_party(call, party, now, wall)
            self._sync_clocks(call, now)

    def _on_confbridge_end(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        self._conferences.pop(f.get("Conference", ""), None)

    def _on_hangup(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        uniqueid = f.get("Uniqueid", "")
        call = self._leg_call.get(uniqueid)
        if call is not None:
            self._leg_gone(call, call.legs[uniqueid], now, wall)
        elif uniqueid:
            # A leg never seen (its Newchannel was missed) hung up: the snapshot a resync is about to
            # apply may have been taken before, and must not bring it back as a live call.
            self._forget(self._gone_legs, uniqueid)

    def _on_member(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        """QueueMemberAdded/Status/Pause/Penalty/Ringinuse, and QueueMember from QueueStatus."""
        queue = _valid(f.get("Queue"), _QUEUE)
        interface = f.get("Interface") or f.get("Location")
        if queue is None or not interface:
            return
        seat = self._seat(interface, f.get("MemberName") or f.get("Name"), now, wall)
        state_interface = f.get("StateInterface")
        if state_interface:
            self._seat_by_device.setdefault(_interface_device(state_interface), seat.seat_id)
        membership = seat.memberships.get(queue)
        if membership is None:
            membership = seat.memberships[queue] = Membership(queue)
            self._queue(queue)
        membership.seen_in_resync = True
        membership.penalty = _int(f.get("Penalty"), membership.penalty)
        if "Membership" in f:
            membership.dynamic = f["Membership"] == "dynamic"
        membership.wrapup_s = _int(f.get("Wrapuptime"), membership.wrapup_s)
        if "Paused" in f:
            membership.paused = f["Paused"] == "1"
            reason = f.get("PausedReason") or None
            membership.paused_reason = reason[:_MAX_TEXT] if membership.paused and reason else None
        with contextlib.suppress(ValueError):  # a status this Asterisk does not document: keep the last one
            seat.device_status = DeviceStatus(_int(f.get("Status"), seat.device_status))
        self._refresh_seat(seat, now, wall)

    def _on_member_removed(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        interface = f.get("Interface", "")
        seat = self.seats.get(seat_id_of(interface)) if interface else None
        if seat is not None and seat.memberships.pop(f.get("Queue", ""), None) is not None:
            self._refresh_seat(seat, now, wall)

    def _on_user_event(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        kind = f.get("UserEvent")
        if kind == "HotlineSurvey":
            self._survey(f, wall)
            return
        call = self._leg_call.get(f.get("Uniqueid", "")) or self._groups.get(f.get("Linkedid", ""))
        if call is None:
            return  # UserEvent text is untrusted: it may only add to a call that exists
        leg = call.legs.get(f.get("Uniqueid", ""))
        if kind == "HotlineIntake":
            for header, variable in _INTAKE_FIELDS.items():
                if header in f:
                    self._set_field(call, variable, f[header])
            if "Category" in f:
                self._set_field(call, "CATEGORY_CODE", f["Category"])
            self._recording(call, leg, f.get("Recording"))
        elif kind == "HotlineCallback":
            self._callback(call, f, wall)
        elif kind == "HotlineHandover":
            threeway = bool(f.get("Call"))  # only hotline-threeway names the call it joins
            if threeway:
                call = self._join(call, f["Call"])
            self._dialplan_handover(call, leg, f, now, wall, threeway=threeway)

    def _survey(self, f: dict[str, str], wall: dt.datetime) -> None:
        result = _valid(f.get("Result"), _TOKEN)
        linkedid = f.get("Linkedid", "")
        if result is None:
            return
        survey = Survey(result, _valid(f.get("Key"), _DTMF_KEY), wall)
        call = self._groups.get(linkedid)
        if call is not None and call.citizen:
            call.survey = survey
        elif linkedid in self._ended:
            self._outputs.append(CallUpdate(UpdateKind.LATE_SURVEY, linkedid, None, survey))

    def _callback(self, call: Call, f: dict[str, str], wall: dt.datetime) -> None:
        number = _valid(f.get("CallbackNumber"), _PHONE) or call.caller_number
        joined = call.queue_joined_at or call.arrived_at
        epoch = _valid(f.get("JoinTime"), _EPOCH)
        if epoch is not None:
            joined = dt.datetime.fromtimestamp(int(epoch), dt.UTC)
        call.callback = CallbackRequest(number, _valid(f.get("Queue"), _QUEUE), wall, joined)
        visit = next((v for v in reversed(call.queues) if not v.consult), None)
        if visit is not None and visit.result in (None, QueueResult.TIMEOUT):
            visit.result = QueueResult.CALLBACK_REQUESTED
        self._outputs.append(CallUpdate(UpdateKind.CALLBACK_REQUESTED, call.call_id, call))

    def _dialplan_handover(
        self, call: Call, leg: Leg | None, f: dict[str, str], now: float, wall: dt.datetime, *, threeway: bool
    ) -> None:
        """HotlineHandover: the dialplan's hand-over context names the target and its recording."""
        target = f.get("Target", "")
        emergency = f.get("Kind") == "emergency" and target in self.emergency_numbers
        if not call.citizen or (not emergency and _valid(target, _QUEUE) is None):
            return
        attended = leg is not None and leg.role is not LegRole.CALLER
        if attended and leg is not None:
            self._mark_role(call, leg, LegRole.CONSULT)
        if threeway:  # its target may dial before the caller is in the room (no open three-way yet)
            mode = HandoverMode.THREEWAY
        else:
            mode = self._consult_mode(call) if attended else HandoverMode.BLIND
        kind = TargetKind.EMERGENCY if emergency else TargetKind.QUEUE
        handover = self._handover(call, mode, wall, kind, target)
        if leg is not None and not attended:
            # The caller runs the hand-over context: whoever it was bridged with is no longer on the call.
            for party in [p for p in call.parties if p.active and p.via_leg in (leg.uniqueid, leg.pair)]:
                self._end_party(call, party, now, wall)
            self._sync_clocks(call, now)
        handover.target_kind, handover.target = kind, target
        recording = _valid(f.get("Recording"), _RECORDING)
        if recording is not None:
            handover.recording = recording
            self._recording(call, leg, recording)
        if emergency:
            self._outputs.append(CallUpdate(UpdateKind.EMERGENCY_HANDOVER, call.call_id, call))

    # --- snapshot handlers (see _SNAPSHOT_HANDLERS) -------------------------------------------

    def _on_snapshot_channel(
        self, f: dict[str, str], message: Message, now: float, wall: dt.datetime
    ) -> None:
        """CoreShowChannel / Status: a channel that is up right now."""
        found = self._leg(f, now, wall)
        if found is None:
            return
        call, leg = found
        leg.seen_in_resync = True
        age = _duration_s(f.get("Duration") or f.get("Seconds"))
        application = f.get("Application")
        bridge = f.get("BridgeID") or f.get("BridgeId")  # Status / CoreShowChannel
        if application == "Queue" and bridge and leg.role in (LegRole.CALLER, LegRole.OTHER):
            queue = _valid((f.get("Data") or f.get("ApplicationData") or "").partition(",")[0], _QUEUE)
            if queue is not None:
                self._resync_bridged[bridge] = (queue, call, leg, now - age)
        if leg.role is LegRole.CALLER:
            self._caller_facts(call, f)
            if not call.parties and not call.queues:
                call.arrived_mono = min(call.arrived_mono, now - age)
        for assignment in message.getall("Variable"):
            name, _, value = assignment.partition("=")
            if name.lstrip("_") in _CALL_FIELDS:
                self._set_field(call, name.lstrip("_"), value)
        seat = self._seat_of_channel(leg.channel) if application == "AppQueue" else None
        if seat is not None and bridge:
            self._resync_seat_legs[bridge] = (leg.uniqueid, now - age)
        if seat is not None and leg.uniqueid not in self._party_of_leg:
            # A seat talking to a caller since before the outage: its talk time restarts from the leg's age.
            self._mark_role(call, leg, LegRole.SEAT)
            party = self._add_party(call, PartyKind.SEAT, seat.seat_id, None, wall, leg, None, answered=True)
            party.talk.run(True, now - age)
            seat.active_calls.add(call.call_id)
            self._refresh_seat(seat, now, wall)

    def _on_snapshot_entry(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        """QueueEntry: a caller waiting in a queue right now."""
        queue = _valid(f.get("Queue"), _QUEUE)
        found = self._leg(f, now, wall)
        if queue is None or found is None:
            return
        call, leg = found
        call.citizen = True
        leg.seen_in_resync = True
        self._resync_entries.add((queue, leg.uniqueid))
        figures = self._queue(queue)
        if any(v.queue == queue and v.leg == leg.uniqueid for v in call.queues):
            return  # known, or answered/abandoned by a live event since the snapshot was taken
        wait = float(_int(f.get("Wait")))
        if leg.role is LegRole.OTHER:
            self._mark_role(call, leg, LegRole.CALLER)
        if call.caller_number is None:
            call.caller_number = _valid(f.get("CallerIDNum"), _PHONE)
        visit = QueueVisit(queue, leg.uniqueid, wall - dt.timedelta(seconds=wait), now - wait)
        call.queues.append(visit)
        figures.waiting[leg.uniqueid] = visit
        figures.offered += 1
        self._sync_clocks(call, now)

    def _on_snapshot_params(self, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
        queue = _valid(f.get("Queue"), _QUEUE)
        if queue is not None:
            self._queue(queue)


_LIVE_HANDLERS = {
    "Newchannel": "_on_newchannel",
    "LocalBridge": "_on_local_bridge",
    "NewCallerid": "_on_caller_id",
    "VarSet": "_on_varset",
    "Newexten": "_on_newexten",
    "QueueCallerJoin": "_on_queue_caller_join",
    "QueueCallerAbandon": "_on_queue_caller_abandon",
    "QueueCallerLeave": "_on_queue_caller_leave",
    "AgentCalled": "_on_agent_called",
    "AgentRingNoAnswer": "_on_agent_ring_no_answer",
    "AgentConnect": "_on_agent_connect",
    "Hold": "_on_hold",
    "Unhold": "_on_hold",
    "BlindTransfer": "_on_blind_transfer",
    "AttendedTransfer": "_on_attended_transfer",
    "DialBegin": "_on_dial_begin",
    "DialEnd": "_on_dial_end",
    "ConfbridgeJoin": "_on_confbridge_join",
    "ConfbridgeLeave": "_on_confbridge_leave",
    "ConfbridgeEnd": "_on_confbridge_end",
    "Hangup": "_on_hangup",
    "QueueMemberAdded": "_on_member",
    "QueueMemberStatus": "_on_member",
    "QueueMemberPause": "_on_member",
    "QueueMemberPenalty": "_on_member",
    "QueueMemberRinginuse": "_on_member",
    "QueueMemberRemoved": "_on_member_removed",
    "UserEvent": "_on_user_event",
}
_SNAPSHOT_HANDLERS = {
    "CoreShowChannel": "_on_snapshot_channel",
    "Status": "_on_snapshot_channel",
    "QueueEntry": "_on_snapshot_entry",
    "QueueMember": "_on_member",
    "QueueParams": "_on_snapshot_params",
}
_SNAPSHOT_ORDER = {"QueueParams": 0, "QueueMember": 0, "CoreShowChannel": 1, "Status": 1, "QueueEntry": 2}
# Events the tracker consumes live (the manager.conf eventfilter must let them through).
HANDLED_EVENTS = frozenset(_LIVE_HANDLERS)
# List items it reads during a resync (answers to actions, which eventfilters do not touch).
SNAPSHOT_EVENTS = frozenset(_SNAPSHOT_HANDLERS)
