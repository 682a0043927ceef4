"""Fixtures: a simulator on the traces' bench configuration (manual clock) and AMI test clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.sim.manager import ManagerUser
from gateway.sim.plan import SimPlan, load_asterisk_conf
from gateway.sim.server import SimOptions, Simulator
from tests.conformance.traces import BENCH_CONF
from tests.sim.support import AmiTestClient


def bench_plan() -> SimPlan:
    return load_asterisk_conf(BENCH_CONF)


@pytest.fixture
async def bench_sim() -> AsyncIterator[Simulator]:
    """The traces' Asterisk, booted, on a manual clock; extra users: ``agentonly`` and ``filtered``."""
    users = [
        ManagerUser("agentonly", "pw", read=frozenset({"agent"}), write=frozenset({"call"})),
        ManagerUser("filtered", "pw", eventfilters=["!Event: Newexten", "!Event: VarSet"]),
    ]
    sim = Simulator(bench_plan(), SimOptions(manual_clock=True, seed=11, auth_fail_delay=1.0), users=users)
    await sim.start()
    sim.clock.advance(1.0)
    yield sim
    await sim.stop()


@pytest.fixture
async def connect(bench_sim: Simulator) -> AsyncIterator[Callable[[], Awaitable[AmiTestClient]]]:
    clients: list[AmiTestClient] = []

    async def make() -> AmiTestClient:
        client = await AmiTestClient.connect(bench_sim.port)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
