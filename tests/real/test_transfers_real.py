"""Hand-overs on the real PBX, through the gateway's API: blind to an expert queue, consult with
Atxfer to the policy specialists, three-way with 120, 110 linkage, and the one-hand-over 409; a
supervisor listening in with ChanSpy (recorded for the simulator's conformance work)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.harness.system import until
from tests.real.conftest import Citizen, RealStack
from tests.real.traces import recorded

pytestmark = pytest.mark.asyncio(loop_scope="session")

EXPERT = "2001"  # logged in to expert-market only, so 12345 calls never ring it
SPECIALIST = "4001"


async def transfer(stack: RealStack, caller: str, target: str, mode: str) -> tuple[int, dict[str, Any]]:
    call = await stack.wait_live_call(caller)
    status, body = await stack.request(
        "POST", f"/api/calls/{call['id']}/transfer", {"target": target, "mode": mode}, role="seat"
    )
    return status, body


async def transfer_state(
    stack: RealStack, transfer_id: str, state: str, within: float = 30
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        seen.update((await stack.get(f"/api/transfers/{transfer_id}", role="seat"))["transfer"])
        return bool(seen["state"] == state)

    try:
        await until(reached, within=within, what=f"transfer {transfer_id} {state}")
    except TimeoutError as e:
        raise AssertionError(f"{e}; last seen {seen}") from e
    return seen


async def talking_to_seat(stack: RealStack) -> tuple[str, Citizen]:
    seat = stack.fresh_seat()
    await stack.login(seat)
    citizen = await stack.dial("12345")
    await stack.wait_live_call(citizen.number, state="talking", within=40)
    return seat, citizen


async def test_blind_to_an_expert_queue_then_a_second_hand_over_is_409(real: RealStack) -> None:
    await real.post(f"/api/agents/{EXPERT}/login", {"queues": ["expert-market"]}, role="seat")
    seat, citizen = await talking_to_seat(real)
    try:
        status, body = await transfer(real, citizen.number, "expert-market", "blind")
        assert status == 201, body
        done = await transfer_state(real, body["transfer"]["id"], "completed")
        assert done["mode"] == "blind"
        # Asterisk: the caller now talks to the expert's phone.
        await until(lambda: _seat_has_call(real, EXPERT), within=10, what="the expert's phone has the call")
        status, body = await transfer(real, citizen.number, "policy-specialist", "blind")
        assert (status, body["error"]["code"]) == (409, "transfer.limit"), body
        await real.hang_up(citizen)
        order = await real.order_of(citizen.number)
    finally:
        await real.logout(seat)
        await real.post(f"/api/agents/{EXPERT}/logout", {"queues": ["expert-market"]}, role="seat")
    assert order["seat_ids"] == [seat, EXPERT]
    assert [(h["mode"], h["target"], h["outcome"]) for h in order["handovers"]] == [
        ("blind", "expert-market", "completed")
    ]
    assert [v["queue"] for v in order["queues"]][:1] == ["hotline-general"]


async def _seat_has_call(stack: RealStack, seat: str) -> bool:
    return await stack.seat_channel(seat) is not None


async def test_consult_with_atxfer_to_the_policy_specialists(real: RealStack) -> None:
    await real.login(SPECIALIST)
    seat, citizen = await talking_to_seat(real)
    try:
        async with recorded(
            real, "04-consult-atxfer",
            "A seat talking to a 12345 caller consults the policy specialists through the gateway "
            "(Atxfer to hotline-handover 7007: Queue(policy-specialist)); the specialist's phone answers, "
            "the gateway completes the transfer (the seat's leg hangs up), the caller talks to the "
            "specialist and hangs up.",
        ) as trace:  # fmt: skip
            status, body = await transfer(real, citizen.number, "policy-specialist", "consult")
            assert status == 201, body
            transfer_id = body["transfer"]["id"]
            trace.note(f"consult requested: {transfer_id}")
            await transfer_state(real, transfer_id, "answered")
            trace.note("specialist answered the consultation")
            reply = await real.request("POST", f"/api/transfers/{transfer_id}/complete", {}, role="seat")
            assert reply[0] == 202, reply  # accepted: AttendedTransfer completes it
            await transfer_state(real, transfer_id, "completed")
            trace.note("transfer completed")
            assert await real.seat_channel(seat) is None  # the seat's phone is free again
            await real.hang_up(citizen)
            trace.note("citizen hung up")
            order = await real.order_of(citizen.number)
    finally:
        await real.logout(seat)
        await real.logout(SPECIALIST)
    assert [(h["mode"], h["target"], h["outcome"]) for h in order["handovers"]] == [
        ("consult", "policy-specialist", "completed")
    ]
    assert SPECIALIST in order["seat_ids"]


async def test_three_way_with_120(real: RealStack) -> None:
    seat, citizen = await talking_to_seat(real)
    try:
        status, body = await transfer(real, citizen.number, "120", "threeway")
        assert status == 201, body
        await transfer_state(real, body["transfer"]["id"], "completed")
        # Asterisk: a ConfBridge room holds the caller, the seat and the carrier's 120 leg.
        channels = await real.pbx_channels()
        in_room = [c for c in channels if c.get("Application") == "ConfBridge"]
        assert len(in_room) >= 2, channels
        assert any((c["Channel"].startswith("PJSIP/carrier-trunk") and c.get("Exten") == "120") or
                   "120" in c.get("ApplicationData", "") for c in channels) or in_room  # fmt: skip
        await real.hang_up(citizen)
        order = await real.order_of(citizen.number)
    finally:
        await real.logout(seat)
    assert order["disposition"]["kind"] == "emergency_handover"
    assert order["disposition"]["emergency_service"] == "120"
    assert [(h["mode"], h["target"]) for h in order["handovers"]] == [("threeway", "120")]


async def test_110_linkage_hand_over(real: RealStack) -> None:
    seat, citizen = await talking_to_seat(real)
    try:
        status, body = await transfer(real, citizen.number, "110", "blind")
        assert status == 201, body
        await transfer_state(real, body["transfer"]["id"], "completed")
        # Asterisk dialled 110 through the carrier trunk and the carrier answered.
        assert await real.seat_channel("110") is not None  # the carrier's 110 side has the call
        status, body = await transfer(real, citizen.number, "expert-market", "blind")
        assert (status, body["error"]["code"]) == (409, "transfer.limit"), body
        await real.hang_up(citizen)
        order = await real.order_of(citizen.number)
    finally:
        await real.logout(seat)
    assert order["disposition"]["emergency_service"] == "110"
    assert [(h["mode"], h["target"], h["outcome"]) for h in order["handovers"]] == [
        ("blind", "110", "completed")
    ]


async def test_supervisor_listens_in_with_chanspy(real: RealStack) -> None:
    """Not a gateway feature: recorded so the simulator's authors see what ChanSpy emits."""
    supervisor = "1001"  # a phone that answers at once
    seat, citizen = await talking_to_seat(real)
    try:
        async with recorded(
            real, "05-chanspy-listen",
            "A seat talks to a 12345 caller; a supervisor's phone (PJSIP/1001) is originated into "
            "ChanSpy(<caller channel>,q) and listens for a few seconds, then hangs up; the caller hangs up.",
        ) as trace:  # fmt: skip
            channels = await real.pbx_channels()
            caller = next(
                c["Channel"] for c in channels
                if c["Channel"].startswith("PJSIP/carrier-trunk") and c["CallerIDNum"] == citizen.number
            )  # fmt: skip
            reply = await trace.action(
                "Originate",
                Channel=f"PJSIP/{supervisor}",
                Application="ChanSpy",
                Data=f"{caller},q",
                Async="true",
            )
            assert reply[0]["Response"] == "Success", reply
            trace.note(f"supervisor {supervisor} spies on {caller}")
            await trace.wait_event(lambda e: e.get("Event") == "ChanSpyStart", what="ChanSpyStart", within=15)
            await real.seat_hangs_up(supervisor)
            trace.note("supervisor hung up")
            await trace.wait_event(lambda e: e.get("Event") == "ChanSpyStop", what="ChanSpyStop", within=15)
            await real.hang_up(citizen)
            trace.note("citizen hung up")
            order = await real.order_of(citizen.number)
    finally:
        await real.logout(seat)
    # The listener is no party of the call: one seat, no hand-over.
    assert order["seat_ids"] == [seat]
    assert order["handovers"] == []
