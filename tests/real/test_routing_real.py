"""Every merge mode on the real PBX, over SIP: the gateway's API and work orders against what
Asterisk says (QueueStatus, CoreShowChannels, queue_log, CDR, the recording on disk)."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from bench.harness.system import until
from tests.real.conftest import RealStack

pytestmark = pytest.mark.asyncio(loop_scope="session")


def events_of(stack: RealStack, callid: str) -> list[str]:
    return [row[4] for row in stack.queue_log(callid)]


async def channel_in(stack: RealStack, context: str) -> bool:
    return any(c.get("Context") == context for c in await stack.pbx_channels())


async def test_12345_answered_survey_by_dtmf_and_recording(real: RealStack) -> None:
    seat = real.fresh_seat()
    async with real.seats_in(seat):
        members = await real.members("hotline-general")
        assert seat in members
        assert members[seat]["Paused"] == "0"

        citizen = await real.dial("12345")
        call = await real.wait_live_call(citizen.number, state="talking", within=40)
        assert call["seats"] == [seat]
        assert (call["legacy_line"], call["merge_mode"]) == ("12345", "hotline")
        # Asterisk: the caller's channel sits in Queue() bridged to the seat's Local channel.
        channels = await real.pbx_channels()
        caller = next(
            c
            for c in channels
            if c["Channel"].startswith("PJSIP/carrier-trunk") and c["CallerIDNum"] == citizen.number
        )
        assert caller["Application"] == "Queue"
        assert any(c["Channel"].startswith(f"Local/{seat}@agents") for c in channels)

        await real.seat_hangs_up(seat)
        await until(lambda: channel_in(real, "hotline-survey"), within=10, what="caller in the survey")
        await real.press(citizen, "1")
        order = await real.order_of(citizen.number)

    assert order["legacy_line"] == "12345"
    assert order["merge_mode"] == "hotline"
    assert order["seat_ids"] == [seat]
    assert [(v["queue"], v["result"]) for v in order["queues"]] == [("hotline-general", "answered")]
    assert order["disposition"]["kind"] == "answered"
    assert order["survey"]["result"] == "satisfied"
    assert order["survey"]["key"] == "1"
    # queue_log agrees: one entry, connected to the seat, the seat hung up first.
    assert events_of(real, order["linkedid"]) == ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]
    # The MixMonitor file exists on the PBX and the work order links it.
    assert order["recordings"], order
    for recording in order["recordings"]:
        assert recording.startswith("calls/")
        path = real.pbx.calls_dir / recording.removeprefix("calls/")
        await until(partial(asyncio.to_thread, path.exists), within=10, what=f"{path} on disk")
    # CDR: the carrier's call is there with our number and an answered disposition.
    rows = [r for r in real.pbx.cdr_rows() if r[1] == citizen.number]
    assert any(r[14] == "ANSWERED" for r in rows), rows


async def test_merged_line_plays_its_announcement_then_general_seats(real: RealStack) -> None:
    seat = real.fresh_seat()
    async with real.seats_in(seat):
        citizen = await real.dial("12369")
        # Asterisk plays the line's announcement before the queue.
        await until(
            lambda: _playing(real, citizen.number, "hotline-announce-12369"), within=10, what="announcement"
        )
        call = await real.wait_live_call(citizen.number, state="talking", within=40)
        assert (call["legacy_line"], call["merge_mode"], call["seats"]) == ("12369", "merged", [seat])
        await real.hang_up(citizen)
        order = await real.order_of(citizen.number)
    assert order["merge_mode"] == "merged"
    assert order["department"] == "生态环境局"
    assert order["category_code"] == "060100"
    assert [(v["queue"], v["result"]) for v in order["queues"]] == [("hotline-general", "answered")]
    assert events_of(real, order["linkedid"]) == ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"]


async def _playing(stack: RealStack, number: str, prompt: str) -> bool:
    return any(
        c["Channel"].startswith("PJSIP/carrier-trunk")
        and c.get("CallerIDNum") == number
        and c.get("Application") == "Playback"
        and prompt in c.get("ApplicationData", "")
        for c in await stack.pbx_channels()
    )


async def test_subcentre_line_reaches_its_own_queue(real: RealStack) -> None:
    async with real.seats_in("3001"):
        citizen = await real.dial("12366")
        call = await real.wait_live_call(citizen.number, state="talking", within=40)
        assert (call["merge_mode"], call["queue"], call["seats"]) == ("subcenter", "subcenter-tax", ["3001"])
        await real.hang_up(citizen)
        order = await real.order_of(citizen.number)
    assert [(v["queue"], v["result"]) for v in order["queues"]] == [("subcenter-tax", "answered")]
    assert [row[2] for row in real.queue_log(order["linkedid"])] == ["subcenter-tax"] * 3
