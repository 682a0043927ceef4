"""Resync: mark everything stale, apply a snapshot (Status and QueueStatus list items), and close
what vanished while the link was down as "ended during PBX outage".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from gateway.ami.protocol import Message
from gateway.calls.legs import (
    add_party,
    caller_facts,
    count_answered,
    leave_queue,
    leg_gone,
    leg_of,
    mark_role,
    set_field,
    sync_clocks,
)
from gateway.calls.model import LegRole, QueueVisit
from gateway.calls.seats import queue_figures, refresh_seat, seat_of_channel
from gateway.calls.state import (
    CALL_FIELDS,
    Handler,
    Handlers,
    TrackerState,
    as_int,
    duration_s,
    valid,
)
from gateway.vocabulary import PHONE_RE, QUEUE_RE, PartyKind, QueueResult

# Members first (a seat must be known to recognise its channel), then channels (a QueueEntry names a
# Uniqueid but not its Linkedid), then queue entries.
_ORDER = {"QueueParams": 0, "QueueMember": 0, "CoreShowChannel": 1, "Status": 1, "QueueEntry": 2}
HANDLERS = Handlers()


def begin_resync(st: TrackerState) -> None:
    """Mark everything stale; what the snapshot does not confirm is gone at ``end_resync``."""
    st.stale = True
    st.resync_entries.clear()
    st.resync_bridged.clear()
    st.resync_seat_legs.clear()
    for call in st.groups.values():
        for leg in call.legs.values():
            leg.seen_in_resync = False
    for seat in st.seats.values():
        for membership in seat.memberships.values():
            membership.seen_in_resync = False


def end_resync(st: TrackerState, now: float, wall: dt.datetime) -> None:
    """Close what vanished while the link was down: calls end as "ended during PBX outage"."""
    _resync_answered(st, now, wall)
    for call in list(st.groups.values()):
        for leg in [leg for leg in call.legs.values() if not leg.seen_in_resync]:
            leg_gone(st, call, leg, now, wall, outage=True)
        for visit in call.queues:
            if visit.left_mono is None and (visit.queue, visit.leg) not in st.resync_entries:
                leave_queue(st, visit, now, wall, QueueResult.PBX_OUTAGE)
        if call.call_id in st.groups:
            sync_clocks(st, call, now)
    for seat in st.seats.values():
        for queue in [q for q, m in seat.memberships.items() if not m.seen_in_resync]:
            del seat.memberships[queue]
        refresh_seat(st, seat, now, wall)
    st.stale = False


@HANDLERS.on_snapshot("CoreShowChannel", "Status")
def _on_snapshot_channel(
    st: TrackerState, f: dict[str, str], message: Message, now: float, wall: dt.datetime
) -> None:
    """CoreShowChannel / Status: a channel that is up right now."""
    found = leg_of(st, f, now, wall)
    if found is None:
        return
    call, leg = found
    leg.seen_in_resync = True
    age = duration_s(f.get("Duration") or f.get("Seconds"))
    application = f.get("Application")
    bridge = f.get("BridgeID") or f.get("BridgeId")  # Status / CoreShowChannel
    if application == "Queue" and bridge and leg.role in (LegRole.CALLER, LegRole.OTHER):
        queue = valid((f.get("Data") or f.get("ApplicationData") or "").partition(",")[0], QUEUE_RE)
        if queue is not None:
            st.resync_bridged[bridge] = (queue, call, leg, now - age)
    if leg.role is LegRole.CALLER:
        caller_facts(st, call, f)
        if not call.parties and not call.queues:
            call.arrived_mono = min(call.arrived_mono, now - age)
    for assignment in message.getall("Variable"):
        name, _, value = assignment.partition("=")
        if name.lstrip("_") in CALL_FIELDS:
            set_field(st, call, name.lstrip("_"), value)
    seat = seat_of_channel(st, leg.channel) if application == "AppQueue" else None
    if seat is not None and bridge:
        st.resync_seat_legs[bridge] = (leg.uniqueid, now - age)
    if seat is not None and leg.uniqueid not in st.party_of_leg:
        # A seat talking to a caller since before the outage: its talk time restarts from the leg's age.
        mark_role(st, call, leg, LegRole.SEAT)
        party = add_party(st, call, PartyKind.SEAT, seat.seat_id, None, wall, leg, None, answered=True)
        party.talk.run(True, now - age)
        seat.active_calls.add(call.call_id)
        refresh_seat(st, seat, now, wall)


def _resync_answered(st: TrackerState, now: float, wall: dt.datetime) -> None:
    """Callers already talking to a seat are queue visits answered before the snapshot.

    QueueStatus lists only waiting callers: an answered one is a channel still in Queue()
    sharing a bridge with a seat's AppQueue leg (trace 08). It was answered about when that
    leg was created (rung); it joined at most its own channel's age ago.
    """
    for bridge, (queue, call, leg, joined) in st.resync_bridged.items():
        if call.legs.get(leg.uniqueid) is not leg or any(
            v.queue == queue and v.leg == leg.uniqueid for v in call.queues
        ):
            continue  # gone since, or known (live events, or an earlier session)
        seat_leg, answered = st.resync_seat_legs.get(bridge, ("", now))
        answered = max(joined, answered)
        call.citizen = True
        if leg.role is LegRole.OTHER:
            mark_role(st, call, leg, LegRole.CALLER)
        visit = QueueVisit(queue, leg.uniqueid, wall - dt.timedelta(seconds=now - joined), joined)
        visit.left_mono, visit.left_at = answered, wall - dt.timedelta(seconds=now - answered)
        call.queues.append(visit)
        queue_figures(st, queue).offered += 1
        count_answered(st, visit, now, wall)
        party = st.party_of_leg.get(seat_leg)
        if party is not None and party.queue is None:
            party.queue = queue
    st.resync_bridged.clear()
    st.resync_seat_legs.clear()


@HANDLERS.on_snapshot("QueueEntry")
def _on_snapshot_entry(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    """QueueEntry: a caller waiting in a queue right now."""
    queue = valid(f.get("Queue"), QUEUE_RE)
    found = leg_of(st, f, now, wall)
    if queue is None or found is None:
        return
    call, leg = found
    call.citizen = True
    leg.seen_in_resync = True
    st.resync_entries.add((queue, leg.uniqueid))
    figures = queue_figures(st, queue)
    if any(v.queue == queue and v.leg == leg.uniqueid for v in call.queues):
        return  # known, or answered/abandoned by a live event since the snapshot was taken
    wait = float(as_int(f.get("Wait")))
    if leg.role is LegRole.OTHER:
        mark_role(st, call, leg, LegRole.CALLER)
    if call.caller_number is None:
        call.caller_number = valid(f.get("CallerIDNum"), PHONE_RE)
    visit = QueueVisit(queue, leg.uniqueid, wall - dt.timedelta(seconds=wait), now - wait)
    call.queues.append(visit)
    figures.waiting[leg.uniqueid] = visit
    figures.offered += 1
    sync_clocks(st, call, now)


@HANDLERS.on_snapshot("QueueParams")
def _on_snapshot_params(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    queue = valid(f.get("Queue"), QUEUE_RE)
    if queue is not None:
        queue_figures(st, queue)


def apply_snapshot(
    st: TrackerState,
    handlers: Mapping[str, Handler],
    events: Iterable[Message],
    now: float,
    wall: dt.datetime,
) -> None:
    """The list items of CoreShowChannels, Status and QueueStatus, in any order (see ``_ORDER``)."""
    known = [(_ORDER.get(e.event or "", -1), n, e) for n, e in enumerate(events)]
    for _, _, event in sorted(item for item in known if item[0] >= 0):
        handlers[event.event or ""](st, event.as_dict(), event, now, wall)
