"""The dashboard's 监听 / 耳语 / 强插 buttons in a real Chromium, through the real route and service.

The service's AMI port records the Originate it would send (the simulator test covers what the
PBX does with it); the audit goes to a real Redis.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from gateway import keys
from gateway.ami import safety
from gateway.ami.protocol import Message
from gateway.ami.result import ActionResult
from gateway.audit import AuditLog
from gateway.calls.model import Call, Leg, LegRole, Party
from gateway.settings import token_id
from gateway.supervise.http import setup_supervise
from gateway.supervise.service import SuperviseService
from gateway.vocabulary import PartyKind
from gateway.web.live import LiveHub
from tests.browser.chromium import Console, log_in
from tests.browser.scene import SUPERVISOR_TOKEN, busy_floor, make_app

SEAT_LEG = "Local/1001@agents-0000001a;1"
NOW = dt.datetime(2026, 12, 2, 9, 30, tzinfo=dt.UTC)


def live_call() -> Call:
    call = Call("citizen-7", NOW, 0.0, citizen=True, caller_number="13900000007")
    call.legs["seat-leg"] = Leg("seat-leg", SEAT_LEG, LegRole.SEAT)
    call.parties.append(
        Party(PartyKind.SEAT, "1001", "hotline-general", NOW, "seat-leg", "caller-leg", answered_at=NOW)
    )
    return call


@pytest.fixture
async def supervised(
    hub: LiveHub, redis_client: aioredis.Redis
) -> AsyncIterator[tuple[TestServer, list[safety.Action]]]:
    sent: list[safety.Action] = []

    async def send(action: safety.Action) -> ActionResult:
        sent.append(action)
        return ActionResult(action.name, "1", Message([("Response", "Success")]))

    app = make_app(hub, redis_client)
    calls = {"citizen-7": live_call()}
    setup_supervise(
        app, SuperviseService(send, calls.get, AuditLog(redis_client)), {token_id(SUPERVISOR_TOKEN): "8001"}
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, sent
    await server.close()


async def test_listen_button_rings_the_supervisor_into_the_seat_call(
    page: Page, hub: LiveHub, supervised: tuple[TestServer, list[safety.Action]], redis_client: aioredis.Redis,
    console: Console,
) -> None:  # fmt: skip
    server, sent = supervised
    floor = busy_floor()
    talking = next(i for i, s in enumerate(floor.seats) if s.state == "on_call")
    floor.seats[talking] = dataclasses.replace(floor.seats[talking], extension="1001", call_id="citizen-7")
    idle = next(s for s in floor.seats if s.state == "ready")
    hub.publish(floor.snapshot())
    await log_in(page, f"http://127.0.0.1:{server.port}", SUPERVISOR_TOKEN)

    await expect(
        page.get_by_test_id(f"seat-{idle.extension}").get_by_test_id("supervise-listen")
    ).to_be_hidden()
    tile = page.get_by_test_id("seat-1001")
    await expect(tile.get_by_test_id("supervise-barge")).to_have_text("强插")
    await tile.get_by_test_id("supervise-listen").click()
    await expect(tile.locator(".supervise")).to_have_attribute("data-result", "ringing")
    await expect(tile.locator(".supervise")).to_have_attribute("title", "监听: 正在呼叫您的电话")
    (originate,) = sent
    headers = dict(originate.headers)
    assert (headers["Channel"], headers["Context"], headers["Exten"]) == (
        "Local/8001@hotline-supervisor-phone", "hotline-supervise", "listen",
    )  # fmt: skip
    assert headers["Variable"] == f"HOTLINE_SPY_TARGET={SEAT_LEG}"
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis_client.xrange(keys.AUDIT))
    # The service's entry, then the middleware's for the request: both name the cookie session's identity.
    who = f"env:{token_id(SUPERVISOR_TOKEN)}".encode()
    assert [(f[b"who"], f[b"action"], f[b"result"]) for _, f in entries[-2:]] == [
        (who, b"supervise.listen", b"ringing"), (who, b"POST /api/calls/{call_id}/supervise", b"202"),
    ]  # fmt: skip
    assert console.errors == []
