"""Changes and faults with calls up on the real PBX: a hot reload that moves a line back before its
cutover date and changes another line's mode mid-call, ``core restart now``, and the gateway
killed -9 with a second gateway taking its node over. Each test leaves the stack as it found it."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator

import pytest

from bench.harness.system import Process, until
from gateway.localredis import free_port
from tests.real.conftest import CONFIG, RealStack

pytestmark = pytest.mark.asyncio(loop_scope="session")

EXPERT = "2001"


@contextlib.asynccontextmanager
async def edited_config(stack: RealStack, *replacements: tuple[str, str]) -> AsyncIterator[None]:
    """The merge config with ``replacements`` applied and hot-reloaded; the shipped one after."""
    text = CONFIG.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    stack.config_path.write_text(text, encoding="utf-8")
    try:
        reply = await stack.post("/api/config/reload", role="admin")
        assert reply["reloaded"], reply
        yield
    finally:
        shutil.copy(CONFIG, stack.config_path)
        await stack.post("/api/config/reload", role="admin")


async def test_hot_reload_changes_modes_with_a_call_up(real: RealStack) -> None:
    seat = real.fresh_seat()
    await real.post(f"/api/agents/{EXPERT}/login", {"queues": ["expert-market"]}, role="seat")
    try:
        async with real.seats_in(seat):
            before = await real.dial("12331")  # merged, before the reload
            await real.wait_live_call(before.number, state="talking", within=40)
            async with edited_config(
                real,
                # 12365 back before its cutover date: its old queue again (mode legacy).
                ('cutover: "2021-03-01", old_queue: expert-market', 'cutover: "2099-03-01", old_queue: expert-market'),
                # 12331 from merged to parallel, with the call above still up.
                ("mode: merged, announcement: 您拨打的12331热线已并入12345，正在为您转接。}", "mode: parallel, queue: expert-market}"),
            ):  # fmt: skip
                # The call up is untouched: Asterisk still has it, the gateway still tracks it.
                assert (await real.live_call(before.number) or {}).get("state") == "talking"
                legacy = await real.dial("12365")
                call = await real.wait_live_call(legacy.number, state="talking", within=40)
                assert (call["queue"], call["seats"]) == ("expert-market", [EXPERT])
                legacy_mode = call["merge_mode"]
                await real.hang_up(legacy)
                legacy_order = await real.order_of(legacy.number)
                await real.hang_up(before)
                before_order = await real.order_of(before.number)
            # After: 12365 is merged again (cutover in the past) and goes to the general seats.
            after = await real.dial("12365")
            call = await real.wait_live_call(after.number, state="talking", within=40)
            assert (call["merge_mode"], call["queue"]) == ("merged", "hotline-general")
            await real.hang_up(after)
            await real.order_of(after.number)
    finally:
        await real.post(f"/api/agents/{EXPERT}/logout", {"queues": ["expert-market"]}, role="seat")
    assert (before_order["merge_mode"], before_order["disposition"]["kind"]) == ("merged", "answered")
    assert [v["queue"] for v in legacy_order["queues"]] == ["expert-market"]
    # Found by this tier: the legacy route sets MERGE_MODE to the line's configured mode.
    assert (legacy_mode, legacy_order["merge_mode"]) == ("legacy", "legacy")


async def test_asterisk_restart_with_calls_up_leaves_no_ghosts(real: RealStack) -> None:
    seat = real.fresh_seat()
    async with real.seats_in(seat):
        talking = await real.dial("12345")
        await real.wait_live_call(talking.number, state="talking", within=40)
        waiting = await real.dial("12345")
        await real.wait_live_call(waiting.number, state="waiting", within=20)
        await real.pbx.restart_now()
        await real.reconnect_pbx_ami()  # the restart closed every AMI session
        # Asterisk has no calls; the gateway follows, and both calls are work orders.
        assert not [c for c in await real.pbx_channels() if c["Channel"].startswith("PJSIP/")]
        await until(lambda: _no_live_calls(real), within=30, what="gateway: no ghost calls after the restart")
        for citizen in (talking, waiting):
            order = await real.order_of(citizen.number, within=60)
            assert order["disposition"]["kind"] in {"pbx_outage", "answered", "abandoned"}, order
        # Seats stay logged in (persistentmembers) and the gateway knows it after its resync.
        await until(lambda: _ready(real, seat), within=30, what=f"seat {seat} ready after the restart")
        assert seat in await real.members("hotline-general")
        # The PBX takes calls again.
        again = await real.dial("12345")
        await real.wait_live_call(again.number, state="talking", within=40)
        await real.hang_up(again)
        await real.order_of(again.number)


async def _no_live_calls(stack: RealStack) -> bool:
    return not (await stack.get("/api/calls"))["calls"]


async def _ready(stack: RealStack, seat: str) -> bool:
    return bool((await stack.agent(seat))["state"] == "ready")


async def test_gateway_kill_9_a_second_gateway_takes_over(real: RealStack) -> None:
    seat = real.fresh_seat()
    port = free_port()
    second_url = f"http://127.0.0.1:{port}"
    env = real.env | {"HOTLINE_HTTP_PORT": str(port), "HOTLINE_SPOOL_DIR": str(real.workdir / "spool-2")}
    second = Process("gateway-2", real.processes["gateway"].argv, env, real.workdir / "logs")
    first = real.processes["gateway"]
    await second.start()
    # Seats log out (finally) through the first gateway, so only once it is back in control.
    async with real.seats_in(seat):
        try:
            citizen = await real.dial("12345")
            await real.wait_live_call(citizen.number, state="talking", within=40)
            await until(
                lambda: _role(real, second_url, "standby"), within=30, what="second gateway standing by"
            )
            await first.kill()
            await until(lambda: _role(real, second_url, "active"), within=30, what="second gateway active")
            # The second gateway sees the call that was up when it took over.
            await until(
                lambda: _tracks(real, second_url, citizen.number),
                within=30,
                what="second gateway has the call",
            )
            await real.hang_up(citizen)
            order = await real.order_of(citizen.number, within=60)
            assert order["caller_number"] == citizen.number
        finally:
            # Back as before: the first gateway controls the node again.
            if not first.running:
                await first.start()
            await second.stop()
            await until(
                lambda: _role(real, real.gateway_url, "active"), within=60, what="first gateway active again"
            )
            await until(real.ready, within=30, what="first gateway ready again")


async def _role(stack: RealStack, base: str, role: str) -> bool:
    with contextlib.suppress(Exception):
        status, body = await stack.request("GET", "/api/status", base=base)
        return status == 200 and body["role"] == role
    return False


async def _tracks(stack: RealStack, base: str, caller: str) -> bool:
    status, body = await stack.request("GET", "/api/calls", base=base)
    return status == 200 and any(c["caller"] == caller for c in body["calls"])
