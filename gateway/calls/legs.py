"""Calls, legs and parties: the tracker's bookkeeping that every event handler builds on.

Owns grouping channels into calls (by Linkedid, adoption into a conference, the Linkedids a
three-way target joins), parties and their separate ring/talk/hold clocks, queue visits,
the hand-over records on a call, and ending legs and calls (``leg_gone``, ``finalize``,
the disposition). It handles no event itself.
"""

from __future__ import annotations

import datetime as dt

from gateway.calls.model import Call, Disposition, Handover, Leg, LegRole, Party, QueueVisit
from gateway.calls.seats import queue_figures, refresh_seat, wrapup_s
from gateway.calls.state import (
    CALL_FIELDS,
    TEXT,
    CallEnded,
    TrackerState,
    valid,
)
from gateway.contract import ENDED_CONTEXT, VAR_LEGACY_LINE
from gateway.vocabulary import (
    PHONE_RE,
    DispositionKind,
    HandoverMode,
    HandoverOutcome,
    PartyKind,
    QueueResult,
    TargetKind,
)

_LEFT_UNANSWERED = frozenset({QueueResult.TIMEOUT, QueueResult.OVERFLOWED})
# Events that end a channel: after QueueCallerAbandon they make it a real abandon.
_HANGUP_EVENTS = frozenset({"Hangup", "HangupRequest", "SoftHangupRequest", "HangupHandlerRun"})
# Events about a channel that say nothing about where its dialplan went (app_queue sets them either way).
_NO_SIGN_EVENTS = frozenset({"VarSet", "QueueCallerAbandon", "QueueCallerLeave"})


def _add_recording(recordings: list[str], name: str) -> None:
    """Keep one entry per file: the dialplan variable and MixMonitor's argument name the same file."""
    for i, known in enumerate(recordings):
        if known == name or known.endswith("/" + name):
            recordings[i] = name if len(name) < len(known) else known
            return
        if name.endswith("/" + known):
            return
    recordings.append(name)


def group_of(st: TrackerState, linkedid: str | None, now: float, wall: dt.datetime) -> Call | None:
    if not linkedid or linkedid in st.ended:
        return None
    alias = st.aliases.get(linkedid)
    if alias is not None:
        return alias
    call = st.groups.get(linkedid)
    if call is None:
        call = st.groups[linkedid] = Call(linkedid, wall, now)
    return call


def leg_of(
    st: TrackerState, f: dict[str, str], now: float, wall: dt.datetime, prefix: str = ""
) -> tuple[Call, Leg] | None:
    """The leg an event is about, created if its Newchannel was missed (e.g. after a resync).

    Any event about a leg proves it is up, so it counts as seen by a running resync; a leg
    that has hung up is never brought back by a late event or a snapshot taken before.
    """
    uniqueid = f.get(f"{prefix}Uniqueid")
    if not uniqueid or uniqueid in st.gone_legs:
        return None
    call = st.leg_call.get(uniqueid)
    if call is not None:
        leg = call.legs[uniqueid]
        leg.seen_in_resync = True
        return call, leg
    linkedid = f.get(f"{prefix}Linkedid")
    call = group_of(st, linkedid, now, wall)
    if call is None:
        return None
    role = LegRole.CALLER if uniqueid == linkedid else LegRole.OTHER
    leg = Leg(uniqueid, f.get(f"{prefix}Channel", ""), role, exten=f.get(f"{prefix}Exten", ""))
    call.legs[uniqueid] = leg
    st.leg_call[uniqueid] = call
    if role is LegRole.CALLER:
        caller_facts(st, call, f, prefix)
    return call, leg


def caller_facts(st: TrackerState, call: Call, f: dict[str, str], prefix: str = "") -> None:
    if f.get(f"{prefix}Context") in st.inbound_contexts:
        call.citizen = True
        if call.legacy_line is None:
            call.legacy_line = valid(f.get(f"{prefix}Exten"), PHONE_RE)
    if call.caller_number is None:
        call.caller_number = valid(f.get(f"{prefix}CallerIDNum"), PHONE_RE)


def set_field(st: TrackerState, call: Call, variable: str, value: str | None) -> None:
    attribute, pattern = CALL_FIELDS[variable]
    checked = valid(value, pattern)
    if checked is not None:
        setattr(call, attribute, checked)
        if variable == VAR_LEGACY_LINE:
            call.citizen = True


def add_call_recording(st: TrackerState, call: Call, leg: Leg | None, name: str | None) -> None:
    if valid(name, TEXT) is None or name is None:
        return
    _add_recording(call.recordings, name)
    if leg is None:
        return
    _add_recording(leg.recordings, name)
    for party in call.parties:
        if party.ended_at is None and leg.uniqueid in (party.leg, party.via_leg):
            _add_recording(party.recordings, name)


def adopt(st: TrackerState, call: Call, leg: Leg, role: LegRole) -> None:
    """Move a leg from its own Linkedid group into ``call`` (a conference joined into it)."""
    old = st.leg_call.get(leg.uniqueid)
    if old is not None and old is not call:
        del old.legs[leg.uniqueid]
        if not old.legs and not old.citizen:
            del st.groups[old.call_id]
    leg.role = role
    call.legs[leg.uniqueid] = leg
    st.leg_call[leg.uniqueid] = call


def join(st: TrackerState, group: Call, linkedid: str) -> Call:
    """``group`` works for the live citizen call ``linkedid`` (if any): all its channels join it."""
    owner = st.groups.get(linkedid)
    if owner is None or not owner.citizen or owner is group or group.citizen:
        return group
    st.aliases[group.call_id] = owner
    for leg in list(group.legs.values()):
        adopt(st, owner, leg, LegRole.CONSULT)
    return owner


def mark_role(st: TrackerState, call: Call, leg: Leg, role: LegRole) -> None:
    leg.role = role
    pair = call.legs.get(leg.pair) if leg.pair else None
    if pair is not None:
        pair.role = role


def add_party(
    st: TrackerState,
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
    st.party_of_leg[leg.uniqueid] = party
    return party


def active_seat_party(st: TrackerState, call: Call) -> Party | None:
    return next((p for p in reversed(call.parties) if p.active and p.kind is PartyKind.SEAT), None)


def end_party(st: TrackerState, call: Call, party: Party, now: float, wall: dt.datetime) -> None:
    if party.ended_at is not None:
        return
    party.ended_at = wall
    if party.answered_at is None:
        party.no_answer = True
    party_clocks(st, call, party, now)
    seat = st.seats.get(party.party) if party.kind is PartyKind.SEAT else None
    if seat is not None:
        seat.ringing_calls.discard(call.call_id)
        if party.answered_at is not None and not any(
            p.active and p.party == seat.seat_id for p in call.parties
        ):
            seat.active_calls.discard(call.call_id)
            wrapup = wrapup_s(st, seat, party.queue)
            if wrapup:
                seat.wrap_up_until = now + wrapup
                st.wrapping.add(seat.seat_id)
        refresh_seat(st, seat, now, wall)


def seat_answered(st: TrackerState, call: Call, party: Party, now: float, wall: dt.datetime) -> None:
    party.answered_at = wall
    call.answered_at = call.answered_at or wall
    seat = st.seats.get(party.party)
    if seat is not None:
        seat.ringing_calls.discard(call.call_id)
        seat.active_calls.add(call.call_id)
        seat.calls_taken += 1
        seat.wrap_up_until = None
        st.wrapping.discard(seat.seat_id)
        refresh_seat(st, seat, now, wall)


def party_clocks(st: TrackerState, call: Call, party: Party, now: float) -> None:
    # The seat may hold from its phone's own channel, behind the Local channel app_queue dialled.
    held = any(leg.on_hold and st.party_of_leg.get(leg.uniqueid) is party for leg in call.legs.values())
    party.ring.run(party.ringing, now)
    party.talk.run(party.active and not held, now)
    party.hold.run(party.active and held, now)


def sync_clocks(st: TrackerState, call: Call, now: float) -> None:
    connected = False
    ringing = False
    for party in call.parties:
        if party.ended_at is None:
            party_clocks(st, call, party, now)
            connected = connected or party.active
            ringing = ringing or party.ringing
    held = any(leg.on_hold for leg in call.legs.values())
    call.wait.run(any(v.left_mono is None and not v.consult for v in call.queues), now)
    call.ring.run(ringing, now)
    call.talk.run(connected and not held, now)
    call.hold.run(connected and held, now)


def leave_queue(
    st: TrackerState, visit: QueueVisit, now: float, wall: dt.datetime, result: QueueResult | None
) -> None:
    """The visit is over; ``result`` unless it has one (None: not known yet, see ``decide_abandon``)."""
    if visit.left_mono is None:
        visit.left_mono = now
        visit.left_at = wall
    if visit.result is None:
        visit.result = result
    figures = st.queues.get(visit.queue)
    if figures is not None:
        figures.waiting.pop(visit.leg, None)


def decide_abandon(st: TrackerState, event: str, f: dict[str, str], *, handled: bool) -> None:
    """Real Asterisk sends QueueCallerAbandon when the caller hangs up *and* when Queue() times out.

    A timed-out caller stays up and goes on in the dialplan (overflow queue, return to the seat,
    survey): its next event is one the tracker handles. A caller who hung up is next seen hanging
    up (or running its hang-up handler, ``hotline-ended``). Values set on the way out say neither.
    """
    visit = st.undecided.get(f.get("Uniqueid", ""))
    if visit is None or (event in _NO_SIGN_EVENTS and f.get("Context") != ENDED_CONTEXT):
        return
    if event in _HANGUP_EVENTS or f.get("Context") == ENDED_CONTEXT:
        settle_abandon(st, visit, QueueResult.ABANDONED)
    elif handled:
        settle_abandon(st, visit, QueueResult.TIMEOUT)


def settle_abandon(st: TrackerState, visit: QueueVisit, result: QueueResult) -> None:
    """A visit QueueCallerAbandon ended turns out ``result``; only a real abandon counts as one."""
    st.undecided.pop(visit.leg, None)
    if visit.result is not None:
        return
    visit.result = result
    if result is QueueResult.ABANDONED:
        queue_figures(st, visit.queue).abandoned += 1


def settle_undecided(st: TrackerState, call: Call, legs: set[str] | None, outage: bool) -> None:
    """The caller's leg (``legs``; None: every leg) is gone: an undecided visit was an abandon."""
    for visit in call.queues:
        if st.undecided.get(visit.leg) is visit and (legs is None or visit.leg in legs):
            settle_abandon(st, visit, QueueResult.PBX_OUTAGE if outage else QueueResult.ABANDONED)


def count_answered(st: TrackerState, visit: QueueVisit, now: float, wall: dt.datetime) -> None:
    """A queue visit answered by a seat: it leaves the queue and counts in its figures."""
    leave_queue(st, visit, now, wall, QueueResult.ANSWERED)
    visit.result = QueueResult.ANSWERED
    figures = queue_figures(st, visit.queue)
    figures.answered += 1
    wait = visit.wait_s(now)
    figures.wait_answered_s += wait
    if wait <= figures.service_level_s:
        figures.answered_within_sl += 1


def open_handover(st: TrackerState, call: Call) -> Handover | None:
    return next((h for h in reversed(call.handovers) if h.outcome is HandoverOutcome.PENDING), None)


def consult_mode(st: TrackerState, call: Call) -> HandoverMode:
    """A leg working toward a target: a three-way's target leg if a three-way is open, else a consult."""
    handover = open_handover(st, call)
    threeway = handover is not None and handover.mode is HandoverMode.THREEWAY
    return HandoverMode.THREEWAY if threeway else HandoverMode.CONSULT


def settle_unanswered(st: TrackerState, call: Call, leg: Leg) -> None:
    """The caller moves on after a blind hand-over's target queue let it go unanswered."""
    handover = open_handover(st, call)
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


def handover_for(
    st: TrackerState,
    call: Call,
    mode: HandoverMode,
    wall: dt.datetime,
    kind: TargetKind | None,
    target: str | None,
) -> Handover:
    """The pending hand-over of this call (filling in what it lacked) or a new one."""
    handover = open_handover(st, call)
    if handover is None or handover.mode is not mode:
        seat = active_seat_party(st, call)
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


def finish_handovers(st: TrackerState, call: Call) -> None:
    for handover in call.handovers:
        if handover.outcome is HandoverOutcome.PENDING:
            # The call ended first: during a consult that is a failed hand-over (nobody took the
            # caller back); otherwise the target never answered before the caller gave up.
            consulting = handover.mode is HandoverMode.CONSULT
            handover.outcome = HandoverOutcome.FAILED if consulting else HandoverOutcome.NO_ANSWER
        if handover.target_kind is None:
            handover.target_kind = TargetKind.EXTERNAL
        if handover.target is None:
            handover.target = "unknown"


def leg_gone(
    st: TrackerState, call: Call, leg: Leg, now: float, wall: dt.datetime, *, outage: bool = False
) -> None:
    if call.legs.pop(leg.uniqueid, None) is None:
        return  # already gone with its whole call
    st.leg_call.pop(leg.uniqueid, None)
    forget(st, st.gone_legs, leg.uniqueid)
    leg.on_hold = False
    party = st.party_of_leg.pop(leg.uniqueid, None)
    if party is not None:
        end_party(st, call, party, now, wall)
    settle_undecided(st, call, {leg.uniqueid}, outage)
    for visit in call.queues:
        if visit.leg == leg.uniqueid and visit.left_mono is None:
            leave_queue(st, visit, now, wall, QueueResult.PBX_OUTAGE if outage else QueueResult.ABANDONED)
    if leg.role is LegRole.CONSULT:
        handover = open_handover(st, call)
        if (
            handover is not None
            and handover.mode is HandoverMode.CONSULT
            and not any(other.role is LegRole.CONSULT for other in call.legs.values())
        ):
            handover.outcome = HandoverOutcome.CANCELLED
    if not call.citizen:
        if not call.legs:
            del st.groups[call.call_id]
    elif not any(other.role is LegRole.CALLER for other in call.legs.values()):
        finalize(st, call, now, wall, outage=outage)
    else:
        sync_clocks(st, call, now)


def finalize(st: TrackerState, call: Call, now: float, wall: dt.datetime, *, outage: bool = False) -> None:
    for party in call.parties:
        end_party(st, call, party, now, wall)
    settle_undecided(st, call, None, outage)
    for visit in call.queues:
        leave_queue(st, visit, now, wall, QueueResult.PBX_OUTAGE if outage else QueueResult.ABANDONED)
    for uniqueid in call.legs:
        # Legs still up belong to the ended call (a seat's Local half, an adopted specialist).
        st.leg_call.pop(uniqueid, None)
        st.party_of_leg.pop(uniqueid, None)
        forget(st, st.gone_legs, uniqueid)
    call.legs.clear()
    sync_clocks(st, call, now)
    call.ended_at = wall
    call.disposition = disposition_of(st, call, now, outage)
    finish_handovers(st, call)
    last = next((p for p in reversed(call.parties) if p.answered_at and p.kind is PartyKind.SEAT), None)
    if last is not None and last.party in st.seats:
        call.wrap_up_s = float(wrapup_s(st, st.seats[last.party], last.queue))
    for conference in [name for name, owner in st.conferences.items() if owner is call]:
        del st.conferences[conference]
    for linkedid in [name for name, owner in st.aliases.items() if owner is call]:
        del st.aliases[linkedid]
    del st.groups[call.call_id]
    forget(st, st.ended, call.call_id)
    st.outputs.append(CallEnded(call))


def forget(st: TrackerState, memory: dict[str, None], key: str) -> None:
    """Remember ``key`` as finished, keeping only the most recent ``ended_memory`` keys."""
    memory[key] = None
    if len(memory) > st.ended_memory:
        del memory[next(iter(memory))]


def disposition_of(st: TrackerState, call: Call, now: float, outage: bool) -> Disposition:
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
