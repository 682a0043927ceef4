"""The one place a call record is assembled: for tracked calls (``from_calls``) and for calls found
only in the PBX's log (``backstop``).

Owns what every record shares however its facts were learnt: identity (the record id and the
revision, from the node, the Linkedid, the stage and the moment described), the disposition
fields a kind does not set, the shape of a callback not yet made and of a survey answer, and
validation (a record that does not validate raises ``RecordBuildError`` naming the call and each
field). Mapping the facts themselves stays with each source.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from gateway.contract import Survey as SurveyEvent
from gateway.errors import GatewayError
from gateway.records.model import (
    CallbackOutcome,
    CallRecord,
    Origin,
    Stage,
    SurveyResult,
    record_id_for,
    revision_for,
)

_NO_DISPOSITION_DETAILS = {"abandoned_after_s": None, "emergency_service": None, "callback_number": None}


class RecordBuildError(GatewayError):
    """A call could not be expressed as a record (a bug: each mapping must be total)."""

    code = "records.unbuildable"


def build(
    *,
    pbx_node: str,
    linkedid: str,
    stage: Stage,
    as_of: dt.datetime,
    disposition: dict[str, Any],
    origin: Origin = Origin.AMI,
    **facts: Any,
) -> CallRecord:
    """The record of ``linkedid`` on ``pbx_node`` as of ``as_of``; ``facts`` are the other fields."""
    return validate(
        {
            "record_id": record_id_for(pbx_node, linkedid),
            "revision": revision_for(as_of, stage),
            "stage": stage,
            "as_of": as_of,
            "pbx_node": pbx_node,
            "linkedid": linkedid,
            **facts,
            "disposition": _NO_DISPOSITION_DETAILS | disposition,
            "origin": origin,
        },
        linkedid,
    )


def validate(fields: dict[str, Any], call_id: str) -> CallRecord:
    try:
        return CallRecord.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RecordBuildError(f"call {call_id}: cannot build its record: {problems}") from exc


def pending_callback(
    number: str | None, queue: str | None, requested_at: dt.datetime | None, joined_at: dt.datetime | None
) -> dict[str, Any]:
    """A callback the caller asked for and nobody has made yet."""
    return {
        "number": number, "queue": queue, "requested_at": requested_at, "joined_at": joined_at,
        "outcome": CallbackOutcome.PENDING, "attempts": 0, "last_attempt_at": None, "linkedid": None,
    }  # fmt: skip


def survey_result(raw: str | None) -> str | None:
    """The survey result as the record names it: the dialplan says "none" when no (known) key was pressed."""
    return SurveyResult.NO_RESPONSE.value if raw == SurveyEvent.NO_KEY else raw
