"""One vocabulary: what the tracker produces is exactly what a call record can carry."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.calls import model as calls
from gateway.records import model as records
from gateway.vocabulary import CATEGORY_RE, DTMF_KEY_RE, PHONE_RE, QUEUE_RE

# (tracker dataclass, field) -> (record model, field): the same fact on both sides.
PAIRS = [
    ((calls.QueueVisit, "result"), (records.QueueVisit, "result")),
    ((calls.Party, "kind"), (records.Leg, "kind")),
    ((calls.Handover, "mode"), (records.Handover, "mode")),
    ((calls.Handover, "target_kind"), (records.Handover, "target_kind")),
    ((calls.Handover, "outcome"), (records.Handover, "outcome")),
    ((calls.Disposition, "kind"), (records.Disposition, "kind")),
]


def _enum_of(annotation: Any) -> type[enum.Enum]:
    """The one enum in ``X``, ``X | None`` or ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation
    found = [a for a in typing.get_args(annotation) if a is not types.NoneType]
    assert len(found) == 1, annotation
    return _enum_of(found[0])


@pytest.mark.parametrize(("tracker", "record"), PAIRS, ids=lambda pair: f"{pair[0].__name__}.{pair[1]}")
def test_tracker_and_record_values_map_one_to_one(
    tracker: tuple[type, str], record: tuple[type[BaseModel], str]
) -> None:
    produced = _enum_of(typing.get_type_hints(tracker[0])[tracker[1]])
    carried = _enum_of(record[0].model_fields[record[1]].annotation)
    assert produced is carried  # one definition, so the values cannot drift apart
    assert {m.value for m in produced} == {m.value for m in carried}


def test_the_record_schema_uses_the_shared_patterns() -> None:
    schema = records.CallRecord.model_json_schema()
    assert schema["properties"]["caller_number"]["anyOf"][0]["pattern"] == f"^{PHONE_RE.pattern}$"
    assert schema["properties"]["category_code"]["anyOf"][0]["pattern"] == f"^{CATEGORY_RE.pattern}$"
    assert schema["$defs"]["QueueVisit"]["properties"]["queue"]["pattern"] == f"^{QUEUE_RE.pattern}$"
    assert schema["$defs"]["Survey"]["properties"]["key"]["anyOf"][0]["pattern"] == f"^{DTMF_KEY_RE.pattern}$"


def test_a_queue_name_asterisk_may_report_is_one_everybody_takes() -> None:
    from gateway.ami import safety

    assert QUEUE_RE.fullmatch("dept.tax-2_b")
    assert safety.QUEUE is QUEUE_RE
