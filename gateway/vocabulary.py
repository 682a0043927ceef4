"""The hotline's shared words: one definition of each enum and value pattern.

The tracker (``gateway.calls``), the call records (``gateway.records``), the transfer API and the
simulator all speak of queue results, dispositions, hand-over modes and targets, merge modes,
phone numbers, queue names, DTMF keys and category codes; they take them from here, so a value
the tracker produces is always one a record can carry. Patterns are for ``re.fullmatch`` (the
``^...$`` forms are for JSON Schema and pydantic).

What admins may write in hotline_merge.yaml is narrower and lives with the config
(``gateway.merge.schema``): a queue the config creates is a name any of these accept.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

# --- patterns ------------------------------------------------------------------------------------

PHONE: Final = r"\+?[0-9]{2,20}"
# As permissive as the PBX is ("." included): a value Asterisk reported must never cost a record.
QUEUE: Final = r"[A-Za-z0-9_.-]{1,64}"
DTMF_KEY: Final = r"[0-9*#]"
CATEGORY: Final = r"[0-9]{6}"  # work-order category code (GB/T 39666-2020)

PHONE_RE: Final = re.compile(PHONE)
QUEUE_RE: Final = re.compile(QUEUE)
DTMF_KEY_RE: Final = re.compile(DTMF_KEY)
CATEGORY_RE: Final = re.compile(CATEGORY)


def anchored(pattern: str) -> str:
    """``pattern`` for JSON Schema / pydantic, which search rather than match whole values."""
    return f"^{pattern}$"


# --- enums ---------------------------------------------------------------------------------------


# How a dialled number reaches 12345 (国办发〔2020〕53号); admins choose merged, parallel or subcenter.
class MergeMode(StrEnum):
    HOTLINE = "hotline"  # 12345 dialled directly
    MERGED = "merged"  # 整体并入
    PARALLEL = "parallel"  # 双号并行
    SUBCENTER = "subcenter"  # 设分中心
    LEGACY = "legacy"  # before the line's cutover day: still its old queue


class QueueResult(StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"  # left without answer and joined another queue (parallel lines, overflow_to)
    TIMEOUT = "timeout"  # left without answer (queue timeout, exit key, redirected away)
    CALLBACK_REQUESTED = "callback_requested"
    PBX_OUTAGE = "pbx_outage"


class DispositionKind(StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    CALLBACK_REQUESTED = "callback_requested"
    EMERGENCY_HANDOVER = "emergency_handover"
    PBX_OUTAGE = "pbx_outage"  # the PBX went away (restart, link lost) while the call was up


class PartyKind(StrEnum):
    SEAT = "seat"  # a 12345 seat, party = seat id (extension)
    EXTERNAL = "external"  # a number outside the hotline (emergency service, department), party = number


class HandoverMode(StrEnum):
    BLIND = "blind"  # 一键转接: Redirect or BlindTransfer of the caller
    CONSULT = "consult"  # the seat talks to the target first, then transfers (Atxfer)
    THREEWAY = "threeway"  # 三方通话: caller, seat and target in one conference


class TargetKind(StrEnum):
    SEAT = "seat"
    QUEUE = "queue"
    EMERGENCY = "emergency"
    EXTERNAL = "external"


class HandoverOutcome(StrEnum):
    PENDING = "pending"  # only in interim records
    COMPLETED = "completed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CANCELLED = "cancelled"  # the seat took the caller back during a consult
    FAILED = "failed"
