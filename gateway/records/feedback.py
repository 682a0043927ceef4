"""Feedback from the order system about a call record: resolution and follow-up satisfaction (回访).

Owns the inbound half of the order-system contract (docs/order-system.md, "Feedback"): the
payloads, their idempotent storage in Redis, and the resolution and satisfaction rates over a
time window that the dashboard shows. ``feedback_routes`` gives the aiohttp route the gateway's
web app mounts; everything else is a store API without HTTP.

Feedback is taken only for records the gateway produced (the outbox marks each record id; 404
otherwise) and at times no more than ``MAX_CLOCK_SKEW`` ahead (422): a forged id or a time in
9999 would otherwise move the rates or shadow every genuine post for that record.
Per record and kind the newest ``at`` wins, so a repeated or late, older post changes nothing.
Each kind keeps one sorted set per outcome (score = ``at`` in ms), so a rate over any window is
a few ZCOUNTs, and a record that moves from unresolved to resolved leaves the old set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

import redis.asyncio as aioredis
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from gateway.keys import FeedbackKeys, OutboxKeys
from gateway.records.model import RecordId, UtcTime
from gateway.records.outbox import PRODUCED_TTL_S
from gateway.records.tokens import bearer_matches, token_from_env

log = structlog.get_logger(__name__)

FEEDBACK_PATH = "/api/records/{record_id}/feedback"
RETENTION_S = PRODUCED_TTL_S  # feedback is kept as long as the record ids it may name
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)  # the order system's clock may run this far ahead

# KEYS: record hash, the outcome's set, then the kind's other outcome sets.
# ARGV: kind, payload JSON, at (ms), record id, hash TTL (s), oldest score kept (ms).
_APPLY_NEWEST = """
local current = redis.call('HGET', KEYS[1], ARGV[1] .. ':at_ms')
if current and tonumber(current) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], ARGV[1] .. ':at_ms', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
for i = 3, #KEYS do redis.call('ZREM', KEYS[i], ARGV[4]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
for i = 2, #KEYS do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[6]) end
return 1
"""


class FollowUpResult(StrEnum):
    SATISFIED = "satisfied"  # 满意
    BASIC = "basic"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意
    UNREACHABLE = "unreachable"  # 回访未接通: not in the satisfaction denominator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resolution(_Model):
    kind: Literal["resolution"]
    resolved: bool
    at: UtcTime
    work_order_id: Annotated[str, Field(max_length=64)] | None = None
    note: Annotated[str, Field(max_length=500)] | None = None

    @property
    def outcome(self) -> str:
        return "resolved" if self.resolved else "unresolved"


class FollowUp(_Model):
    kind: Literal["follow_up"]
    result: FollowUpResult
    at: UtcTime
    work_order_id: Annotated[str, Field(max_length=64)] | None = None
    note: Annotated[str, Field(max_length=500)] | None = None

    @property
    def outcome(self) -> str:
        return self.result.value


Feedback = Annotated[Resolution | FollowUp, Field(discriminator="kind")]
FEEDBACK = TypeAdapter(Feedback)
OUTCOMES: dict[str, tuple[str, ...]] = {
    "resolution": ("resolved", "unresolved"),
    "follow_up": tuple(result.value for result in FollowUpResult),
}


@dataclass(frozen=True)
class RecordFeedback:
    resolution: Resolution | None
    follow_up: FollowUp | None


@dataclass(frozen=True)
class FeedbackRates:
    """Counts by outcome of the feedback whose ``at`` lies in [since, until], and the two rates."""

    since: dt.datetime
    until: dt.datetime
    counts: dict[str, int]  # "resolution:resolved", "follow_up:basic", ...

    @property
    def resolution_rate(self) -> float | None:
        """Resolved ÷ work orders with a resolution reported in the window."""
        resolved, unresolved = self.counts["resolution:resolved"], self.counts["resolution:unresolved"]
        return resolved / (resolved + unresolved) if resolved + unresolved else None

    @property
    def satisfaction_rate(self) -> float | None:
        """(Satisfied + basically satisfied) ÷ follow-ups that reached the citizen in the window."""
        happy = self.counts["follow_up:satisfied"] + self.counts["follow_up:basic"]
        reached = happy + self.counts["follow_up:dissatisfied"]
        return happy / reached if reached else None


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


class FeedbackStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        keys: FeedbackKeys | None = None,
        retention_s: int = RETENTION_S,
        outbox: OutboxKeys | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys or FeedbackKeys()
        self._outbox = outbox or OutboxKeys()
        self._retention_s = retention_s
        self._apply_newest = redis.register_script(_APPLY_NEWEST)

    async def produced(self, record_id: str) -> bool:
        """Did this gateway (any instance) send a record with this id to the order system?"""
        return bool(await self._redis.exists(self._outbox.produced(record_id)))

    async def apply(self, record_id: str, feedback: Resolution | FollowUp) -> bool:
        """Store unless an equal or newer feedback of the same kind is stored; True if stored."""
        others = [
            self._keys.outcome(feedback.kind, o) for o in OUTCOMES[feedback.kind] if o != feedback.outcome
        ]
        horizon = _ms(dt.datetime.now(dt.UTC)) - self._retention_s * 1000
        applied = await self._apply_newest(
            keys=[self._keys.record(record_id), self._keys.outcome(feedback.kind, feedback.outcome), *others],
            args=[
                feedback.kind,
                feedback.model_dump_json(),
                _ms(feedback.at),
                record_id,
                self._retention_s,
                horizon,
            ],
        )
        return bool(applied)

    async def get(self, record_id: str) -> RecordFeedback:
        resolution, follow_up = await self._redis.hmget(
            self._keys.record(record_id), ["resolution", "follow_up"]
        )
        return RecordFeedback(
            resolution=Resolution.model_validate_json(resolution) if resolution else None,
            follow_up=FollowUp.model_validate_json(follow_up) if follow_up else None,
        )

    async def rates(self, since: dt.datetime, until: dt.datetime) -> FeedbackRates:
        pairs = [(kind, outcome) for kind, outcomes in OUTCOMES.items() for outcome in outcomes]
        names = [f"{kind}:{outcome}" for kind, outcome in pairs]
        async with self._redis.pipeline(transaction=False) as pipe:
            for kind, outcome in pairs:
                pipe.zcount(self._keys.outcome(kind, outcome), _ms(since), _ms(until))
            counts = await pipe.execute()
        return FeedbackRates(since=since, until=until, counts=dict(zip(names, map(int, counts), strict=True)))


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


def feedback_routes(
    store: FeedbackStore,
    token_env: str,
    *,
    environ: Mapping[str, str] | None = None,
    on_feedback: Callable[[str, Resolution | FollowUp], Awaitable[None]] | None = None,
) -> list[web.RouteDef]:
    """``POST /api/records/{record_id}/feedback`` for the order system, with its own bearer token.

    ``token_env`` names the environment variable holding the token the order system presents.
    ``on_feedback`` (the reports) hears every valid post, applied or repeated, so a post retried
    after it failed there still reaches it; it must be idempotent.
    """
    token = token_from_env(token_env, "the token the order system presents when posting feedback", environ)
    record_ids = TypeAdapter(RecordId)

    async def post_feedback(request: web.Request) -> web.Response:
        if not bearer_matches(request.headers.get("Authorization"), token):
            return _error(401, "feedback.unauthorized", "missing or wrong bearer token")
        record_id = request.match_info["record_id"]
        try:
            record_ids.validate_python(record_id)
            feedback = FEEDBACK.validate_json(await request.read())
        except ValidationError as exc:
            errors = exc.errors()
            if any(
                e["type"] == "json_invalid" for e in errors
            ):  # not JSON, or nested past the parser's limit
                return _error(400, "feedback.invalid_json", "the request body is not valid JSON")
            problems = [f"{'.'.join(map(str, e['loc'])) or 'path'}: {e['msg']}" for e in errors]
            return _error(422, "feedback.invalid", "; ".join(problems))
        latest = dt.datetime.now(dt.UTC) + MAX_CLOCK_SKEW
        if feedback.at > latest:
            return _error(422, "feedback.invalid", f"at: {feedback.at.isoformat()} is in the future")
        if not await store.produced(record_id):
            return _error(404, "feedback.unknown_record", f"no record {record_id} was sent by this gateway")
        applied = await store.apply(record_id, feedback)
        if on_feedback is not None:
            await on_feedback(record_id, feedback)
        log.info(
            "record_feedback",
            record_id=record_id,
            kind=feedback.kind,
            outcome=feedback.outcome,
            applied=applied,
        )
        return web.json_response({"record_id": record_id, "kind": feedback.kind, "applied": applied})

    return [web.post(FEEDBACK_PATH, post_feedback)]
