"""Listen / whisper / barge end to end: the API, the gateway's Originate, the simulator's ChanSpy.

The same stack as the hand-over tests (gateway app on loopback, real Redis, the simulator running
the rendered dialplan over TCP). The supervisor's phone is a simulated phone that answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import redis.asyncio as aioredis

from gateway import keys
from gateway.localredis import LocalRedis
from gateway.settings import token_id
from gateway.sim.chanspy import ChanSpy
from tests.integration.test_transfers import Stack, open_stack
from tests.support.polling import until

PHONE = "8001"


@pytest.fixture
async def stack(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Stack]:
    async with open_stack(redis_server, redis_client, tmp_path) as opened:
        opened.env["HOTLINE_SUPERVISOR_EXTENSIONS"] = f"{opened.env['HOTLINE_SUPERVISOR_TOKENS']}={PHONE}"
        await opened.restart_gateway()
        yield opened


def spies(stack: Stack) -> list[ChanSpy]:
    found = []
    for channel in stack.sim.pbx.live_channels():
        state = getattr(channel.activity, "state", None)
        if isinstance(state, ChanSpy) and state.spyee is not None:
            found.append(state)
    return found


async def audit(stack: Stack, count: int) -> list[dict[str, str]]:
    """The audit log's supervise entries (the middleware's own entry per request aside)."""
    entries: list[dict[str, str]] = []

    async def written() -> bool:
        raw = cast(list[tuple[bytes, dict[bytes, bytes]]], await stack.redis.xrange(keys.AUDIT))
        every = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in raw]
        entries[:] = [e for e in every if e["action"].startswith("supervise.")]
        return len(entries) >= count

    await until(written, f"{count} audit entries")
    return entries


@pytest.mark.parametrize(("mode", "options"), [("listen", "qES"), ("whisper", "qESw"), ("barge", "qESB")])
async def test_a_supervisor_is_rung_into_chanspy_on_the_seat_channel(
    stack: Stack, mode: str, options: str
) -> None:
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    seat_leg = next(leg.channel for leg in stack.call("citizen-1").legs.values() if "@agents-" in leg.channel)
    status, body = await stack.api(
        "POST", "/api/calls/citizen-1/supervise", {"mode": mode}, role="supervisor"
    )
    assert status == 202, body
    await until(lambda: len(spies(stack)) == 1, "the supervisor spying")
    (spy,) = spies(stack)
    assert spy.spyee is not None
    assert (spy.spyee.name, spy.options) == (seat_leg, options)
    assert spy.spyer.name.startswith(f"Local/{PHONE}@hotline-supervisor-phone-")
    # Listening changes nothing on the call: the caller still talks with the seat.
    assert any(p.party == "1001" and p.active for p in stack.call("citizen-1").parties)
    (entry,) = await audit(stack, 1)
    assert (entry["who"], entry["role"]) == (
        f"env:{token_id(stack.env['HOTLINE_SUPERVISOR_TOKENS'])}",
        "supervisor",
    )
    assert (entry["action"], entry["target"], entry["result"]) == (
        f"supervise.{mode}", f"call_id=citizen-1,channel={seat_leg},phone={PHONE}", "ringing",
    )  # fmt: skip
    assert float(entry["at"]) > 0
    assert entry["client"] == "127.0.0.1"
    # The call ends: ChanSpy ends with it (option E) and the supervisor's phone is hung up.
    stack.caller_hangs_up("citizen-1")
    await until(
        lambda: not any(c.name.startswith(f"Local/{PHONE}@") for c in stack.sim.pbx.live_channels()),
        "the spy leg gone",
    )


async def test_only_supervisors_with_a_phone_may_listen_and_every_try_is_audited(stack: Stack) -> None:
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    path = "/api/calls/citizen-1/supervise"
    for role in ("seat", "admin"):
        status, body = await stack.api("POST", path, {"mode": "listen"}, role=role)
        assert (status, body["error"]["code"]) == (403, "auth.forbidden"), role
    status, body = await stack.api("POST", path, {"mode": "eavesdrop"}, role="supervisor")
    assert (status, body["error"]["code"]) == (400, "supervise.invalid_mode")
    status, body = await stack.api(
        "POST", "/api/calls/nobody/supervise", {"mode": "listen"}, role="supervisor"
    )
    assert (status, body["error"]["code"]) == (404, "call.not_found")
    stack.env["HOTLINE_SUPERVISOR_EXTENSIONS"] = ""
    await stack.restart_gateway()
    status, body = await stack.api("POST", path, {"mode": "barge"}, role="supervisor")
    assert (status, body["error"]["code"]) == (403, "supervise.no_phone")
    assert not spies(stack)
    refused = await audit(stack, 2)
    assert [(e["target"], e["result"].split(":")[0]) for e in refused] == [
        ("call_id=nobody,channel=,phone=8001", "refused"), ("call_id=citizen-1,channel=,phone=", "refused"),
    ]  # fmt: skip
    # The middleware's entries cover the refusals before the service: the roles and the bad mode.
    raw = cast(list[tuple[bytes, dict[bytes, bytes]]], await stack.redis.xrange(keys.AUDIT))
    statuses = [
        f[b"result"].decode() for _, f in raw if f[b"action"] == b"POST /api/calls/{call_id}/supervise"
    ]
    assert statuses == [
        "403 auth.forbidden", "403 auth.forbidden", "400 supervise.invalid_mode", "404 call.not_found",
        "403 supervise.no_phone",
    ]  # fmt: skip
