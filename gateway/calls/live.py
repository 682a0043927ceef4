"""Live events of a call's own life: channels, variables, queues, seats ringing and answering,
hold, hangup, and the dialplan's UserEvents (intake, callback, survey; a hand-over goes on to
``handovers``).
"""

from __future__ import annotations

import datetime as dt

from gateway.ami.protocol import Message
from gateway.calls.handovers import dialplan_handover
from gateway.calls.legs import (
    active_seat_party,
    add_call_recording,
    add_party,
    consult_mode,
    count_answered,
    end_party,
    forget,
    handover_for,
    join,
    leave_queue,
    leg_gone,
    leg_of,
    mark_role,
    open_handover,
    seat_answered,
    set_field,
    settle_unanswered,
    sync_clocks,
)
from gateway.calls.model import Call, CallbackRequest, Leg, LegRole, Party, QueueVisit, Survey
from gateway.calls.seats import queue_figures, refresh_seat, seat_for
from gateway.calls.state import (
    CALL_FIELDS,
    EPOCH,
    TOKEN,
    CallUpdate,
    Handlers,
    TrackerState,
    UpdateKind,
    as_int,
    valid,
)
from gateway.contract import (
    VAR_CATEGORY,
    VAR_DEPARTMENT,
    VAR_LEGACY_LINE,
    VAR_MERGE_MODE,
    VAR_MIXMONITOR_FILENAME,
    VAR_RECORDING,
    Callback,
    Intake,
)
from gateway.contract import Handover as HandoverEvent
from gateway.contract import Survey as SurveyEvent
from gateway.vocabulary import (
    DTMF_KEY_RE,
    PHONE_RE,
    QUEUE_RE,
    HandoverMode,
    HandoverOutcome,
    PartyKind,
    QueueResult,
    TargetKind,
)

# The call facts the HotlineIntake UserEvent repeats as headers.
_INTAKE_FIELDS = {
    Intake.LEGACY_LINE: VAR_LEGACY_LINE,
    Intake.MERGE_MODE: VAR_MERGE_MODE,
    Intake.DEPARTMENT: VAR_DEPARTMENT,
    Intake.CATEGORY: VAR_CATEGORY,
}
_RECORDING_VARIABLES = frozenset({VAR_RECORDING, VAR_MIXMONITOR_FILENAME})
HANDLERS = Handlers()


@HANDLERS.on("Newchannel")
def _on_newchannel(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    leg_of(st, f, now, wall)


@HANDLERS.on("LocalBridge")
def _on_local_bridge(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    one, two = leg_of(st, f, now, wall, "LocalOne"), leg_of(st, f, now, wall, "LocalTwo")
    if one is None or two is None or one[0] is not two[0]:
        return
    one[1].pair, two[1].pair = two[1].uniqueid, one[1].uniqueid
    if one[1].role is LegRole.CALLER:
        two[1].role = LegRole.CALLER


@HANDLERS.on("NewCallerid")
def _on_caller_id(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    found = leg_of(st, f, now, wall)
    if found is not None and found[1].role is LegRole.CALLER and found[0].caller_number is None:
        found[0].caller_number = valid(f.get("CallerIDNum"), PHONE_RE)


@HANDLERS.on("VarSet")
def _on_varset(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    variable = f.get("Variable", "").lstrip("_")
    if variable not in CALL_FIELDS and variable not in _RECORDING_VARIABLES:
        return
    found = leg_of(st, f, now, wall)
    if found is None:
        return
    call, leg = found
    if variable in CALL_FIELDS:
        set_field(st, call, variable, f.get("Value"))
    else:
        add_call_recording(st, call, leg, f.get("Value"))


@HANDLERS.on("Newexten")
def _on_newexten(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    if f.get("Application") != "MixMonitor":
        return
    found = leg_of(st, f, now, wall)
    if found is not None:
        add_call_recording(st, found[0], found[1], f.get("AppData", "").partition(",")[0].strip())


@HANDLERS.on("QueueCallerJoin")
def _on_queue_caller_join(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    queue = valid(f.get("Queue"), QUEUE_RE)
    found = leg_of(st, f, now, wall)
    if queue is None or found is None:
        return
    call, leg = found
    call.citizen = True
    if call.caller_number is None and leg.role is not LegRole.CONSULT:
        call.caller_number = valid(f.get("CallerIDNum"), PHONE_RE)
    working = active_seat_party(st, call)
    consult = leg.role is LegRole.CONSULT or (leg.role is not LegRole.CALLER and working is not None)
    if consult:
        mark_role(st, call, leg, LegRole.CONSULT)
    elif leg.role is LegRole.OTHER:
        mark_role(st, call, leg, LegRole.CALLER)
    for earlier in call.queues:
        if earlier.leg == leg.uniqueid and earlier.result is QueueResult.TIMEOUT:
            earlier.result = QueueResult.OVERFLOWED
    figures = queue_figures(st, queue)
    figures.offered += 1
    visit = QueueVisit(
        queue, leg.uniqueid, wall, now, consult=consult, position=as_int(f.get("Position")) or None
    )
    call.queues.append(visit)
    figures.waiting[leg.uniqueid] = visit
    if st.stale:
        st.resync_entries.add((queue, leg.uniqueid))  # newer than any snapshot in flight
    if consult:
        handover_for(st, call, consult_mode(st, call), wall, TargetKind.QUEUE, queue)
    else:
        settle_unanswered(st, call, leg)
        with_seat = [p for p in call.parties if p.active and p.via_leg in (leg.uniqueid, leg.pair)]
        handover = open_handover(st, call)
        if with_seat or (handover is not None and handover.mode is HandoverMode.BLIND):
            # Queued again while with a seat: a Redirect (no transfer event); or the queue a
            # pending blind transfer named. Back in a queue after an unanswered one: the return.
            for party in with_seat:
                end_party(st, call, party, now, wall)
            handover_for(st, call, HandoverMode.BLIND, wall, TargetKind.QUEUE, queue)
    sync_clocks(st, call, now)


@HANDLERS.on("QueueCallerAbandon")
def _on_queue_caller_abandon(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    # A hang-up or a Queue() timeout: decided once the caller has left (``decide_abandon``).
    figures = st.queues.get(f.get("Queue", ""))
    visit = figures.waiting.get(f.get("Uniqueid", "")) if figures else None
    if visit is not None and visit.result is None:
        visit.abandon_reported = True


@HANDLERS.on("QueueCallerLeave")
def _on_queue_caller_leave(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    figures = st.queues.get(f.get("Queue", ""))
    visit = figures.waiting.get(f.get("Uniqueid", "")) if figures else None
    call = st.leg_call.get(f.get("Uniqueid", ""))
    if visit is None or call is None:
        return
    if visit.abandon_reported and visit.result is None:
        leave_queue(st, visit, now, wall, None)
        st.undecided[visit.leg] = visit
    else:
        # Leave comes before AgentConnect: "timeout" is provisional until an answer says otherwise.
        leave_queue(st, visit, now, wall, QueueResult.TIMEOUT)
    sync_clocks(st, call, now)


def offer(
    st: TrackerState, f: dict[str, str], now: float, wall: dt.datetime
) -> tuple[Call, Leg, Party] | None:
    """The seat party an AgentCalled/AgentConnect is about, created on first sight."""
    interface = f.get("Interface")
    found = leg_of(st, f, now, wall)
    target = leg_of(st, f, now, wall, "Dest")
    if not interface or found is None or target is None or target[0] is not found[0]:
        return None
    call, via = found
    seat_leg = target[1]
    party = st.party_of_leg.get(seat_leg.uniqueid)
    if party is not None:
        return call, via, party
    seat = seat_for(st, interface, f.get("MemberName"), now, wall)
    mark_role(st, call, seat_leg, LegRole.SEAT)
    party = add_party(
        st, call, PartyKind.SEAT, seat.seat_id, valid(f.get("Queue"), QUEUE_RE), wall, seat_leg, via
    )
    seat.ringing_calls.add(call.call_id)
    refresh_seat(st, seat, now, wall)
    return call, via, party


@HANDLERS.on("AgentCalled")
def _on_agent_called(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    offered = offer(st, f, now, wall)
    if offered is not None:
        sync_clocks(st, offered[0], now)


@HANDLERS.on("AgentRingNoAnswer")
def _on_agent_ring_no_answer(
    st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime
) -> None:
    party = st.party_of_leg.get(f.get("DestUniqueid", ""))
    call = st.leg_call.get(f.get("DestUniqueid", ""))
    if party is not None and call is not None and party.ringing:
        end_party(st, call, party, now, wall)
        sync_clocks(st, call, now)


@HANDLERS.on("AgentConnect")
def _on_agent_connect(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    offered = offer(st, f, now, wall)
    if offered is None or offered[2].answered_at is not None or offered[2].ended_at is not None:
        return
    call, via, party = offered
    seat_answered(st, call, party, now, wall)
    visit = next((v for v in reversed(call.queues) if v.leg == via.uniqueid and v.queue == party.queue), None)
    if visit is not None and visit.result in (None, QueueResult.TIMEOUT):
        count_answered(st, visit, now, wall)
    handover = open_handover(st, call)
    if handover is not None and handover.mode is HandoverMode.BLIND and handover.target == party.queue:
        handover.outcome = HandoverOutcome.COMPLETED
    sync_clocks(st, call, now)


@HANDLERS.on("Hold", "Unhold")
def _on_hold(st: TrackerState, f: dict[str, str], message: Message, now: float, wall: dt.datetime) -> None:
    call = st.leg_call.get(f.get("Uniqueid", ""))
    if call is not None:
        call.legs[f["Uniqueid"]].on_hold = message.event == "Hold"
        sync_clocks(st, call, now)


@HANDLERS.on("Hangup")
def _on_hangup(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    uniqueid = f.get("Uniqueid", "")
    call = st.leg_call.get(uniqueid)
    if call is not None:
        leg_gone(st, call, call.legs[uniqueid], now, wall)
    elif uniqueid:
        # A leg never seen (its Newchannel was missed) hung up: the snapshot a resync is about to
        # apply may have been taken before, and must not bring it back as a live call.
        forget(st, st.gone_legs, uniqueid)


@HANDLERS.on("UserEvent")
def _on_user_event(st: TrackerState, f: dict[str, str], _: Message, now: float, wall: dt.datetime) -> None:
    kind = f.get("UserEvent")
    if kind == SurveyEvent.NAME:
        record_survey(st, f, wall)
        return
    call = st.leg_call.get(f.get("Uniqueid", "")) or st.groups.get(f.get("Linkedid", ""))
    if call is None:
        return  # UserEvent text is untrusted: it may only add to a call that exists
    leg = call.legs.get(f.get("Uniqueid", ""))
    if kind == Intake.NAME:
        for header, variable in _INTAKE_FIELDS.items():
            if header in f:
                set_field(st, call, variable, f[header])
        add_call_recording(st, call, leg, f.get(Intake.RECORDING))
    elif kind == Callback.NAME:
        record_callback(st, call, f, wall)
    elif kind == HandoverEvent.NAME:
        threeway = bool(f.get(HandoverEvent.CALL))  # only hotline-threeway names the call it joins
        if threeway:
            call = join(st, call, f[HandoverEvent.CALL])
        dialplan_handover(st, call, leg, f, now, wall, threeway=threeway)


def record_survey(st: TrackerState, f: dict[str, str], wall: dt.datetime) -> None:
    result = valid(f.get(SurveyEvent.RESULT), TOKEN)
    linkedid = f.get("Linkedid", "")
    if result is None:
        return
    survey = Survey(result, valid(f.get(SurveyEvent.KEY), DTMF_KEY_RE), wall)
    call = st.groups.get(linkedid)
    if call is not None and call.citizen:
        call.survey = survey
    elif linkedid in st.ended:
        st.outputs.append(CallUpdate(UpdateKind.LATE_SURVEY, linkedid, None, survey))


def record_callback(st: TrackerState, call: Call, f: dict[str, str], wall: dt.datetime) -> None:
    number = valid(f.get(Callback.NUMBER), PHONE_RE) or call.caller_number
    joined = call.queue_joined_at or call.arrived_at
    epoch = valid(f.get(Callback.JOIN_TIME), EPOCH)
    if epoch is not None:
        joined = dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    call.callback = CallbackRequest(number, valid(f.get(Callback.QUEUE), QUEUE_RE), wall, joined)
    visit = next((v for v in reversed(call.queues) if not v.consult), None)
    if visit is not None and visit.result in (None, QueueResult.TIMEOUT):
        visit.result = QueueResult.CALLBACK_REQUESTED
    st.outputs.append(CallUpdate(UpdateKind.CALLBACK_REQUESTED, call.call_id, call))
