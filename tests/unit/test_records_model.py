"""The call record contract: identity, revisions, invariants, and the committed JSON Schema."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.merge.schema import LINE_MODES
from gateway.merge.schema import Survey as ConfigSurvey
from gateway.ordersink.examples import answered_call, emergency_handover
from gateway.records import schema
from gateway.records.model import (
    CallRecord,
    Stage,
    SurveyResult,
    record_id_for,
    revision_for,
)
from gateway.vocabulary import MergeMode


def _with(record: CallRecord, **changes: Any) -> CallRecord:
    return CallRecord.model_validate(record.model_dump() | changes)


def test_record_id_is_deterministic_and_distinct_per_pbx_node() -> None:
    assert record_id_for("pbx-1", "1772438400.7") == record_id_for("pbx-1", "1772438400.7")
    assert record_id_for("pbx-1", "1772438400.7") != record_id_for("pbx-2", "1772438400.7")
    assert answered_call(7, pbx_node="pbx-2").record_id != answered_call(7).record_id


def test_interim_and_final_share_the_record_id_and_the_final_has_the_higher_revision() -> None:
    interim, final = emergency_handover(3), answered_call(3)
    assert interim.record_id == final.record_id
    assert interim.stage is Stage.INTERIM
    assert final.stage is Stage.FINAL
    assert final.revision > interim.revision
    assert interim.idempotency_key != final.idempotency_key


@given(
    st.datetimes(
        min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
    )
)
def test_a_final_record_outranks_an_interim_one_of_the_same_millisecond(moment: dt.datetime) -> None:
    assert revision_for(moment, Stage.FINAL) > revision_for(moment, Stage.INTERIM)
    later = moment + dt.timedelta(milliseconds=1)
    assert revision_for(later, Stage.INTERIM) > revision_for(moment, Stage.FINAL)


def test_a_rebuilt_record_has_the_same_idempotency_key_and_json() -> None:
    first, rebuilt = answered_call(11), answered_call(11)
    assert first.idempotency_key == rebuilt.idempotency_key
    assert CallRecord.model_validate_json(first.model_dump_json()) == rebuilt


def test_times_are_stored_in_utc() -> None:
    beijing = dt.timezone(dt.timedelta(hours=8))
    record = answered_call(1, start=dt.datetime(2026, 3, 2, 16, 0, tzinfo=beijing))
    assert record.as_of.tzinfo == dt.UTC
    assert record.model_dump_json().count("+08:00") == 0


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        _with(answered_call(1), as_of=dt.datetime(2026, 3, 2, 8, 0))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"record_id": record_id_for("pbx-9", "x")}, "record_id must be"),
        ({"revision": 1}, "revision must be"),
        ({"seat_ids": []}, "seat_ids must list every seat that answered"),
        ({"merge_mode": "menu"}, "merge_mode"),
        ({"disposition": {"kind": "abandoned", "abandoned_after_s": None, "emergency_service": None,
                          "callback_number": None}}, "abandoned_after_s is set exactly"),
        ({"disposition": {"kind": "emergency_handover", "abandoned_after_s": None, "emergency_service": None,
                          "callback_number": None}}, "emergency_service is set exactly"),
        ({"unknown": 1}, "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_invariants_are_enforced(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _with(answered_call(1), **changes)


def test_an_interim_record_cannot_report_an_answered_or_ended_call() -> None:
    interim = emergency_handover(2)
    answered = {
        "kind": "answered",
        "abandoned_after_s": None,
        "emergency_service": None,
        "callback_number": None,
    }
    with pytest.raises(ValidationError, match="an interim record reports one of"):
        _with(interim, disposition=answered)
    with pytest.raises(ValidationError, match=r"times.ended_at is null"):
        _with(interim, times=interim.times.model_dump() | {"ended_at": interim.as_of})


def test_a_final_record_ends_at_its_as_of() -> None:
    final = answered_call(2)
    with pytest.raises(ValidationError, match="ended_at set, and as_of at or after it"):
        _with(final, times=final.times.model_dump() | {"ended_at": None})
    earlier = final.as_of - dt.timedelta(seconds=1)
    with pytest.raises(ValidationError, match="ended_at set, and as_of at or after it"):
        _with(final, as_of=earlier, revision=revision_for(earlier, Stage.FINAL))


def test_the_committed_json_schema_is_generated_from_the_model() -> None:
    assert schema.SCHEMA_PATH.read_text(encoding="utf-8") == schema.render(), (
        "call-record.v1.schema.json is stale: run `python -m gateway.records.schema` and commit it"
    )


def test_the_json_schema_requires_every_key_the_gateway_sends() -> None:
    document = json.loads(schema.render())
    sent = json.loads(answered_call(1).model_dump_json())
    assert set(document["required"]) == set(sent)
    assert document["additionalProperties"] is False


def test_record_enums_cover_what_the_merge_config_can_say() -> None:
    assert {mode.value for mode in LINE_MODES} <= {mode.value for mode in MergeMode}
    survey_keys = ConfigSurvey.model_fields["keys"].annotation
    assert survey_keys is not None
    configured = set(survey_keys.__args__[1].__args__)  # dict[DtmfKey, Literal[...]]
    assert configured <= {result.value for result in SurveyResult}
