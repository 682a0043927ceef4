"""Queues on the real PBX: a parallel line's overflow, abandon, ring-no-answer, the elderly first,
the callback offer and the call back; API, live page and work orders against Asterisk."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from bench.harness.system import until
from tests.real.conftest import RealStack
from tests.real.phones import DEAD_SEAT
from tests.real.traces import recorded

pytestmark = pytest.mark.asyncio(loop_scope="session")

ELDERLY = "13800000001"  # hotline.priority_callers of hotline_merge.yaml


def queue_events(stack: RealStack, callid: str) -> list[tuple[str, str]]:
    return [(row[2], row[4]) for row in stack.queue_log(callid)]


async def today(stack: RealStack, queue: str) -> dict[str, Any]:
    return dict((await stack.queue(queue))["rates"]["24h"])


async def live_page_today(stack: RealStack, queue: str) -> dict[str, Any]:
    """The figures the dashboard shows (its snapshot), not the API's."""
    snapshot = await stack.get("/api/snapshot")
    view = next(q for q in snapshot["queues"] if q["name"] == queue)
    return dict(view["rates"]["24h"])


async def test_parallel_line_overflows_to_general_seats_after_its_wait(real: RealStack) -> None:
    seat = real.fresh_seat()  # no expert-health seat is logged in: the call must overflow
    before = await today(real, "expert-health")
    async with real.seats_in(seat), recorded(
        real, "01-parallel-timeout-overflow",
        "12320 (parallel, expert-health, overflow_after_s 20) with no expert seat logged in: Queue() times "
        "out after 20 s, the caller joins hotline-general and a general seat answers; the citizen hangs up.",
    ) as trace:  # fmt: skip
        citizen = await real.dial("12320")
        trace.note(f"citizen {citizen.number} dialled 12320")
        call = await real.wait_live_call(citizen.number, state="waiting", within=20)
        assert call["queue"] == "expert-health"
        assert len(await real.entries("expert-health")) == 1  # Asterisk agrees: one caller waiting
        call = await real.wait_live_call(citizen.number, state="talking", within=45)
        trace.note(f"overflowed and answered by general seat {seat}")
        assert call["queue"] == "hotline-general"
        assert call["seats"] == [seat]
        await real.hang_up(citizen)
        trace.note("citizen hung up")
        order = await real.order_of(citizen.number)
    assert queue_events(real, order["linkedid"])[:3] == [
        ("expert-health", "ENTERQUEUE"), ("expert-health", "EXITWITHTIMEOUT"), ("hotline-general", "ENTERQUEUE"),
    ]  # fmt: skip
    assert order["disposition"]["kind"] == "answered"
    assert order["seat_ids"] == [seat]
    # Defect 1: Asterisk's QueueCallerAbandon on a timeout made the gateway count an abandon.
    assert [(v["queue"], v["result"]) for v in order["queues"]] == [
        ("expert-health", "overflowed"), ("hotline-general", "answered"),
    ]  # fmt: skip
    after = await today(real, "expert-health")
    assert after["offered"] == before["offered"] + 1
    assert after["abandoned"] == before["abandoned"]
    assert (await live_page_today(real, "expert-health"))["abandoned"] == before["abandoned"]


async def test_abandon_while_waiting(real: RealStack) -> None:
    before = await today(real, "hotline-general")
    citizen = await real.dial("12345")
    await real.wait_live_call(citizen.number, state="waiting", within=20)
    entries = await real.entries("hotline-general")
    assert [e["CallerIDNum"] for e in entries] == [citizen.number]
    await real.hang_up(citizen)
    order = await real.order_of(citizen.number)
    assert order["disposition"]["kind"] == "abandoned"
    assert [(v["queue"], v["result"]) for v in order["queues"]] == [("hotline-general", "abandoned")]
    assert queue_events(real, order["linkedid"]) == [
        ("hotline-general", "ENTERQUEUE"),
        ("hotline-general", "ABANDON"),
    ]
    wanted = (before["offered"] + 1, before["abandoned"] + 1)

    async def counted(figures: Callable[[RealStack, str], Awaitable[dict[str, Any]]]) -> bool:
        now = await figures(real, "hotline-general")
        return (now["offered"], now["abandoned"]) == wanted

    # The figures follow the work order by a moment (KPI buckets): wait for them, API and page.
    await until(partial(counted, today), within=10, what=f"API: offered, abandoned = {wanted}")
    await until(
        partial(counted, live_page_today), within=10, what=f"live page: offered, abandoned = {wanted}"
    )


async def test_ring_no_answer_then_another_seat_answers(real: RealStack) -> None:
    seat = real.fresh_seat()
    async with real.seats_in(DEAD_SEAT):
        citizen = await real.dial("12345")
        await until(
            lambda: _logged(real, citizen.number, "RINGNOANSWER"), within=40, what="Asterisk: RINGNOANSWER"
        )
        agent = await real.agent(DEAD_SEAT)
        assert agent["state"] in {"ready", "ringing"}
        async with real.seats_in(seat):
            call = await real.wait_live_call(citizen.number, state="talking", within=40)
            assert call["seats"] == [seat]
            await real.hang_up(citizen)
            order = await real.order_of(citizen.number)
    legs = {leg["party"]: leg for leg in order["legs"]}
    assert legs[DEAD_SEAT]["answered_at"] is None
    assert legs[DEAD_SEAT]["ring_s"] >= 10
    assert legs[seat]["answered_at"] is not None
    assert order["seat_ids"] == [seat]


async def _logged(stack: RealStack, caller: str, event: str) -> bool:
    calls = {
        row[1]
        for row in stack.pbx.queue_log()
        if len(row) > 6 and row[4] == "ENTERQUEUE" and row[6] == caller
    }
    return any(row[1] in calls and row[4] == event for row in stack.pbx.queue_log())


async def test_elderly_caller_is_served_first(real: RealStack) -> None:
    seat = real.fresh_seat()
    first = await real.dial("12345")
    await real.wait_live_call(first.number, state="waiting", within=20)
    elderly = await real.dial("12345", number=ELDERLY)
    await real.wait_live_call(elderly.number, state="waiting", within=20)
    # Asterisk puts the registered elderly caller ahead of the one who came first.
    entries = await real.entries("hotline-general")
    assert [e["CallerIDNum"] for e in entries][:2] == [ELDERLY, first.number]
    async with real.seats_in(seat):
        call = await real.wait_live_call(ELDERLY, state="talking", within=30)
        assert call["seats"] == [seat]
        assert (await real.live_call(first.number) or {}).get("state") == "waiting"
        await real.hang_up(elderly)
        await real.hang_up(first)
    elderly_order = await real.order_of(ELDERLY)
    first_order = await real.order_of(first.number)
    assert elderly_order["disposition"]["kind"] == "answered"
    assert first_order["disposition"]["kind"] == "abandoned"


async def test_callback_offer_and_the_call_back(real: RealStack) -> None:
    seat = real.fresh_seat()
    async with recorded(
        real, "02-callback",
        "A caller waiting in hotline-general (no seat logged in) presses 1 (queues.conf context=hotline-callback): "
        "UserEvent HotlineCallback, confirmation, hang-up. A seat logs in; the gateway calls the citizen back "
        "through the carrier trunk (Originate), the citizen answers and is first in line for the seat.",
    ) as trace:  # fmt: skip
        citizen = await real.dial("12345")
        await real.wait_live_call(citizen.number, state="waiting", within=20)
        await real.press(citizen, "1")
        trace.note(f"citizen {citizen.number} pressed 1 while waiting")
        await trace.wait_event(
            lambda e: e.get("UserEvent") == "HotlineCallback", what="UserEvent HotlineCallback", within=10
        )
        order = await real.order_of(citizen.number)
        assert order["disposition"]["kind"] == "callback_requested"
        assert order["disposition"]["callback_number"] == citizen.number
        waiting = await real.get("/api/callbacks")
        assert citizen.number in str(waiting)
        async with real.seats_in(seat):
            trace.note(f"seat {seat} logged in: the gateway calls back")
            # The carrier answers the call back; the PBX queues the citizen for the seat.
            await until(
                lambda: _seat_talking(real, seat),
                within=40,
                what=f"seat {seat} talks to the called-back citizen",
            )
            await real.seat_hangs_up(seat)
            trace.note("seat hung up")
            await until(lambda: _no_calls(real), within=30, what="the call back over")
    callbacks = await real.get("/api/callbacks")
    assert citizen.number not in str(callbacks.get("waiting", callbacks))


async def _seat_talking(stack: RealStack, seat: str) -> bool:
    return bool((await stack.agent(seat))["state"] == "on_call")


async def _no_calls(stack: RealStack) -> bool:
    return not [c for c in await stack.pbx_channels() if c["Channel"].startswith("PJSIP/carrier-trunk")]
