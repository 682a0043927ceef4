"""Generated traffic is reproducible from a seed; the simulated clock runs timers in order."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest

from gateway.merge.loader import load_config
from gateway.sim.clock import SimClock
from gateway.sim.manager import ManagerUser
from gateway.sim.plan import plan_from_config
from gateway.sim.server import SimOptions, Simulator
from gateway.sim.traffic import TrafficGenerator

ROOT = Path(__file__).resolve().parents[2]


async def _day(seed: int) -> dict[str, object]:
    config = load_config(ROOT / "hotline_merge.yaml", today=dt.date(2026, 6, 1))
    plan = plan_from_config(config, seats_per_queue=3, today=dt.date(2026, 6, 1))
    sim = Simulator(plan, SimOptions(manual_clock=True, seed=seed), users=[ManagerUser("u", "p")])
    await sim.start()
    traffic = TrafficGenerator(sim, rate=1.0, seed=seed)
    traffic.start()
    sim.clock.advance(300.0)
    pbx = sim.pbx
    queues = {name: (q.completed, q.abandoned, len(q.entries)) for name, q in pbx.queues.queues.items()}
    snapshot: dict[str, object] = {
        "offered": traffic.stats.offered, "abandoned": traffic.stats.abandoned_by_patience, "queues": queues,
        "channels": sorted(pbx.channels), "processed": pbx.processed_calls,
    }  # fmt: skip
    traffic.stop()
    await sim.stop()
    return snapshot


async def test_the_same_seed_replays_the_same_day() -> None:
    first, again, other = await _day(21), await _day(21), await _day(22)
    assert first == again
    assert first != other
    offered = first["offered"]
    assert isinstance(offered, int)
    assert 240 <= offered <= 360, "Poisson at 1 call/s over 300 s"
    assert first["processed"] == offered


def test_manual_clock_runs_timers_in_order_and_fifo() -> None:
    clock = SimClock(manual=True)
    fired: list[str] = []
    clock.call_later(2.0, fired.append, "b")
    clock.call_later(1.0, fired.append, "a")
    clock.call_later(2.0, fired.append, "c")
    clock.call_later(1.5, fired.append, "x").cancel()
    clock.advance(1.0)
    assert fired == ["a"]
    assert clock.now() == 1.0
    clock.advance(5.0)
    assert fired == ["a", "b", "c"]
    assert clock.now() == 6.0


async def test_real_clock_scales_time() -> None:
    clock = SimClock(time_scale=0.01)
    clock.start()
    done = asyncio.Event()
    fired: list[float] = []

    def tick(label: float) -> None:
        fired.append(label)
        if len(fired) == 3:
            done.set()

    for seconds in (3.0, 1.0, 2.0):  # 30 ms of real time at most
        clock.call_later(seconds, tick, seconds)
    await asyncio.wait_for(done.wait(), 5)
    clock.stop()
    assert fired == [1.0, 2.0, 3.0]
    assert clock.now() >= 3.0
    with pytest.raises(RuntimeError):
        clock.advance(1.0)


def test_an_error_in_a_timer_does_not_stop_the_clock_and_a_test_timeout_in_one_fails_the_test() -> None:
    """pytest-timeout raises ``Failed`` (a BaseException) in whatever frame runs: inside a timer it
    must leave the event loop, which only lets SystemExit and KeyboardInterrupt through."""
    loop = asyncio.new_event_loop()
    errors: list[object] = []
    loop.set_exception_handler(lambda _, context: errors.append(context.get("exception")))
    clock = SimClock(time_scale=0.001)
    fired: list[str] = []

    def broken() -> None:
        raise ValueError("bug in a timer")

    def timed_out() -> None:
        pytest.fail("Timeout >120.0s")

    async def run() -> None:
        clock.start()
        clock.call_later(1.0, broken)
        clock.call_later(2.0, fired.append, "after the error")
        clock.call_later(3.0, timed_out)
        await asyncio.sleep(60)

    try:
        with pytest.raises(SystemExit) as stopped:
            loop.run_until_complete(run())
    finally:
        clock.stop()
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    assert fired == ["after the error"]
    assert [type(e) for e in errors] == [ValueError]
    assert isinstance(stopped.value.__cause__, pytest.fail.Exception)


async def test_held_time_stands_still_until_resumed() -> None:
    clock = SimClock(time_scale=0.001)
    clock.start()
    fired = asyncio.Event()
    clock.call_later(1.0, fired.set)
    clock.hold()
    held_at = clock.now()
    await asyncio.sleep(0.01)  # ten simulated seconds, were time running
    assert clock.now() == held_at
    assert not fired.is_set()
    clock.resume()
    await asyncio.wait_for(fired.wait(), 5)
    assert clock.now() >= 1.0
    clock.stop()


def test_catch_up_runs_every_due_timer_in_order() -> None:
    """What the AMI server does before it reads actions: on a late loop, no event due is left
    behind the answer to an action."""
    clock = SimClock(time_scale=0.001)
    seen: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        clock.start(loop)
        clock.call_at(2.0, seen.append, "answer")
        clock.call_at(1.0, seen.append, "ring")
        clock.call_at(1e6, seen.append, "never")
        time.sleep(0.01)  # the loop does not run: 10 simulated seconds or more pass
        clock.catch_up()
        assert seen == ["ring", "answer"]
    finally:
        clock.stop()
        loop.close()


def test_a_timer_that_holds_the_clock_stops_the_timers_due_after_it() -> None:
    clock = SimClock(time_scale=0.001)
    seen: list[float] = []
    loop = asyncio.new_event_loop()
    try:
        clock.start(loop)
        clock.call_at(1.0, clock.hold)
        clock.call_at(2.0, seen.append, 2.0)
        time.sleep(0.01)
        clock.catch_up()
        assert seen == []
        clock.resume()
        time.sleep(0.01)
        clock.catch_up()
        assert seen == [2.0]
    finally:
        clock.stop()
        loop.close()
