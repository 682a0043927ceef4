"""Realistic call records built from a few numbers, for tests, the bench and the docs.

Not used on the live path: records of real calls come from the call tracker.
"""

from __future__ import annotations

import datetime as dt

from gateway.records.model import (
    CallRecord,
    Disposition,
    Durations,
    EmergencyService,
    Handover,
    Leg,
    QueueVisit,
    Stage,
    Survey,
    SurveyResult,
    Times,
    record_id_for,
    revision_for,
)
from gateway.vocabulary import (
    DispositionKind,
    HandoverMode,
    HandoverOutcome,
    MergeMode,
    PartyKind,
    QueueResult,
    TargetKind,
)

EPOCH = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def answered_call(n: int, *, pbx_node: str = "pbx-1", start: dt.datetime = EPOCH) -> CallRecord:
    """Call number ``n``: 12315 merged into 12345, waits 12 s, seat 10xx answers, talks 95 s."""
    arrived = start + dt.timedelta(seconds=n)
    joined = arrived + dt.timedelta(seconds=4)
    answered = joined + dt.timedelta(seconds=12)
    ended = answered + dt.timedelta(seconds=95)
    seat = f"{1001 + n % 50}"
    linkedid = f"1772438400.{n}"
    return CallRecord(
        record_id=record_id_for(pbx_node, linkedid),
        revision=revision_for(ended, Stage.FINAL),
        stage=Stage.FINAL,
        as_of=ended,
        pbx_node=pbx_node,
        linkedid=linkedid,
        caller_number=f"138{n:08d}"[-11:],
        legacy_line="12315",
        merge_mode=MergeMode.MERGED,
        department="市场监管局",
        category_code="050100",
        queues=[
            QueueVisit(
                queue="hotline-general", joined_at=joined, left_at=answered, result=QueueResult.ANSWERED
            )
        ],
        seat_ids=[seat],
        times=Times(arrived_at=arrived, queue_joined_at=joined, answered_at=answered, ended_at=ended),
        durations=Durations(wait_s=12.0, ring_s=3.0, talk_s=90.0, hold_s=5.0, wrap_up_s=None),
        handovers=[],
        legs=[
            Leg(
                kind=PartyKind.SEAT,
                party=seat,
                queue="hotline-general",
                offered_at=answered - dt.timedelta(seconds=3),
                answered_at=answered,
                ended_at=ended,
                ring_s=3.0,
                talk_s=90.0,
                hold_s=5.0,
                recordings=[f"{linkedid}-{seat}.wav"],
            )
        ],
        recordings=[f"{linkedid}-{seat}.wav"],
        survey=Survey(result=SurveyResult.SATISFIED, key="1", at=ended),
        disposition=Disposition(
            kind=DispositionKind.ANSWERED,
            abandoned_after_s=None,
            emergency_service=None,
            callback_number=None,
        ),
    )


def emergency_handover(n: int, *, pbx_node: str = "pbx-1", start: dt.datetime = EPOCH) -> CallRecord:
    """The interim record of call ``n`` when seat 1001 starts a three-way call with 120."""
    base = answered_call(n, pbx_node=pbx_node, start=start)
    at = base.times.answered_at + dt.timedelta(seconds=30) if base.times.answered_at else base.as_of
    # Validated again (model_copy would not check the interim invariants).
    return CallRecord.model_validate(
        base.model_dump()
        | {
            "stage": Stage.INTERIM,
            "as_of": at,
            "revision": revision_for(at, Stage.INTERIM),
            "times": base.times.model_dump() | {"ended_at": None},
            "survey": None,
            "handovers": [
                Handover(
                    at=at,
                    mode=HandoverMode.THREEWAY,
                    from_seat=base.seat_ids[0],
                    target_kind=TargetKind.EMERGENCY,
                    target="120",
                    emergency_service=EmergencyService.AMBULANCE,
                    outcome=HandoverOutcome.PENDING,
                    recording=None,
                )
            ],
            "disposition": Disposition(
                kind=DispositionKind.EMERGENCY_HANDOVER,
                abandoned_after_s=None,
                emergency_service=EmergencyService.AMBULANCE,
                callback_number=None,
            ),
        }
    )
