"""Call records from the call tracker's outputs: the thin mapping from gateway.calls to the contract.

Owns the translation only. ``CallEnded`` becomes a final record, ``CallUpdate`` an interim one
(emergency hand-over, callback requested) or, for a survey result that arrived after the call
ended, a new revision of that call's final record. Values the contract cannot carry (an
emergency number other than 110/119/120/122, a survey answer it does not know) become the nearest
honest value and are logged: a record that cannot be built is a record lost.

It keeps the last ``remember`` final records in memory, as the tracker remembers ended calls, so
a late survey result or a callback's outcome can amend its record; after a restart a survey
result is logged and dropped, while the callback service keeps its calls' records in Redis and
hands them back (``remember``). A call back that was answered is its own tracked call; when it
ends, its legs, queue visit and recordings are appended to the original call's record rather
than reported as a second work order (``expect_callback``).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from gateway.calls import model as calls
from gateway.calls.tracker import CallEnded, CallUpdate, Output, UpdateKind
from gateway.records.build import RecordBuildError, build, pending_callback, survey_result, validate
from gateway.records.model import (
    CallbackOutcome,
    CallRecord,
    EmergencyService,
    Stage,
    SurveyResult,
    WorkOrderDraft,
    revision_for,
)
from gateway.vocabulary import DispositionKind, MergeMode, PartyKind, TargetKind

log = structlog.get_logger(__name__)


E = TypeVar("E", MergeMode, SurveyResult, EmergencyService)


def _enum_value(enum: type[E], value: str | None, what: str, call_id: str) -> E | None:
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        log.warning("call_record_value_dropped", call_id=call_id, field=what, value=value)
        return None


@dataclass(frozen=True, slots=True)
class DraftSaved:
    """A seat saved the work-order draft of ``call_id``: a new revision if its final record is out."""

    call_id: str
    draft: WorkOrderDraft


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """A call back in flight: which call it answers and how many attempts it took."""

    call_id: str
    attempts: int
    at: dt.datetime


class RecordBuilder:
    def __init__(self, pbx_node: str, *, remember: int = 10_000) -> None:
        self.pbx_node = pbx_node
        self._remember = remember
        # By Linkedid, oldest first, as JSON text: a str is one object the garbage collector does
        # not track, where a record is some 25 tracked ones; 10,000 records per node made every
        # full collection of a province instance last seconds. Reading one back is rare.
        self._finals: OrderedDict[str, str] = OrderedDict()
        self._callbacks: dict[str, CallbackAttempt] = {}  # by the call back's Linkedid
        self._final_listeners: list[Callable[[CallRecord], None]] = []

    def add_final_listener(self, listener: Callable[[CallRecord], None]) -> None:
        """``listener(record)`` for every final record built (it must not block)."""
        self._final_listeners.append(listener)

    def remember(self, record: CallRecord) -> None:
        """Keep ``record`` as the latest final record of its call (e.g. restored after a restart)."""
        self._finals[record.linkedid] = record.model_dump_json()
        self._finals.move_to_end(record.linkedid)
        if len(self._finals) > self._remember:
            self._finals.popitem(last=False)

    def _final(self, call_id: str) -> CallRecord | None:
        text = self._finals.get(call_id)
        return None if text is None else CallRecord.model_validate_json(text)

    def expect_callback(self, linkedid: str, attempt: CallbackAttempt) -> None:
        """The call ``linkedid`` about to be placed calls back ``attempt.call_id``."""
        self._callbacks[linkedid] = attempt

    def forget_callback(self, linkedid: str) -> None:
        """The call back ``linkedid`` was never answered: it will not end as a tracked call."""
        self._callbacks.pop(linkedid, None)

    def records(
        self,
        outputs: Iterable[Output],
        now: float,
        drafts: Mapping[str, WorkOrderDraft] | None = None,
    ) -> list[CallRecord]:
        """Records for a batch of the tracker's outputs; ``now`` is the tracker's monotonic time.

        ``drafts``: the seats' work-order drafts of the calls that ended or were handed to
        110/119/120/122, by call id (the linkage gets what the seat wrote before handing over).
        """
        built = []
        for output in outputs:
            record = (
                self._ended(output.call, now, (drafts or {}).get(output.call.call_id))
                if isinstance(output, CallEnded)
                else self.update(output, now, (drafts or {}).get(output.call_id))
            )
            if record is not None:
                built.append(record)
        return built

    def _ended(self, call: calls.Call, now: float, draft: WorkOrderDraft | None) -> CallRecord:
        attempt = self._callbacks.pop(call.call_id, None)
        amended = self._answered_callback(call, attempt, now, draft) if attempt is not None else None
        # A call back whose original record is gone is still reported, as a call of its own.
        return amended or self.final(call, now, draft)

    def final(self, call: calls.Call, now: float, draft: WorkOrderDraft | None = None) -> CallRecord:
        if call.ended_at is None:
            raise RecordBuildError(f"call {call.call_id} has not ended; it has no final record yet")
        record = self._build(call, now, Stage.FINAL, call.ended_at, self._disposition(call, now), draft)
        self.remember(record)
        for listener in self._final_listeners:
            listener(record)
        return record

    def draft_saved(self, saved: DraftSaved) -> CallRecord | None:
        """A new revision of the call's final record carrying a newer draft; None while the call is
        live (its final record will carry the draft) or when the record has this version already."""
        final = self._final(saved.call_id)
        draft = saved.draft
        if final is None or (final.work_order is not None and final.work_order.version >= draft.version):
            return None
        # Strictly later than the record it amends, so the order system keeps the newer one.
        as_of = max(final.as_of + dt.timedelta(milliseconds=1), draft.saved_at)
        amended = final.model_dump() | {
            "work_order": draft.model_dump(), "as_of": as_of, "revision": revision_for(as_of, Stage.FINAL),
        }  # fmt: skip
        record = validate(amended, saved.call_id)
        self.remember(record)
        return record

    def seats_of(self, call_id: str) -> set[str]:
        """The seats offered or connected to a call whose final record is remembered."""
        final = self._final(call_id)
        return {leg.party for leg in final.legs if leg.kind is PartyKind.SEAT} if final else set()

    def callback_outcome(
        self, call_id: str, outcome: CallbackOutcome, attempts: int, at: dt.datetime
    ) -> CallRecord | None:
        """A new revision of ``call_id``'s final record: its call back ended ``outcome`` at ``at``."""
        update = {"outcome": outcome, "attempts": attempts, "last_attempt_at": at}
        return self._amend_callback(call_id, update, {}, at)

    def _answered_callback(
        self, call: calls.Call, attempt: CallbackAttempt, now: float, draft: WorkOrderDraft | None
    ) -> CallRecord | None:
        """The answered call back ``call`` has ended: its legs join the original call's record, and
        what the seat wrote on it (the call back's outcome) becomes that record's draft."""
        final = self._final(attempt.call_id)
        if final is None or call.ended_at is None:
            return None
        extra = {
            "work_order": draft.model_dump()
            if draft
            else (final.work_order and final.work_order.model_dump()),
            "legs": [*(leg.model_dump() for leg in final.legs), *(self._leg(p, now) for p in call.parties)],
            "queues": [*(v.model_dump() for v in final.queues), *self._visits(call)],
            "seat_ids": list(dict.fromkeys([*final.seat_ids, *call.seat_ids])),
            "recordings": list(dict.fromkeys([*final.recordings, *call.recordings])),
            # The survey after the call back is the caller's verdict on the service, if none came before.
            "survey": final.survey.model_dump() if final.survey else self._survey_of(call),
        }
        update = {
            "outcome": CallbackOutcome.ANSWERED,
            "attempts": attempt.attempts,
            "last_attempt_at": attempt.at,
            "linkedid": call.call_id,
        }
        return self._amend_callback(attempt.call_id, update, extra, call.ended_at)

    def _amend_callback(
        self, call_id: str, update: dict[str, Any], extra: dict[str, Any], as_of: dt.datetime
    ) -> CallRecord | None:
        final = self._final(call_id)
        if final is None or final.callback is None:
            log.warning("callback_outcome_dropped", call_id=call_id, reason="call record not remembered")
            return None
        as_of = max(final.as_of, as_of)
        amended = final.model_dump() | extra | {
            "callback": final.callback.model_dump() | update,
            "as_of": as_of,
            "revision": revision_for(as_of, Stage.FINAL),
        }  # fmt: skip
        record = validate(amended, call_id)
        self.remember(record)
        return record

    def update(
        self, update: CallUpdate, now: float, draft: WorkOrderDraft | None = None
    ) -> CallRecord | None:
        if update.kind is UpdateKind.LATE_SURVEY:
            return self._late_survey(update)
        call = update.call
        if call is None:
            return None
        if update.kind is UpdateKind.CALLBACK_REQUESTED and call.callback is not None:
            disposition = {
                "kind": DispositionKind.CALLBACK_REQUESTED,
                "callback_number": call.callback.number,
            }
            return self._build(call, now, Stage.INTERIM, call.callback.at, disposition)
        emergency = next((h for h in reversed(call.handovers) if h.target_kind is TargetKind.EMERGENCY), None)
        service = _enum_value(
            EmergencyService, emergency.target if emergency else None, "emergency", call.call_id
        )
        if emergency is None or service is None:
            return None
        disposition = {"kind": DispositionKind.EMERGENCY_HANDOVER, "emergency_service": service}
        return self._build(call, now, Stage.INTERIM, emergency.at, disposition, draft)

    def _late_survey(self, update: CallUpdate) -> CallRecord | None:
        final = self._final(update.call_id)
        survey = self._survey(update.survey, update.call_id) if update.survey else None
        if final is None or survey is None:
            log.warning(
                "late_survey_dropped", call_id=update.call_id, reason="call forgotten or survey unknown"
            )
            return None
        as_of = max(final.as_of, survey["at"])
        amended = final.model_dump() | {
            "survey": survey, "as_of": as_of, "revision": revision_for(as_of, Stage.FINAL),
        }  # fmt: skip
        record = validate(amended, update.call_id)
        self.remember(record)
        return record

    def _survey_of(self, call: calls.Call) -> dict[str, Any] | None:
        return self._survey(call.survey, call.call_id) if call.survey else None

    def _survey(self, survey: calls.Survey, call_id: str) -> dict[str, Any] | None:
        result = _enum_value(SurveyResult, survey_result(survey.result), "survey", call_id)
        return None if result is None else {"result": result, "key": survey.key, "at": survey.at}

    def _disposition(self, call: calls.Call, now: float) -> dict[str, Any]:
        found = call.disposition
        if found is None:
            raise RecordBuildError(f"call {call.call_id} ended without a disposition")
        service = _enum_value(EmergencyService, found.emergency_service, "disposition", call.call_id)
        if found.kind is DispositionKind.EMERGENCY_HANDOVER and service is None:
            # A linkage number the contract cannot name: say what happened to the caller instead.
            if call.answered_at is not None:
                return {"kind": DispositionKind.ANSWERED}
            return {"kind": DispositionKind.ABANDONED, "abandoned_after_s": call.wait.seconds(now)}
        return {
            "kind": DispositionKind(found.kind.value),
            "abandoned_after_s": found.abandoned_after_s,
            "emergency_service": service,
            "callback_number": found.callback_number,
        }

    @staticmethod
    def _visits(call: calls.Call) -> list[dict[str, Any]]:
        return [
            {"queue": v.queue, "joined_at": v.joined_at, "left_at": v.left_at, "result": v.result}
            for v in call.queues
            if not v.consult
        ]

    @staticmethod
    def _callback(call: calls.Call) -> dict[str, Any] | None:
        request = call.callback
        if request is None:
            return None
        return pending_callback(request.number, request.queue, request.at, request.joined_at)

    def _build(
        self,
        call: calls.Call,
        now: float,
        stage: Stage,
        as_of: dt.datetime,
        disposition: dict[str, Any],
        draft: WorkOrderDraft | None = None,
    ) -> CallRecord:
        return build(
            pbx_node=self.pbx_node,
            linkedid=call.call_id,
            stage=stage,
            as_of=as_of,
            disposition=disposition,
            caller_number=call.caller_number,
            legacy_line=call.legacy_line,
            merge_mode=_enum_value(MergeMode, call.merge_mode, "merge_mode", call.call_id),
            department=call.department,
            category_code=call.category_code,
            queues=self._visits(call),
            seat_ids=list(dict.fromkeys(call.seat_ids)),
            times={
                "arrived_at": call.arrived_at,
                "queue_joined_at": call.queue_joined_at,
                "answered_at": call.answered_at,
                "ended_at": call.ended_at if stage is Stage.FINAL else None,
            },
            durations=call.timers(now) | {"wrap_up_s": call.wrap_up_s},
            handovers=[self._handover(h, call.call_id) for h in call.handovers],
            legs=[self._leg(party, now) for party in call.parties],
            recordings=call.recordings,
            survey=self._survey_of(call),
            callback=self._callback(call),
            work_order=draft.model_dump() if draft is not None else None,
        )

    @staticmethod
    def _leg(party: calls.Party, now: float) -> dict[str, Any]:
        return {
            "kind": party.kind.value, "party": party.party, "queue": party.queue,
            "offered_at": party.offered_at, "answered_at": party.answered_at, "ended_at": party.ended_at,
            "ring_s": party.ring.seconds(now), "talk_s": party.talk.seconds(now),
            "hold_s": party.hold.seconds(now), "recordings": party.recordings,
        }  # fmt: skip

    @staticmethod
    def _handover(handover: calls.Handover, call_id: str) -> dict[str, Any]:
        kind = TargetKind((handover.target_kind or TargetKind.EXTERNAL).value)
        service = None
        if kind is TargetKind.EMERGENCY:
            service = _enum_value(EmergencyService, handover.target, "handover", call_id)
            kind = kind if service is not None else TargetKind.EXTERNAL
        return {
            "at": handover.at, "mode": handover.mode.value, "from_seat": handover.from_seat,
            "target_kind": kind, "target": handover.target or "unknown", "emergency_service": service,
            "outcome": handover.outcome.value, "recording": handover.recording,
        }  # fmt: skip
