"""Seats on the real PBX: log in by API and by *71 from the phone, pause with a reason while idle
and during a call; the gateway's view against QueueStatus."""

from __future__ import annotations

import pytest

from bench.harness.system import until
from tests.real.conftest import RealStack
from tests.real.traces import recorded

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_login_and_logout_by_api(real: RealStack) -> None:
    seat = real.fresh_seat()
    await real.login(seat)
    member = (await real.members("hotline-general"))[seat]
    assert member["Name"] == (await real.agent(seat))["name"]
    assert member["StateInterface"] == f"PJSIP/{seat}"
    await real.logout(seat)
    assert seat not in await real.members("hotline-general")


async def test_login_and_logout_by_star_codes_from_the_phone(real: RealStack) -> None:
    seat = "2002"  # an expert seat: *71 adds it to expert-market and hotline-general
    await real.seat_dials(seat, "*71")
    await until(lambda: _state(real, seat, "ready"), within=15, what=f"{seat} ready after *71")
    assert seat in await real.members("expert-market")
    assert seat in await real.members("hotline-general")
    assert sorted((await real.agent(seat))["queues"]) == ["expert-market", "hotline-general"]
    await real.seat_dials(seat, "*72")
    await until(lambda: _state(real, seat, "logged_out"), within=15, what=f"{seat} logged out after *72")
    assert seat not in await real.members("expert-market")


async def _state(stack: RealStack, seat: str, state: str) -> bool:
    return bool((await stack.agent(seat))["state"] == state)


async def test_pause_with_a_reason_while_idle(real: RealStack) -> None:
    seat = real.fresh_seat()
    async with real.seats_in(seat):
        await real.post(f"/api/agents/{seat}/pause", {"reason": "小休"}, role="seat")
        await until(lambda: _state(real, seat, "paused"), within=10, what="paused")
        member = (await real.members("hotline-general"))[seat]
        assert (member["Paused"], member["PausedReason"]) == ("1", "小休")
        assert (await real.agent(seat))["reason"] == "小休"
        await real.post(f"/api/agents/{seat}/unpause", role="seat")
        await until(lambda: _state(real, seat, "ready"), within=10, what="ready again")
        assert (await real.members("hotline-general"))[seat]["Paused"] == "0"


async def test_pause_with_a_reason_during_a_call(real: RealStack) -> None:
    seat = real.fresh_seat()
    async with real.seats_in(seat), recorded(
        real, "03-pause-during-call",
        "A seat talking to a 12345 caller is paused with reason 会议 through the gateway (QueuePause); then "
        "the caller hangs up and the seat, still paused, enters the queue's wrap-up time.",
    ) as trace:  # fmt: skip
        citizen = await real.dial("12345")
        await real.wait_live_call(citizen.number, state="talking", within=40)
        await real.post(f"/api/agents/{seat}/pause", {"reason": "会议"}, role="seat")
        trace.note(f"seat {seat} paused (会议) during the call")
        member = (await real.members("hotline-general"))[seat]
        assert (member["Paused"], member["PausedReason"], member["InCall"]) == ("1", "会议", "1")
        await real.hang_up(citizen)
        trace.note("citizen hung up")
        await real.order_of(citizen.number)
        member = (await real.members("hotline-general"))[seat]
        assert member["Paused"] == "1"
        agent = await real.agent(seat)
        assert (agent["state"], agent["reason"]) == ("paused", "会议")
