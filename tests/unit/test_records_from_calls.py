"""Tracker outputs become call records: every recorded Asterisk trace, plus the interim states
(emergency hand-over, callback) and a late survey injected into a real trace."""

from __future__ import annotations

import pytest

from gateway.ami.protocol import Message
from gateway.calls.tracker import CallEnded, Output, Tracker
from gateway.records.from_calls import RecordBuilder
from gateway.records.model import CallRecord, EmergencyService, Stage, SurveyResult, record_id_for
from gateway.vocabulary import DispositionKind, TargetKind
from tests.replay.recorded import recorded, replay, wall
from tests.replay.test_traces import ALL_TRACES

LINKEDID = "caller-s01-798895"  # trace 01: 12315 -> hotline-general -> seat 1001, caller hangs up at 5.5 s
CALLER_LEG = "caller-s01-798895-2"


@pytest.mark.parametrize("name", ALL_TRACES)
def test_every_ended_call_of_every_trace_becomes_a_valid_final_record(name: str) -> None:
    _, outputs = replay(name)
    records = RecordBuilder("pbx-1").records(outputs, now=1e6)
    ended = [o.call for o in outputs if isinstance(o, CallEnded)]
    assert len(records) == len(ended)
    for record, call in zip(records, ended, strict=True):
        assert record.stage is Stage.FINAL
        assert record.record_id == record_id_for("pbx-1", call.call_id)
        assert CallRecord.model_validate_json(record.model_dump_json()) == record


def test_trace_01_maps_onto_the_record_fields() -> None:
    _, outputs = replay("01")
    (record,) = RecordBuilder("pbx-7").records(outputs, now=1e6)
    assert (record.pbx_node, record.linkedid, record.legacy_line) == ("pbx-7", LINKEDID, "12315")
    assert record.disposition.kind is DispositionKind.ANSWERED
    assert record.seat_ids == ["1001"]
    assert [q.queue for q in record.queues] == ["hotline-general"]
    assert record.as_of == record.times.ended_at == wall(5.512)
    assert record.durations.talk_s == pytest.approx(3.0, abs=0.1)
    assert record.durations.wait_s == pytest.approx(2.0, abs=0.1)


def _user_event(kind: str, **fields: str) -> Message:
    return Message.of(
        ("Event", "UserEvent"), UserEvent=kind, Uniqueid=CALLER_LEG, Linkedid=LINKEDID, **fields
    )


def _replay_01_with(injections: dict[float, Message], after_end: Message) -> list[Output]:
    """Trace 01 with UserEvents injected at the given seconds, and one after the call ended."""
    tracker = Tracker()
    outputs: list[Output] = []
    pending = sorted(injections.items(), key=lambda item: item[0])
    for seconds, message in recorded("01"):
        while pending and pending[0][0] <= seconds:
            at, injected = pending.pop(0)
            outputs += tracker.apply(injected, at, wall(at))
        outputs += tracker.apply(message, seconds, wall(seconds))
    return outputs + tracker.apply(after_end, 9.0, wall(9.0))


def test_interim_records_then_the_final_one_then_a_late_survey() -> None:
    outputs = _replay_01_with(
        {
            3.0: _user_event("HotlineHandover", Kind="emergency", Target="120", Recording="consult-120.wav"),
            4.0: _user_event("HotlineCallback", CallbackNumber="13900000009"),
        },
        after_end=_user_event("HotlineSurvey", Result="basic", Key="2"),
    )
    builder = RecordBuilder("pbx-1")
    emergency, callback, final, amended = builder.records(outputs, now=10.0)

    assert (emergency.stage, emergency.disposition.emergency_service) == (
        Stage.INTERIM,
        EmergencyService.AMBULANCE,
    )
    assert emergency.as_of == wall(3.0)
    assert emergency.times.ended_at is None
    assert emergency.handovers[0].target_kind is TargetKind.EMERGENCY
    assert emergency.handovers[0].recording == "consult-120.wav"
    assert callback.disposition.kind is DispositionKind.CALLBACK_REQUESTED
    assert callback.disposition.callback_number == "13900000009"
    assert final.stage is Stage.FINAL
    assert final.survey is None
    assert (amended.survey and amended.survey.result) is SurveyResult.BASIC
    assert amended.as_of == wall(9.0)

    records = [emergency, callback, final, amended]
    assert len({r.record_id for r in records}) == 1
    assert [r.revision for r in records] == sorted({r.revision for r in records})  # strictly increasing


def test_a_late_survey_for_a_forgotten_call_is_dropped_not_raised() -> None:
    outputs = _replay_01_with({}, after_end=_user_event("HotlineSurvey", Result="satisfied", Key="1"))
    final, late = outputs
    builder = RecordBuilder("pbx-1")
    assert builder.records([late], now=10.0) == []  # e.g. the gateway restarted in between
    assert len(builder.records([final, late], now=10.0)) == 2


def test_an_emergency_number_the_contract_cannot_name_is_reported_as_external() -> None:
    tracker = Tracker(emergency_numbers={"110", "119", "120", "122", "999"})
    outputs: list[Output] = []
    for seconds, message in recorded("01"):
        if seconds > 3.0 and not outputs:
            outputs += tracker.apply(
                _user_event("HotlineHandover", Kind="emergency", Target="999"), 3.0, wall(3.0)
            )
        outputs += tracker.apply(message, seconds, wall(seconds))
    records = RecordBuilder("pbx-1").records(outputs, now=10.0)
    (final,) = records  # no interim record: the contract has no such emergency service
    assert final.handovers[0].target_kind is TargetKind.EXTERNAL
    assert final.handovers[0].target == "999"
    assert final.disposition.kind is DispositionKind.ANSWERED
