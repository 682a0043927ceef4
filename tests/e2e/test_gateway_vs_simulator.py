"""Issue 4's proof: hundreds of calls through the simulator over TCP, seats logging in, out and
pausing through the API, and the gateway's figures equal the simulator's own counters; a PBX
restart mid-run converges with no ghost calls; every call becomes exactly one work order."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.e2e.conftest import Stack
from tests.support.polling import until

CALLS = 500


def sim_live_calls(stack: Stack) -> set[str]:
    if not stack.sim.running:
        return set()
    pbx = stack.sim.pbx
    return {
        c.linkedid for c in pbx.channels.values() if c.linkedid.startswith(("caller", "17", "18", "19"))
    } | {c.linkedid for c in pbx.channels.values()}


async def test_500_calls_with_seat_changes_match_the_simulator(stack: Stack) -> None:
    traffic = stack.service.traffic
    assert traffic is not None
    await until(lambda: _ready(stack), within=10, every=0.1, what="gateway ready")

    # Seats change state while calls flow: one pauses with a reason, one logs out, one logs out and in.
    await stack.post("/api/agents/1001/pause", {"reason": "小休"}, role="seat", seat="1001")
    await stack.post("/api/agents/1002/logout", role="seat", seat="1002")
    await stack.post("/api/agents/1003/logout")
    await stack.post("/api/agents/1003/login")
    await stack.post("/api/agents/2001/pause", {"reason": "培训"})
    await stack.post("/api/agents/2001/unpause")

    await until(lambda: _offered_at_least(stack, CALLS), within=60, every=0.1, what=f"{CALLS} calls offered")
    traffic.stop()
    offered = traffic.stats.offered
    await until(lambda: _sim_idle(stack), within=60, every=0.1, what="every simulated call ended")
    await until(lambda: _gateway_idle(stack), within=10, every=0.1, what="the gateway saw every call end")

    # Per queue, the gateway's counts equal app_queue's own counters in the simulator (whose abandoned
    # counts Queue() timeouts too, as Asterisk's does: the gateway counts only callers who hung up).
    queues = {q["name"]: q for q in (await stack.get("/api/queues"))["queues"]}
    for name, sim_queue in stack.sim.pbx.queues.queues.items():
        day = queues[name]["rates"]["24h"]
        assert (day["answered"], day["abandoned"]) == (
            sim_queue.completed,
            sim_queue.abandoned - sim_queue.timed_out,
        ), name
        assert queues[name]["waiting"] == 0
    assert sum(q["rates"]["24h"]["answered"] for q in queues.values()) > CALLS // 2

    # Seats: the API's state of every roster seat equals the simulator's members.
    agents = {a["id"]: a for a in (await stack.get("/api/agents"))["agents"]}
    assert agents["1001"]["state"] == "paused"
    assert agents["1001"]["reason"] == "小休"
    assert agents["1002"]["state"] == "logged_out"
    assert agents["1003"]["state"] in {"ready", "wrap_up"}
    assert agents["2001"]["state"] in {"ready", "wrap_up"}
    for queue in stack.sim.pbx.queues.queues.values():
        for member in queue.members:
            seat = member.interface.split("/")[1].split("@")[0]
            if seat not in agents:
                continue  # simulated extra seats beyond the roster
            assert queue.name in agents[seat]["queues"], (seat, queue.name)
            assert (agents[seat]["state"] == "paused") == member.paused, seat
    logged_in = {a["id"] for a in agents.values() if a["state"] != "logged_out"}
    in_sim = {
        m.interface.split("/")[1].split("@")[0]
        for q in stack.sim.pbx.queues.queues.values()
        for m in q.members
    }
    assert logged_in == in_sim & set(agents)

    # Every call is exactly one work order in the order system.
    await until(
        lambda: _work_orders_at_least(stack, offered), within=20, every=0.1, what="every call a work order"
    )
    counts = stack.sink.store.counts()
    assert counts["work_orders"] == counts["final_work_orders"] == offered


async def test_simulator_restart_converges_without_ghost_calls(stack: Stack) -> None:
    await until(lambda: _ready(stack), within=10, every=0.1, what="gateway ready")
    await until(lambda: _live_calls_at_least(stack, 10), within=30, every=0.1, what="calls in progress")
    before = set(stack.gateway.tracker.calls)
    await stack.sim.shutdown(restart=True, downtime=1.0)
    await until(lambda: _sim_back(stack), within=20, every=0.1, what="simulator back")
    took = await until(
        lambda: _converged(stack), within=5, every=0.1, what="no ghost calls 5 s after the PBX returned"
    )
    assert took <= 5
    # The calls that were up when the PBX went away ended as "ended during PBX outage".
    await until(
        lambda: _work_orders_at_least(stack, len(before)), within=20, every=0.1, what="outage records"
    )
    dispositions = {
        order["record"]["disposition"]["kind"]
        for call_id in before
        if (order := _order_of(stack, call_id)) is not None
    }
    assert "pbx_outage" in dispositions
    status = await stack.get("/api/status")
    assert status["ami"]["reconnects"] >= 1
    assert status["stale"] is False


def _order_of(stack: Stack, call_id: str) -> dict[str, Any] | None:
    from gateway.records.model import record_id_for

    return stack.sink.store.work_order(record_id_for(stack.gateway.node_id, call_id))


async def _ready(stack: Stack) -> bool:
    response = await stack.client.get("/readyz")
    return response.status == 200


async def _offered_at_least(stack: Stack, n: int) -> bool:
    traffic = stack.service.traffic
    return traffic is not None and traffic.stats.offered >= n


async def _sim_idle(stack: Stack) -> bool:
    return not stack.sim.pbx.channels


async def _gateway_idle(stack: Stack) -> bool:
    return not stack.gateway.tracker.calls and stack.gateway.outputs.empty()


async def _work_orders_at_least(stack: Stack, n: int) -> bool:
    return bool(stack.sink.store.counts()["final_work_orders"] >= n)


async def _live_calls_at_least(stack: Stack, n: int) -> bool:
    return len(stack.gateway.tracker.calls) >= n


async def _sim_back(stack: Stack) -> bool:
    return stack.sim.running and stack.sim.server.booted


async def _converged(stack: Stack) -> bool:
    await asyncio.sleep(0)
    gateway_calls = set(stack.gateway.tracker.calls)
    return not stack.gateway.tracker.stale and gateway_calls <= sim_live_calls(stack)
