"""Listen, whisper, barge: ring the supervisor's own phone into ChanSpy on a seat's channel.

The gateway never splices outside input into ChanSpy's arguments: the channel to spy on is the
tracker's own record of the seat's leg, checked against ``SPY_TARGET`` (a complete channel name:
technology, resource, the ``-XXXXXXXX`` counter, no commas or brackets), and it travels as the
channel variable ``VAR_SPY_TARGET`` of an Originate built by ``gateway.ami.safety``; the mode
picks one of the dialplan's fixed extensions (``dialplan.render.SUPERVISE_MODES``). Every use is
audited, allowed or not, through the one audit log (``gateway.audit``): action ``supervise.<mode>``,
with the call, the seat's channel and the supervisor's phone as its target.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from gateway.ami import safety
from gateway.ami.errors import AmiError
from gateway.ami.result import ActionResult
from gateway.audit import AuditEntry, AuditLog
from gateway.calls.model import Call
from gateway.contract import (
    SUPERVISE_CONTEXT,
    SUPERVISE_MODES,
    SUPERVISOR_PHONE_CONTEXT,
    SUPERVISOR_RING_S,
    VAR_SPY_TARGET,
)
from gateway.errors import GatewayError
from gateway.settings import ENV_NAME_PREFIX
from gateway.vocabulary import PartyKind

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
    who: str  # the supervisor's identity name (``gateway.web.auth.Identity.name``)
    client: str  # the peer address, for the audit log
    mode: Mode
    call_id: str
    extension: str | None


def supervisor_extension(extensions: Mapping[str, str], name: str) -> str | None:
    """The phone of the supervisor named ``name``: for an environment token (``env:<token_id>``),
    the one HOTLINE_SUPERVISOR_EXTENSIONS gives (keyed by token_id); named credentials have none."""
    token_id = name.removeprefix(ENV_NAME_PREFIX)
    return extensions.get(token_id) if token_id != name else None


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
        audit: AuditLog,
    ) -> None:
        self._send = send
        self._find_call = find_call
        self._audit = audit

    async def start(self, use: Use) -> dict[str, str]:
        """Ring the supervisor into ChanSpy on the call's seat; what was audited."""
        try:
            call, target = self._target(use)
            await self._send(self._originate(use, call, target))
        except (SuperviseError, AmiError) as exc:
            await self._record(
                use, "", f"refused: {exc}" if isinstance(exc, SuperviseError) else f"failed: {exc}"
            )
            raise
        return await self._record(use, target, "ringing")

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

    async def _record(self, use: Use, target: str, result: str) -> dict[str, str]:
        entry = {
            "mode": use.mode.value,
            "call_id": use.call_id,
            "target": target,
            "extension": use.extension or "",
            "result": result,
        }
        await self._audit.record(
            AuditEntry(
                who=use.who,
                role="supervisor",
                seat="",
                action=f"supervise.{use.mode.value}",
                target=f"call_id={use.call_id},channel={target},phone={entry['extension']}",
                result=result,
                client=use.client,
            )
        )
        return entry
