"""Call records from the call tracker's outputs: the thin mapping from gateway.calls to the contract.

Owns the translation only. ``CallEnded`` becomes a final record, ``CallUpdate`` an interim one
(emergency hand-over, callback requested) or, for a survey result that arrived after the call
ended, a new revision of that call's final record. Values the contract cannot carry (an
emergency number other than 110/119/120/122, a survey answer it does not know) become the nearest
honest value and are logged: a record that cannot be built is a record lost.

It keeps the last ``remember`` final records in memory, as the tracker remembers ended calls, so
a late survey result can amend its record; after a restart such a result is logged and dropped.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError

from gateway.calls import model as calls
from gateway.calls.tracker import CallEnded, CallUpdate, Output, UpdateKind
from gateway.errors import GatewayError
from gateway.records.model import (
    CallRecord,
    DispositionKind,
    EmergencyService,
    HandoverTargetKind,
    MergeMode,
    Stage,
    SurveyResult,
    record_id_for,
    revision_for,
)

log = structlog.get_logger(__name__)


class RecordBuildError(GatewayError):
    """The tracker's call could not be expressed as a record (a bug: the mapping must be total)."""

    code = "records.unbuildable"


E = TypeVar("E", MergeMode, SurveyResult, EmergencyService)


def _enum_value(enum: type[E], value: str | None, what: str, call_id: str) -> E | None:
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        log.warning("call_record_value_dropped", call_id=call_id, field=what, value=value)
        return None


class RecordBuilder:
    def __init__(self, pbx_node: str, *, remember: int = 10_000) -> None:
        self.pbx_node = pbx_node
        self._remember = remember
        self._finals: OrderedDict[str, CallRecord] = OrderedDict()  # by Linkedid, oldest first

    def records(self, outputs: Iterable[Output], now: float) -> list[CallRecord]:
        """Records for a batch of ``Tracker.drain()`` outputs; ``now`` is the tracker's monotonic time."""
        built = []
        for output in outputs:
            record = (
                self.final(output.call, now) if isinstance(output, CallEnded) else self.update(output, now)
            )
            if record is not None:
                built.append(record)
        return built

    def final(self, call: calls.Call, now: float) -> CallRecord:
        if call.ended_at is None:
            raise RecordBuildError(f"call {call.call_id} has not ended; it has no final record yet")
        record = self._build(call, now, Stage.FINAL, call.ended_at, self._disposition(call, now))
        self._finals[call.call_id] = record
        if len(self._finals) > self._remember:
            self._finals.popitem(last=False)
        return record

    def update(self, update: CallUpdate, now: float) -> CallRecord | None:
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
        emergency = next(
            (h for h in reversed(call.handovers) if h.target_kind is calls.TargetKind.EMERGENCY), None
        )
        service = _enum_value(
            EmergencyService, emergency.target if emergency else None, "emergency", call.call_id
        )
        if emergency is None or service is None:
            return None
        disposition = {"kind": DispositionKind.EMERGENCY_HANDOVER, "emergency_service": service}
        return self._build(call, now, Stage.INTERIM, emergency.at, disposition)

    def _late_survey(self, update: CallUpdate) -> CallRecord | None:
        final = self._finals.get(update.call_id)
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
        record = self._validate(amended, update.call_id)
        self._finals[update.call_id] = record
        return record

    def _survey(self, survey: calls.Survey, call_id: str) -> dict[str, Any] | None:
        result = _enum_value(SurveyResult, survey.result, "survey", call_id)
        return None if result is None else {"result": result, "key": survey.key, "at": survey.at}

    def _disposition(self, call: calls.Call, now: float) -> dict[str, Any]:
        found = call.disposition
        if found is None:
            raise RecordBuildError(f"call {call.call_id} ended without a disposition")
        service = _enum_value(EmergencyService, found.emergency_service, "disposition", call.call_id)
        if found.kind is calls.DispositionKind.EMERGENCY_HANDOVER and service is None:
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

    def _build(
        self, call: calls.Call, now: float, stage: Stage, as_of: dt.datetime, disposition: dict[str, Any]
    ) -> CallRecord:
        caller_visits = [v for v in call.queues if not v.consult]
        fields: dict[str, Any] = {
            "record_id": record_id_for(self.pbx_node, call.call_id),
            "revision": revision_for(as_of, stage),
            "stage": stage,
            "as_of": as_of,
            "pbx_node": self.pbx_node,
            "linkedid": call.call_id,
            "caller_number": call.caller_number,
            "legacy_line": call.legacy_line,
            "merge_mode": _enum_value(MergeMode, call.merge_mode, "merge_mode", call.call_id),
            "department": call.department,
            "category_code": call.category_code,
            "queues": [
                {"queue": v.queue, "joined_at": v.joined_at, "left_at": v.left_at, "result": v.result}
                for v in caller_visits
            ],
            "seat_ids": list(dict.fromkeys(call.seat_ids)),
            "times": {
                "arrived_at": call.arrived_at,
                "queue_joined_at": call.queue_joined_at,
                "answered_at": call.answered_at,
                "ended_at": call.ended_at if stage is Stage.FINAL else None,
            },
            "durations": call.timers(now) | {"wrap_up_s": call.wrap_up_s},
            "handovers": [self._handover(h, call.call_id) for h in call.handovers],
            "legs": [self._leg(party, now) for party in call.parties],
            "recordings": call.recordings,
            "survey": self._survey(call.survey, call.call_id) if call.survey else None,
            "disposition": {"abandoned_after_s": None, "emergency_service": None, "callback_number": None}
            | disposition,
        }
        return self._validate(fields, call.call_id)

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
        kind = HandoverTargetKind((handover.target_kind or calls.TargetKind.EXTERNAL).value)
        service = None
        if kind is HandoverTargetKind.EMERGENCY:
            service = _enum_value(EmergencyService, handover.target, "handover", call_id)
            kind = kind if service is not None else HandoverTargetKind.EXTERNAL
        return {
            "at": handover.at, "mode": handover.mode.value, "from_seat": handover.from_seat,
            "target_kind": kind, "target": handover.target or "unknown", "emergency_service": service,
            "outcome": handover.outcome.value, "recording": handover.recording,
        }  # fmt: skip

    @staticmethod
    def _validate(fields: dict[str, Any], call_id: str) -> CallRecord:
        try:
            return CallRecord.model_validate(fields)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise RecordBuildError(f"call {call_id}: cannot build its record: {problems}") from exc
