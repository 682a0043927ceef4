"""Callbacks (回拨) end to end, on the harness of test_transfers: callers who pressed the callback key
are called back in order of their original arrival, never more at once than the queue has ready
seats, retried when unanswered, kept in Redis across a gateway restart, and the outcome lands in
the call's record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway import keys
from gateway.ami.protocol import Message
from gateway.localredis import LocalRedis
from gateway.sim.people import FarEnd
from tests.integration.test_transfers import TIME_SCALE, Stack, all_records, open_stack
from tests.support.polling import until

KEY_AFTER_S = {"citizen-a": 12.0, "citizen-b": 8.0, "citizen-c": 2.0}  # they ask in the order c, b, a
NUMBERS = {"citizen-a": "13900000011", "citizen-b": "13900000012", "citizen-c": "13900000013"}


@pytest.fixture
async def stack(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Stack]:
    async with open_stack(redis_server, redis_client, tmp_path) as opened:
        yield opened


class CallbackWatch:
    """Listens after the gateway's services: numbers called back, in order, and the most in flight."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.dialled: list[str] = []
        self.most_in_flight = 0
        stack.gateway.client.add_event_listener(self)

    def __call__(self, event: Message) -> None:
        flights = self.stack.callbacks.flights
        self.most_in_flight = max(self.most_in_flight, len(flights))
        number, _, trunk = (event.get("DialString") or "").partition("@")
        if (
            event.event == "DialBegin"
            and str(event.get("Linkedid")).startswith("cb-")
            and trunk == "carrier-trunk"
        ):
            self.dialled.append(number)


async def ask_for_callbacks(stack: Stack, callers: list[str]) -> None:
    """Callers arrive 2 s apart while no seat is free, press the callback key, hear the confirmation."""
    for seat in ("1001", "1002"):
        await stack.pause(seat)
    for call_id in callers:
        stack.dial_in(call_id, caller=NUMBERS[call_id], queue_key="1", queue_key_after=KEY_AFTER_S[call_id])
        await until(partial(_queued, stack, call_id), f"{call_id} queued")
        await asyncio.sleep(2 * TIME_SCALE)  # 2 simulated seconds apart: JoinTime counts whole seconds
    await until(lambda: _waiting(stack, len(callers)), "every callback queued in Redis")
    await until(lambda: not stack.gateway.tracker.calls, "the callers hung up after the confirmation")


def _queued(stack: Stack, call_id: str) -> bool:
    return call_id in stack.gateway.tracker.calls and bool(stack.call(call_id).queues)


async def _entries_left(stack: Stack, count: int) -> bool:
    return bool(await stack.redis.hlen(keys.CALLBACK_ENTRIES) == count)


def _dialled(watch: CallbackWatch, count: int) -> bool:
    return len(watch.dialled) == count


async def _waiting(stack: Stack, count: int) -> bool:
    return len(await waiting(stack)) == count


async def waiting(stack: Stack) -> list[str]:
    """GET /api/callbacks: the calls waiting to be called back, in the order they will be."""
    status, body = await stack.api("GET", "/api/callbacks", role="supervisor")
    assert status == 200, body
    return [entry["call_id"] for entry in body["waiting"]]


async def test_callbacks_in_arrival_order_and_one_at_a_time_for_one_ready_seat(stack: Stack) -> None:
    watch = CallbackWatch(stack)
    for number in NUMBERS.values():
        stack.phones.script[number] = FarEnd(3.0, True, None)  # the citizen takes 3 s to pick up
    await ask_for_callbacks(stack, ["citizen-a", "citizen-b", "citizen-c"])
    assert await waiting(stack) == ["citizen-a", "citizen-b", "citizen-c"]
    assert watch.dialled == []  # no seat free, nobody called back

    await stack.pause("1001", paused=False)
    for n, call_id in enumerate(("citizen-a", "citizen-b", "citizen-c")):
        await until(partial(_dialled, watch, n + 1), f"{call_id} called back")
        assert watch.dialled[n] == NUMBERS[call_id]
        await until(lambda: _with_seat(stack, "1001"), f"{call_id} back with a seat")
        assert len(watch.dialled) == n + 1  # the only seat is busy: nobody else is called meanwhile
        stack.phone_hangs_up("1001")
    assert watch.most_in_flight == 1

    record = await _amended(stack, "citizen-a")
    callback = record["callback"]
    assert (callback["outcome"], callback["attempts"], callback["number"]) == (
        "answered",
        1,
        NUMBERS["citizen-a"],
    )
    assert callback["linkedid"].startswith("cb-")
    assert record["disposition"] == {
        "kind": "callback_requested", "callback_number": NUMBERS["citizen-a"],
        "abandoned_after_s": None, "emergency_service": None,
    }  # fmt: skip
    (back,) = record["legs"]  # no seat answered the first call; the call back's seat is this record's
    assert (back["party"], back["queue"]) == ("1001", "hotline-general")
    assert back["answered_at"] > callback["last_attempt_at"]
    assert any(r.endswith("-callback.wav") for r in back["recordings"])
    assert [v["result"] for v in record["queues"]] == ["callback_requested", "answered"]
    assert record["seat_ids"] == ["1001"]
    assert await stack.redis.zcard(keys.CALLBACK_ORDER) == 0


def _with_seat(stack: Stack, seat: str) -> bool:
    return any(
        p.party == seat and p.active for call in stack.gateway.tracker.calls.values() for p in call.parties
    )


async def _amended(stack: Stack, call_id: str) -> dict[str, Any]:
    """The revision of the call's final record that carries its callback's outcome.

    (Not simply the highest revision: records rebuilt from the PBX's log of ended calls carry the
    simulator's wall clock, which runs ahead of the real one here.)
    """
    found: list[dict[str, Any]] = []

    async def settled() -> bool:
        found[:] = [
            r for r in await all_records(stack)
            if r["linkedid"] == call_id and r["callback"] and r["callback"]["outcome"] != "pending"
        ]  # fmt: skip
        return bool(found)

    await until(settled, f"the callback outcome of {call_id} in its record")
    return max(found, key=lambda r: int(r["revision"]))


async def test_never_more_in_flight_than_ready_seats(stack: Stack) -> None:
    watch = CallbackWatch(stack)
    for number in NUMBERS.values():
        stack.phones.script[number] = FarEnd(3.0, True, None)
    await ask_for_callbacks(stack, ["citizen-a", "citizen-b", "citizen-c"])
    for seat in ("1001", "1002"):
        await stack.pause(seat, paused=False)
    await until(lambda: _with_seat(stack, "1001") and _with_seat(stack, "1002"), "two called back")
    assert watch.dialled == [NUMBERS["citizen-a"], NUMBERS["citizen-b"]]
    assert watch.most_in_flight == 2
    stack.phone_hangs_up("1002")
    await until(lambda: len(watch.dialled) == 3, "the third called back once a seat is free")
    assert watch.most_in_flight == 2


async def test_unanswered_callback_is_retried_then_reported_with_its_outcome(stack: Stack) -> None:
    stack.callbacks.max_attempts = 2
    number = NUMBERS["citizen-c"]
    stack.phones.script[number] = FarEnd(1.0, False, None)  # rings out: no answer
    await ask_for_callbacks(stack, ["citizen-c"])
    watch = CallbackWatch(stack)
    await stack.pause("1001", paused=False)
    await until(lambda: len(stack.callbacks.flights) == 1, "the first attempt", within=10)
    await until(lambda: not stack.callbacks.flights, "the first attempt rang out", within=10)

    async def reject_when_ringing() -> bool:
        ringing = [
            c for c in stack.sim.pbx.live_channels() if c.name.startswith("PJSIP/") and c.exten == number
        ]
        if ringing:
            stack.phone_hangs_up(number, cause=17)  # the second time the line is busy
        return bool(ringing)

    await until(reject_when_ringing, "the second attempt", within=10)
    record = await _amended(stack, "citizen-c")
    assert (record["callback"]["outcome"], record["callback"]["attempts"]) == ("busy", 2)
    assert record["callback"]["linkedid"] is None
    assert record["revision"] > int((await _first_final(stack, "citizen-c"))["revision"])
    assert watch.dialled == [number, number]  # no answer, then busy: two attempts
    assert await stack.redis.hlen(keys.CALLBACK_ENTRIES) == 0


async def _first_final(stack: Stack, call_id: str) -> dict[str, Any]:
    finals = [r for r in await all_records(stack) if r["linkedid"] == call_id and r["stage"] == "final"]
    return min(finals, key=lambda r: int(r["revision"]))


async def test_the_callback_queue_survives_a_gateway_restart(stack: Stack) -> None:
    await ask_for_callbacks(stack, ["citizen-a", "citizen-b"])
    await stack.restart_gateway()
    assert await waiting(stack) == ["citizen-a", "citizen-b"]
    watch = CallbackWatch(stack)
    await stack.pause("1001", paused=False)
    await until(lambda: _with_seat(stack, "1001"), "the first called back by the new gateway")
    assert watch.dialled == [NUMBERS["citizen-a"]]
    stack.phone_hangs_up("1001")
    record = await _amended(stack, "citizen-a")  # the record was kept in Redis for this
    assert record["callback"]["outcome"] == "answered"


async def test_a_gateway_that_dies_while_calling_back_loses_neither_the_caller_nor_the_call(
    stack: Stack,
) -> None:
    stack.phones.script[NUMBERS["citizen-a"]] = FarEnd(3.0, True, None)
    await ask_for_callbacks(stack, ["citizen-a"])
    await stack.pause("1001", paused=False)
    await until(lambda: bool(stack.callbacks.flights), "calling back")
    # The gateway goes away with the attempt in flight; the citizen answers and reaches 1001
    # meanwhile. The next gateway learns that call from its resync, not from the old one's memory.
    await stack.restart_gateway()
    watch = CallbackWatch(stack)
    await until(lambda: _with_seat(stack, "1001"), "the call back found with its seat")
    await until(partial(_entries_left, stack, 0), "the callback done once its stale claim is seen")
    assert watch.dialled == []  # the caller was not rung a second time
    stack.phone_hangs_up("1001")
    record = await _amended(stack, "citizen-a")
    assert (record["callback"]["outcome"], record["callback"]["attempts"]) == ("answered", 1)
    assert [leg["party"] for leg in record["legs"]] == ["1001"]
