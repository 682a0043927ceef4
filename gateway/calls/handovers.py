"""Hand-overs and conferences: transfers, outside numbers dialled from a call, ConfBridge rooms,
and the dialplan's HotlineHandover UserEvent.

Blind and attended transfers end the transferring seat's party at once; a leg joining a
conference owned by a call is adopted into it (a specialist, 110); what the gateway
originated for a call joins it by the ``Call`` header of its HotlineHandover.
"""

from __future__ import annotations

import datetime as dt

from gateway.ami.protocol import Message
from gateway.calls.legs import (
    add_call_recording,
    add_party,
    adopt,
    consult_mode,
    end_party,
    handover_for,
    leg_of,
    mark_role,
    open_handover,
    seat_answered,
    settle_unanswered,
    sync_clocks,
)
from gateway.calls.model import Call, Leg, LegRole
from gateway.calls.seats import refresh_seat, seat_of_channel
from gateway.calls.state import (
    TEXT,
    CallUpdate,
    Handlers,
    TrackerState,
    UpdateKind,
    valid,
)
from gateway.contract import Handover as HandoverEvent
from gateway.vocabulary import PHONE_RE, QUEUE_RE, HandoverMode, HandoverOutcome, PartyKind, TargetKind

_DIAL_FAILED = {"BUSY": HandoverOutcome.BUSY, "NOANSWER": HandoverOutcome.NO_ANSWER}
HANDLERS = Handlers()


@HANDLERS.on("BlindTransfer")
def _on_blind_transfer(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    transferer = f.get("TransfererUniqueid", "")
    call = st.leg_call.get(f.get("TransfereeUniqueid", "")) or st.leg_call.get(transferer)
    if call is None:
        return
    handover = handover_for(st, call, HandoverMode.BLIND, wall, None, None)
    handover.target = f"{f.get('Extension', '')}@{f.get('Context', '')}"
    if f.get("Result") != "Success":
        handover.outcome = HandoverOutcome.FAILED
        return
    party = st.party_of_leg.get(transferer)
    if party is not None:
        end_party(st, call, party, now, wall)
    sync_clocks(st, call, now)


@HANDLERS.on("AttendedTransfer")
def _on_attended_transfer(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    transferer = f.get("OrigTransfererUniqueid", "")
    call = st.leg_call.get(f.get("TransfereeUniqueid", "")) or st.leg_call.get(transferer)
    if call is None:
        return
    target_leg = f.get("TransferTargetUniqueid", "")
    target = call.legs.get(target_leg)
    reached = next(
        (p for p in call.parties if target is not None and p.via_leg in (target_leg, target.pair)), None
    )
    name: str | None = reached.party if reached is not None else f.get("TransferTargetExten") or None
    kind = TargetKind.SEAT if reached is not None else TargetKind.EXTERNAL
    handover = handover_for(st, call, HandoverMode.CONSULT, wall, kind, name)
    if f.get("Result") != "Success":
        handover.outcome = HandoverOutcome.FAILED
        return
    handover.outcome = HandoverOutcome.COMPLETED
    party = st.party_of_leg.get(transferer)
    if party is not None:
        end_party(st, call, party, now, wall)
    sync_clocks(st, call, now)


@HANDLERS.on("DialBegin")
def _on_dial_begin(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    """An outside number dialled from the call (emergency linkage, a department)."""
    source = st.leg_call.get(f.get("Uniqueid", ""))
    target = leg_of(st, f, now, wall, "Dest")
    if source is None or target is None or target[0] is not source or not source.citizen:
        return
    call, leg = target
    source_leg = source.legs[f["Uniqueid"]]
    if leg.role is not LegRole.OTHER:
        return  # queue members are SEAT legs already (AgentCalled comes first)
    seat_party = st.party_of_leg.get(source_leg.uniqueid) or st.party_of_leg.get(source_leg.pair or "")
    if source_leg.role is LegRole.SEAT and seat_party is not None:
        # A seat's phone dialled by its Local member channel: the same party, its own leg.
        mark_role(st, call, leg, LegRole.SEAT)
        st.party_of_leg[leg.uniqueid] = seat_party
        return
    if source_leg.role not in (LegRole.CALLER, LegRole.CONSULT):
        return
    settle_unanswered(st, call, source_leg)
    seat = seat_of_channel(st, leg.channel)
    if seat is not None:
        # A seat dialled straight from the caller (hotline-return): a seat party with no queue.
        mark_role(st, call, leg, LegRole.SEAT)
        add_party(st, call, PartyKind.SEAT, seat.seat_id, None, wall, leg, source_leg)
        seat.ringing_calls.add(call.call_id)
        refresh_seat(st, seat, now, wall)
        sync_clocks(st, call, now)
        return
    # Dial(PJSIP/110@carrier-trunk) reports "PJSIP/110@carrier-trunk" or "110@carrier-trunk".
    dialled = f.get("DialString", "")
    resource = dialled.partition("/")[2] if "/" in dialled.partition("@")[0] else dialled
    number = resource.partition("@")[0] or leg.exten
    mark_role(st, call, leg, LegRole.EXTERNAL)
    add_party(st, call, PartyKind.EXTERNAL, number, None, wall, leg, source_leg)
    sync_clocks(st, call, now)


@HANDLERS.on("DialEnd")
def _on_dial_end(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    party = st.party_of_leg.get(f.get("DestUniqueid", ""))
    call = st.leg_call.get(f.get("DestUniqueid", ""))
    if party is None or call is None or not party.ringing:
        return
    status = f.get("DialStatus", "")
    if party.kind is PartyKind.SEAT:
        if party.queue is None:  # queue members are answered by AgentConnect
            if status == "ANSWER":
                seat_answered(st, call, party, now, wall)
            else:
                end_party(st, call, party, now, wall)
            sync_clocks(st, call, now)
        return
    handover = open_handover(st, call)
    if status == "ANSWER":
        party.answered_at = wall
        call.answered_at = call.answered_at or wall
        if handover is not None and handover.target == party.party:
            handover.outcome = HandoverOutcome.COMPLETED
    else:
        end_party(st, call, party, now, wall)
        if handover is not None and handover.target == party.party:
            handover.outcome = _DIAL_FAILED.get(status, HandoverOutcome.FAILED)
    sync_clocks(st, call, now)


@HANDLERS.on("ConfbridgeJoin")
def _on_confbridge_join(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    conference = f.get("Conference")
    found = leg_of(st, f, now, wall)
    if not conference or found is None:
        return
    call, leg = found
    if call.citizen and leg.role in (LegRole.CALLER, LegRole.SEAT, LegRole.CONSULT):
        leg.conference = conference
        if st.conferences.setdefault(conference, call) is not call:
            return
        if leg.role is LegRole.CALLER:
            handover_for(st, call, HandoverMode.THREEWAY, wall, None, None)
        elif leg.role is LegRole.CONSULT and consult_mode(st, call) is HandoverMode.THREEWAY:
            # The target's leg (joined by its HotlineHandover) is in: the three-way stands.
            handover = handover_for(st, call, HandoverMode.THREEWAY, wall, None, None)
            handover.outcome = HandoverOutcome.COMPLETED
        return
    owner = st.conferences.get(conference)
    if owner is None or (owner is call and leg.role is not LegRole.OTHER):
        return
    seat = seat_of_channel(st, leg.channel)
    number = f.get("CallerIDNum") if seat is None else None
    party_id = seat.seat_id if seat is not None else (leg.exten or valid(number, PHONE_RE) or "unknown")
    adopt(st, owner, leg, LegRole.SEAT if seat is not None else LegRole.EXTERNAL)
    leg.conference = conference
    kind = PartyKind.SEAT if seat is not None else PartyKind.EXTERNAL
    add_party(st, owner, kind, party_id, None, wall, leg, None, answered=True)
    if seat is not None:
        seat.active_calls.add(owner.call_id)
        seat.calls_taken += 1
        refresh_seat(st, seat, now, wall)
    if seat is not None:
        target_kind = TargetKind.SEAT
    elif party_id in st.emergency_numbers:
        target_kind = TargetKind.EMERGENCY
    else:
        target_kind = TargetKind.EXTERNAL
    handover = handover_for(st, owner, HandoverMode.THREEWAY, wall, target_kind, party_id)
    handover.outcome = HandoverOutcome.COMPLETED
    if target_kind is TargetKind.EMERGENCY:
        st.outputs.append(CallUpdate(UpdateKind.EMERGENCY_HANDOVER, owner.call_id, owner))
    sync_clocks(st, owner, now)


@HANDLERS.on("ConfbridgeLeave")
def _on_confbridge_leave(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    uniqueid = f.get("Uniqueid", "")
    call = st.leg_call.get(uniqueid)
    party = st.party_of_leg.get(uniqueid)
    if call is not None:
        call.legs[uniqueid].conference = None
        if party is not None:
            end_party(st, call, party, now, wall)
        sync_clocks(st, call, now)


@HANDLERS.on("ConfbridgeEnd")
def _on_confbridge_end(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    st.conferences.pop(f.get("Conference", ""), None)


def dialplan_handover(
    st: TrackerState,
    call: Call,
    leg: Leg | None,
    f: dict[str, str],
    now: float,
    wall: dt.datetime,
    *,
    threeway: bool,
) -> None:
    """HotlineHandover: the dialplan's hand-over context names the target and its recording."""
    target = f.get(HandoverEvent.TARGET, "")
    emergency = f.get(HandoverEvent.KIND) == HandoverEvent.EMERGENCY and target in st.emergency_numbers
    if not call.citizen or (not emergency and valid(target, QUEUE_RE) is None):
        return
    consulting = leg is not None and leg.role is not LegRole.CALLER
    if consulting and leg is not None:
        mark_role(st, call, leg, LegRole.CONSULT)
    mode = consult_mode(st, call) if consulting else HandoverMode.BLIND
    if threeway:  # its target may dial before the caller is in the room (no open three-way yet)
        mode = HandoverMode.THREEWAY
    kind = TargetKind.EMERGENCY if emergency else TargetKind.QUEUE
    handover = handover_for(st, call, mode, wall, kind, target)
    if leg is not None and not consulting:
        # The caller runs the hand-over context: whoever it was bridged with is no longer on the call.
        for party in [p for p in call.parties if p.active and p.via_leg in (leg.uniqueid, leg.pair)]:
            end_party(st, call, party, now, wall)
        sync_clocks(st, call, now)
    handover.target_kind, handover.target = kind, target
    recording = valid(f.get(HandoverEvent.RECORDING), TEXT)
    if recording is not None:
        handover.recording = recording
        add_call_recording(st, call, leg, recording)
    if emergency:
        st.outputs.append(CallUpdate(UpdateKind.EMERGENCY_HANDOVER, call.call_id, call))
