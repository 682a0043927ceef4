"""Listen, whisper, barge: ring the supervisor's own phone into ChanSpy on a seat's channel.

The gateway never splices outside input into ChanSpy's arguments: the channel to spy on is the
tracker's own record of the seat's leg, checked against ``SPY_TARGET`` (a complete channel name:
technology, resource, the ``-XXXXXXXX`` counter, no commas or brackets), and it travels as the
channel variable ``VAR_SPY_TARGET`` of an Originate built by ``gateway.ami.safety``; the mode
picks one of the dialplan's fixed extensions (``dialplan.render.SUPERVISE_MODES``). Every use is
audited, allowed or not: a structured log line and an entry in the Redis stream ``keys.SUPERVISE_AUDIT``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import keys
from gateway.ami import safety
from gateway.ami.errors import AmiError
from gateway.ami.result import ActionResult
from gateway.calls.model import Call
from gateway.contract import (
    SUPERVISE_CONTEXT,
    SUPERVISE_MODES,
    SUPERVISOR_PHONE_CONTEXT,
    SUPERVISOR_RING_S,
    VAR_SPY_TARGET,
)
from gateway.errors import GatewayError
from gateway.vocabulary import PartyKind

log = structlog.get_logger(__name__)

AUDIT_MAXLEN = 100_000  # about a year of a busy centre's uses; trimmed approximately
SPY_TARGET = re.compile(r"(?:PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.+@\-]{1,80}-[0-9a-f]{8}(?:;[12])?")


class Mode(StrEnum):
    LISTEN = "listen"  # 监听: hears both sides, nobody hears the supervisor
    WHISPER = "whisper"  # 耳语: the seat hears the supervisor, the caller does not
    BARGE = "barge"  # 强插: both hear the supervisor


LABELS = {Mode.LISTEN: "监听", Mode.WHISPER: "耳语", Mode.BARGE: "强插"}
assert set(SUPERVISE_MODES) == {m.value for m in Mode}, "the dialplan renders one extension per mode"


class SuperviseError(GatewayError):
    """A refused request; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class Use:
    who: str  # the supervisor's token_id
    mode: Mode
    call_id: str
    extension: str | None


def supervisor_extension(extensions: Mapping[str, str], identity: str) -> str | None:
    """The phone of the supervisor behind ``identity`` (HOTLINE_SUPERVISOR_EXTENSIONS)."""
    return extensions.get(identity) if identity else None


def seat_channel(call: Call) -> str | None:
    """The channel of the seat talking on the call now (the latest one that answered)."""
    for party in reversed(call.parties):
        leg = call.legs.get(party.leg or "")
        if party.kind is PartyKind.SEAT and party.active and leg is not None:
            return leg.channel
    return None


class SuperviseService:
    def __init__(
        self,
        send: Callable[[safety.Action], Awaitable[ActionResult]],
        find_call: Callable[[str], Call | None],
        redis: Redis,
    ) -> None:
        self._send = send
        self._find_call = find_call
        self._redis = redis

    async def start(self, use: Use) -> dict[str, str]:
        """Ring the supervisor into ChanSpy on the call's seat; the audit entry, as sent to Redis."""
        try:
            call, target = self._target(use)
            await self._send(self._originate(use, call, target))
        except (SuperviseError, AmiError) as exc:
            await self._audit(
                use, "", f"refused: {exc}" if isinstance(exc, SuperviseError) else f"failed: {exc}"
            )
            raise
        return await self._audit(use, target, "ringing")

    def _target(self, use: Use) -> tuple[Call, str]:
        if use.extension is None:
            raise SuperviseError(
                403, "supervise.no_phone", "no phone is configured for you (HOTLINE_SUPERVISOR_EXTENSIONS)"
            )
        call = self._find_call(use.call_id)
        if call is None:
            raise SuperviseError(404, "call.not_found", f"no live call {use.call_id!r}")
        channel = seat_channel(call)
        if channel is None:
            raise SuperviseError(409, "supervise.no_seat", f"call {use.call_id} is not connected to a seat")
        if not SPY_TARGET.fullmatch(channel):
            raise SuperviseError(
                409, "supervise.bad_channel", f"the seat's channel {channel!r} cannot be spied on"
            )
        return call, channel

    def _originate(self, use: Use, call: Call, target: str) -> safety.Action:
        return safety.originate(
            f"Local/{use.extension}@{SUPERVISOR_PHONE_CONTEXT}",
            context=SUPERVISE_CONTEXT,
            exten=use.mode.value,
            caller_id_name=f"12345{LABELS[use.mode]}",
            caller_id_number=call.caller_number
            if call.caller_number and call.caller_number.isdigit()
            else None,
            channel_variables={VAR_SPY_TARGET: target},
            timeout_ms=(SUPERVISOR_RING_S + 5) * 1000,
        )

    async def _audit(self, use: Use, target: str, result: str) -> dict[str, str]:
        entry = {
            "who": use.who,
            "mode": use.mode.value,
            "call_id": use.call_id,
            "target": target,
            "extension": use.extension or "",
            "result": result,
            "at": f"{time.time():.3f}",
        }
        log.info("supervise.audit", **entry)
        try:
            # redis-py's stubs want a dict keyed by its whole (invariant) union of field types.
            fields = cast(dict[Any, Any], entry)
            await self._redis.xadd(keys.SUPERVISE_AUDIT, fields, maxlen=AUDIT_MAXLEN, approximate=True)
        except (RedisError, OSError) as exc:
            log.error("supervise.audit_not_stored", error=str(exc), **entry)
        return entry
