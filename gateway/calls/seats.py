"""Seats and queue figures: who is logged in where, paused, ringing, talking or wrapping up.

Owns the seat records (by member interface and by the device its channels are named after),
the seat state machine (``refresh_seat``: what the tracker saw beats the device state), wrap-up
timers (``tick``: no event says a wrap-up is over) and the per-queue figures. Queue member
events and QueueStatus's QueueMember land here.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from gateway.ami.protocol import Message
from gateway.calls.model import (
    DeviceStatus,
    Membership,
    QueueFigures,
    Seat,
    SeatState,
    device_of,
    seat_id_of,
)
from gateway.calls.state import (
    MAX_TEXT,
    Handlers,
    TrackerState,
    as_int,
    interface_device,
    valid,
)
from gateway.vocabulary import QUEUE_RE

_BUSY_DEVICE = frozenset({DeviceStatus.INUSE, DeviceStatus.BUSY, DeviceStatus.RINGINUSE, DeviceStatus.ONHOLD})
_GONE_DEVICE = frozenset({DeviceStatus.INVALID, DeviceStatus.UNAVAILABLE})
HANDLERS = Handlers()


def seat_for(st: TrackerState, interface: str, name: str | None, now: float, wall: dt.datetime) -> Seat:
    seat_id = seat_id_of(interface)
    seat = st.seats.get(seat_id)
    if seat is None:
        seat = st.seats[seat_id] = Seat(seat_id, interface, name or seat_id, SeatState.LOGGED_OUT, now, wall)
        st.seat_by_device[interface_device(interface)] = seat_id
    elif name:
        seat.name = name
    return seat


def seat_of_channel(st: TrackerState, channel: str) -> Seat | None:
    seat_id = st.seat_by_device.get(device_of(channel))
    return st.seats.get(seat_id) if seat_id else None


def refresh_seat(st: TrackerState, seat: Seat, now: float, wall: dt.datetime) -> None:
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
    elif any(m.paused for m in seat.memberships.values()):
        # A pause (with its reason) beats the wrap-up it may fall in: Asterisk shows the member
        # paused, and the seat stays paused when the wrap-up is over.
        state = SeatState.PAUSED
    elif seat.wrap_up_until is not None and now < seat.wrap_up_until:
        state = SeatState.WRAP_UP
    else:
        state = SeatState.READY
    if state is not seat.state:
        seat.seconds_in[seat.state] = seat.seconds_in.get(seat.state, 0.0) + max(0.0, now - seat.state_since)
        seat.state = state
        seat.state_since = now
        seat.state_since_wall = wall


def queue_figures(st: TrackerState, name: str) -> QueueFigures:
    figures = st.queues.get(name)
    if figures is None:
        rules = st.queue_rules.get(name, st.default_rules)
        figures = st.queues[name] = QueueFigures(name, rules.service_level_s)
    return figures


def wrapup_s(st: TrackerState, seat: Seat, queue: str | None) -> int:
    membership = seat.memberships.get(queue) if queue else None
    if membership is not None and membership.wrapup_s:
        return membership.wrapup_s
    return st.queue_rules.get(queue or "", st.default_rules).wrapup_s if queue else 0


@HANDLERS.on(
    "QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause", "QueueMemberPenalty", "QueueMemberRinginuse"
)
@HANDLERS.on_snapshot("QueueMember")
def _on_member(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    """QueueMemberAdded/Status/Pause/Penalty/Ringinuse, and QueueMember from QueueStatus."""
    queue = valid(f.get("Queue"), QUEUE_RE)
    interface = f.get("Interface") or f.get("Location")
    if queue is None or not interface:
        return
    seat = seat_for(st, interface, f.get("MemberName") or f.get("Name"), now, wall)
    state_interface = f.get("StateInterface")
    if state_interface:
        st.seat_by_device.setdefault(interface_device(state_interface), seat.seat_id)
    membership = seat.memberships.get(queue)
    if membership is None:
        membership = seat.memberships[queue] = Membership(queue)
        queue_figures(st, queue)
    membership.seen_in_resync = True
    membership.penalty = as_int(f.get("Penalty"), membership.penalty)
    if "Membership" in f:
        membership.dynamic = f["Membership"] == "dynamic"
    membership.wrapup_s = as_int(f.get("Wrapuptime"), membership.wrapup_s)
    if "Paused" in f:
        membership.paused = f["Paused"] == "1"
        reason = f.get("PausedReason") or None
        membership.paused_reason = reason[:MAX_TEXT] if membership.paused and reason else None
    with contextlib.suppress(ValueError):  # a status this Asterisk does not document: keep the last one
        seat.device_status = DeviceStatus(as_int(f.get("Status"), seat.device_status))
    refresh_seat(st, seat, now, wall)


@HANDLERS.on("QueueMemberRemoved")
def _on_member_removed(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    interface = f.get("Interface", "")
    seat = st.seats.get(seat_id_of(interface)) if interface else None
    if seat is not None and seat.memberships.pop(f.get("Queue", ""), None) is not None:
        refresh_seat(st, seat, now, wall)


def tick(st: TrackerState, now: float, wall: dt.datetime) -> None:
    """Let time pass: seats whose wrap-up is over become ready (no event says so)."""
    for seat_id in [s for s in st.wrapping if (st.seats[s].wrap_up_until or 0.0) <= now]:
        st.wrapping.discard(seat_id)
        seat = st.seats[seat_id]
        seat.wrap_up_until = None
        refresh_seat(st, seat, now, wall)
