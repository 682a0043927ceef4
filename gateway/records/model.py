"""The call record: what the gateway tells the order system about one call (version 1).

This model is the contract. The JSON Schema committed next to it
(``call-record.v1.schema.json``) is generated from it, and the reference receiver validates with
it. It owns identity (record id, revision, idempotency key) and the invariants a receiver may rely
on; it does not know how a call was tracked (gateway.calls maps a finished call onto it).

Identity: one call (one Asterisk Linkedid on one PBX node) is one record id, a UUIDv5 of both, so
two nodes never collide and a rebuilt record has the same id. A call may be reported more than
once: *interim* records for states the order system must know at once (handed to 110/119/120/122,
callback requested, abandoned) and one *final* record when the call has ended (amended, with a new
revision, if the survey result arrives after the end). All share the record id; each carries a
``revision`` derived from the moment it describes, so a later state always has a larger revision
and the same state rebuilt after a restart has the same one. The receiver keeps
the highest revision per record id and deduplicates deliveries by ``idempotency_key``
(``<record_id>:<revision>``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from gateway.vocabulary import (
    CATEGORY,
    DTMF_KEY,
    PHONE,
    QUEUE,
    DispositionKind,
    HandoverMode,
    HandoverOutcome,
    MergeMode,
    PartyKind,
    QueueResult,
    TargetKind,
    anchored,
)

SCHEMA_VERSION: Final = "call-record/v1"

# Fixed forever: changing it changes every record id (uuid5(NAMESPACE_URL, "urn:hotline-gateway:call-record")).
RECORD_NAMESPACE = uuid.UUID("fd4c37ea-a6ff-597a-aefb-b28bd700a1d9")

PBX_NODE_PATTERN = r"^[a-z0-9-]{1,32}$"  # as gateway.merge.schema's ami.node_id
LINKEDID_PATTERN = r"^[\x21-\x7e]{1,150}$"  # printable ASCII, no spaces (Asterisk uniqueid or ChannelId)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]
Seconds = Annotated[float, Field(ge=0)]
PhoneNumber = Annotated[str, Field(pattern=anchored(PHONE))]
QueueName = Annotated[str, Field(pattern=anchored(QUEUE))]
SeatId = Annotated[str, Field(pattern=r"^[^\x00-\x1f]{1,64}$")]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
RecordId = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")]


def record_id_for(pbx_node: str, linkedid: str) -> str:
    """The record id (and idempotency key stem) of the call ``linkedid`` on ``pbx_node``."""
    return str(uuid.uuid5(RECORD_NAMESPACE, f"{pbx_node}\n{linkedid}"))


class Stage(StrEnum):
    INTERIM = "interim"  # the call goes on; the order system must act now
    FINAL = "final"  # the call has ended; supersedes every interim record


def revision_for(as_of: dt.datetime, stage: Stage) -> int:
    """Milliseconds since the epoch of ``as_of``, then one digit for the stage (1 interim, 2 final).

    Derived, never counted: a gateway that restarts mid-call cannot lose a counter, a rebuilt
    record keeps its key, and a final record at the same millisecond as an interim one wins.
    """
    millis = int(as_of.timestamp() * 1000)
    return millis * 10 + (2 if stage is Stage.FINAL else 1)


INTERIM_KINDS = frozenset(
    {DispositionKind.ABANDONED, DispositionKind.CALLBACK_REQUESTED, DispositionKind.EMERGENCY_HANDOVER}
)


class EmergencyService(StrEnum):
    POLICE = "110"
    FIRE = "119"
    AMBULANCE = "120"
    TRAFFIC_POLICE = "122"


class CallbackOutcome(StrEnum):
    PENDING = "pending"  # requested, not yet made (or being retried)
    ANSWERED = "answered"  # the citizen picked up and was put first in line for a seat
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # the call could not be placed (trunk, number)


class SurveyResult(StrEnum):
    SATISFIED = "satisfied"
    BASIC = "basic"  # 基本满意
    DISSATISFIED = "dissatisfied"
    NO_RESPONSE = "no_response"


class Origin(StrEnum):
    AMI = "ami"  # tracked live from Asterisk's events
    PBX_LOG = "pbx_log"  # rebuilt from the PBX's own log of ended calls: the gateway was away


class _Model(BaseModel):
    # Serialized JSON always carries every key (null when unknown): receivers need no defaults.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


class Times(_Model):
    arrived_at: UtcTime = Field(description="the call reached the PBX")
    queue_joined_at: UtcTime | None = Field(description="first queue join; null if it never queued")
    answered_at: UtcTime | None = Field(description="first answer by a seat")
    ended_at: UtcTime | None = Field(description="caller hung up or was handed away; null in interim records")


class Durations(_Model):
    """Separate timers, each in seconds; none includes another."""

    wait_s: Seconds = Field(description="in queue(s) until answered or left")
    ring_s: Seconds = Field(description="some seat or party was being rung (parallel ringing counts once)")
    talk_s: Seconds = Field(description="connected to at least one seat or external party, not on hold")
    hold_s: Seconds = Field(description="connected but on hold")
    wrap_up_s: Seconds | None = Field(
        description="after-call work (wrap-up) the last answering seat gets, as its queue sets it; null if unknown"
    )


class QueueVisit(_Model):
    queue: QueueName
    joined_at: UtcTime
    left_at: UtcTime | None = Field(description="null while still waiting (interim records)")
    result: QueueResult | None = Field(description="null while still waiting")


class Leg(_Model):
    """One party the caller was connected (or offered) to."""

    kind: PartyKind
    party: ShortText = Field(description="seat id for seats, the dialled number for external parties")
    queue: QueueName | None = Field(description="the queue that offered the call; null for direct legs")
    offered_at: UtcTime
    answered_at: UtcTime | None
    ended_at: UtcTime | None
    ring_s: Seconds
    talk_s: Seconds
    hold_s: Seconds
    recordings: list[ShortText] = Field(
        max_length=100, description="file names of this leg's recordings under the recordings store"
    )


class Handover(_Model):
    at: UtcTime
    mode: HandoverMode
    from_seat: SeatId | None
    target_kind: TargetKind
    target: ShortText = Field(description="seat id, queue name or number")
    emergency_service: EmergencyService | None = Field(description="set iff target_kind is emergency")
    outcome: HandoverOutcome
    recording: ShortText | None = Field(description="the recording of the hand-over (consultation), if any")

    @model_validator(mode="after")
    def _emergency_service_iff_emergency(self) -> Handover:
        if (self.target_kind is TargetKind.EMERGENCY) != (self.emergency_service is not None):
            raise ValueError("emergency_service is set exactly when target_kind is 'emergency'")
        return self


class Callback(_Model):
    """回拨: the caller asked to be called back; made in order of ``joined_at``, when a seat is free."""

    number: PhoneNumber | None = Field(description="the number called back; null if the caller withheld it")
    queue: QueueName | None = Field(description="the queue the caller left")
    requested_at: UtcTime
    joined_at: UtcTime = Field(description="when the caller first queued: callbacks are made in this order")
    outcome: CallbackOutcome = Field(description="answered, or how the last attempt failed once none is left")
    attempts: Annotated[int, Field(ge=0, le=100)]
    last_attempt_at: UtcTime | None
    linkedid: Annotated[str, Field(pattern=LINKEDID_PATTERN)] | None = Field(
        description="the Linkedid of the answered call back; its legs, queue visit and recordings are "
        "appended to this record's"
    )


class Survey(_Model):
    result: SurveyResult
    key: Annotated[str, Field(pattern=anchored(DTMF_KEY))] | None = Field(description="the DTMF key pressed")
    at: UtcTime | None


class Disposition(_Model):
    kind: DispositionKind
    abandoned_after_s: Seconds | None = Field(description="set iff kind is abandoned: wait before hanging up")
    emergency_service: EmergencyService | None = Field(description="set iff kind is emergency_handover")
    callback_number: PhoneNumber | None = Field(description="callback_requested: number to call back")

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Disposition:
        if (self.kind is DispositionKind.ABANDONED) != (self.abandoned_after_s is not None):
            raise ValueError("abandoned_after_s is set exactly when kind is 'abandoned'")
        if (self.kind is DispositionKind.EMERGENCY_HANDOVER) != (self.emergency_service is not None):
            raise ValueError("emergency_service is set exactly when kind is 'emergency_handover'")
        if self.kind is not DispositionKind.CALLBACK_REQUESTED and self.callback_number is not None:
            raise ValueError("callback_number is only for kind 'callback_requested'")
        return self


class CallRecord(_Model):
    """One report about one call; see the module docstring for identity and revisions."""

    schema_version: Literal["call-record/v1"] = SCHEMA_VERSION
    record_id: Annotated[
        str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
    ]
    revision: Annotated[int, Field(ge=1)]
    stage: Stage
    as_of: UtcTime = Field(
        description="the moment this record describes: for a final record its end, or a survey result "
        "that arrived after the end"
    )
    pbx_node: Annotated[str, Field(pattern=PBX_NODE_PATTERN)]
    linkedid: Annotated[str, Field(pattern=LINKEDID_PATTERN)]
    caller_number: PhoneNumber | None = Field(description="null when the caller withheld the number")
    legacy_line: PhoneNumber | None = Field(
        description="the number dialled: 12345 or a merged legacy line; null if the PBX never said"
    )
    merge_mode: MergeMode | None = Field(description="null if the PBX never said (e.g. found in a resync)")
    department: ShortText | None
    category_code: Annotated[str, Field(pattern=anchored(CATEGORY))] | None
    queues: list[QueueVisit] = Field(max_length=100, description="the caller's queue visits")
    seat_ids: list[SeatId] = Field(max_length=100, description="seats that answered, in order")
    times: Times
    durations: Durations
    handovers: list[Handover] = Field(max_length=100)
    legs: list[Leg] = Field(max_length=1000, description="ring-all queues offer a call to many seats")
    recordings: list[ShortText] = Field(
        max_length=1000, description="every recording of the call, the caller's channel's included"
    )
    survey: Survey | None
    disposition: Disposition
    callback: Callback | None = Field(
        default=None, description="set when the caller asked to be called back; amended with each outcome"
    )
    origin: Origin = Field(
        default=Origin.AMI,
        description="ami: tracked live from the PBX's events; pbx_log: rebuilt after the call from the "
        "PBX's own log of ended calls (the gateway was away), with fewer details (no legs' ring times, "
        "hold or hand-overs)",
    )

    @property
    def idempotency_key(self) -> str:
        return f"{self.record_id}:{self.revision}"

    @model_validator(mode="after")
    def _identity_and_stage(self) -> CallRecord:
        expected_id = record_id_for(self.pbx_node, self.linkedid)
        if self.record_id != expected_id:
            raise ValueError(f"record_id must be {expected_id} for pbx_node/linkedid (use record_id_for)")
        expected_revision = revision_for(self.as_of, self.stage)
        if self.revision != expected_revision:
            raise ValueError(f"revision must be {expected_revision} for as_of/stage (use revision_for)")
        if self.stage is Stage.FINAL and (self.times.ended_at is None or self.as_of < self.times.ended_at):
            raise ValueError("a final record has times.ended_at set, and as_of at or after it")
        if self.stage is Stage.INTERIM:
            if self.disposition.kind not in INTERIM_KINDS:
                raise ValueError(
                    f"an interim record reports one of {sorted(INTERIM_KINDS)}, not {self.disposition.kind}"
                )
            if self.times.ended_at is not None:
                raise ValueError("an interim record describes a call still going on: times.ended_at is null")
        unlisted = {leg.party for leg in self.legs if leg.kind is PartyKind.SEAT and leg.answered_at} - set(
            self.seat_ids
        )
        if unlisted:
            raise ValueError(f"seat_ids must list every seat that answered; missing {sorted(unlisted)}")
        return self
