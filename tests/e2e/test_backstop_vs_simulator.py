"""The records backstop through the simulator: calls that run while no gateway is connected become
work orders from the PBX's own log (AstDB), and nothing the gateway recorded is reported twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.records.model import record_id_for
from gateway.records.outbox import backlog
from gateway.sim.traffic import TrafficGenerator
from tests.e2e.conftest import Stack, StackOptions
from tests.support.polling import until


@pytest.fixture
def stack_options() -> StackOptions:
    return StackOptions(rate=0.1)  # five calls a second at 50x: a few dozen start and end in the gap


def _ended(traffic: TrafficGenerator) -> set[str]:
    return {call.linkedid for call in traffic.ended_calls()}


def _orders(stack: Stack, linkedids: set[str]) -> dict[str, dict[str, Any] | None]:
    return {
        linkedid: stack.sink.store.work_order(record_id_for(stack.gateway.node_id, linkedid))
        for linkedid in linkedids
    }


async def test_calls_that_ran_while_no_gateway_watched_become_work_orders(stack: Stack) -> None:
    traffic = stack.service.traffic
    assert traffic is not None
    await until(lambda: _ready(stack), within=10, every=0.1, what="gateway ready")
    await asyncio.sleep(1.0)
    long_before = _ended(traffic)
    await asyncio.sleep(1.0)
    ended_before, live_before = _ended(traffic), set(traffic.live_calls())

    # No gateway: every session dropped and every login refused, while calls go on.
    stack.sim.refuse_logins(True)
    stack.sim.drop_connections()
    await asyncio.sleep(2.0)
    ended_in_gap = _ended(traffic) - ended_before
    stack.sim.refuse_logins(False)
    await until(lambda: _ready(stack), within=20, every=0.1, what="gateway back")
    ended_on_return = _ended(traffic)
    await asyncio.sleep(1.0)
    traffic.stop()
    await until(lambda: _idle(traffic), within=30, every=0.1, what="every call over")
    ended = _ended(traffic)
    try:
        await until(
            lambda: _all_ordered(stack, ended), within=30, every=0.1, what="a work order for every call"
        )
    except AssertionError as exc:
        raise AssertionError(await _why_not_ordered(stack, ended)) from exc

    orders = _orders(stack, ended)
    finals = {
        linkedid: order["record"] for linkedid, order in orders.items() if order and order["stage"] == "final"
    }
    assert set(finals) == ended, "every ended call is one final work order"
    assert stack.sink.store.counts()["work_orders"] == len(ended), "and nothing else"
    started_in_gap = ended_in_gap - live_before
    ended_up_in_gap = ended_in_gap & live_before
    assert started_in_gap, "the gap was long enough for whole calls"
    for linkedid in started_in_gap:
        assert finals[linkedid]["origin"] == "pbx_log", linkedid
        assert finals[linkedid]["disposition"]["kind"] in {"answered", "abandoned", "callback_requested"}
    for linkedid in ended_up_in_gap:  # closed as an outage on return, then corrected from the log
        assert finals[linkedid]["origin"] == "pbx_log", linkedid
        assert finals[linkedid]["disposition"]["kind"] != "pbx_outage", linkedid
    for linkedid in long_before | (ended - ended_on_return):
        assert finals[linkedid]["origin"] == "ami", f"{linkedid} was recorded live, and only live"
    assert (await backlog(stack.gateway.redis)).dead_letters == 0


async def _ready(stack: Stack) -> bool:
    response = await stack.client.get("/readyz")
    return response.status == 200


async def _idle(traffic: TrafficGenerator) -> bool:
    return not traffic.live_calls()


async def _all_ordered(stack: Stack, linkedids: set[str]) -> bool:
    orders = _orders(stack, linkedids)
    return all(order is not None and order["stage"] == "final" for order in orders.values())


async def _why_not_ordered(stack: Stack, linkedids: set[str]) -> str:
    """What the gateway knows of the calls without a final work order (for the failure message)."""
    missing = [
        k for k, order in _orders(stack, linkedids).items() if order is None or order["stage"] != "final"
    ]
    logged = {
        key.rsplit("/", 1)[-1]: value for key, value in stack.sim.astdb.items() if "hotline-ended" in key
    }
    return (
        f"no final work order for {missing}; in the PBX's log: {[logged.get(m) for m in missing]}; "
        f"live in the tracker: {[(m, call.legs) for m, call in stack.gateway.tracker.calls.items() if m in missing]}; "
        f"channels in the PBX: {[c.name for c in stack.sim.pbx.channels.values() if c.linkedid in missing]}; "
        f"outbox: {await backlog(stack.gateway.redis)}"
    )
