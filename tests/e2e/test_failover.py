"""Issue 9's scale-out proof: two gateways, two simulated Asterisk nodes, each node owned through
a Redis lease. Both dashboards show both nodes (merged through Redis); kill -9 one gateway under
traffic and the other takes its node over within seconds, and every call still becomes exactly
one work order."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.demo import demo_environment
from gateway.localredis import LocalRedis, free_port
from gateway.merge.loader import load_config
from gateway.ordersink.sink import OrderSink
from gateway.sim.cli import ServiceOptions, SimulatorService
from gateway.sim.people import CallerBehaviour, Endpoints, SeatBehaviour
from tests.conftest import ROOT
from tests.support.polling import until

CONFIG = ROOT / "hotline_merge.yaml"
LEASE_MS = 1500


def api(port: int, path: str, token: str) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=2) as response:
        return json.loads(response.read())


def start_gateway(env: dict[str, str], **settings: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run"],
        cwd=ROOT,
        env=env | settings,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
async def sims(tmp_path: Path) -> AsyncIterator[tuple[SimulatorService, SimulatorService, dict[str, str]]]:
    env = demo_environment({k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}, CONFIG)
    services = []
    for seed in (1, 2):
        service = SimulatorService(
            ServiceOptions(
                config=CONFIG,
                port=0,
                rate=0.5,
                seed=seed,
                time_scale=0.1,
                endpoints=Endpoints(seats=SeatBehaviour(talk_mean_s=60.0, talk_min_s=10.0, talk_max_s=200.0)),
            ),
            env,
        )
        assert service.traffic is not None
        service.traffic.callers = CallerBehaviour(patience_mean_s=90.0)
        await service.start()
        services.append(service)
    yield services[0], services[1], env
    for service in services:
        await service.stop()


async def test_a_standby_takes_over_a_killed_gateways_node(
    sims: tuple[SimulatorService, SimulatorService, dict[str, str]], redis_server: LocalRedis, tmp_path: Path
) -> None:
    sim_a, sim_b, env = sims
    redis = aioredis.Redis.from_url(redis_server.url)
    await redis.flushall()
    await redis.aclose()
    config = load_config(CONFIG)
    sink = OrderSink(tmp_path / "orders.sqlite3", env[config.order_system.token_env])
    await sink.start()
    token = env["HOTLINE_SUPERVISOR_TOKENS"]
    port_1, port_2 = free_port(), free_port()
    common = env | {
        "HOTLINE_REDIS_URL": redis_server.url,
        "HOTLINE_ORDER_URL": sink.url,
        "HOTLINE_LEASE_TTL_MS": str(LEASE_MS),
        "HOTLINE_LOG_LEVEL": "WARNING",
    }
    a, b = f"127.0.0.1:{sim_a.sim.port}", f"127.0.0.1:{sim_b.sim.port}"
    g1 = start_gateway(
        common, HOTLINE_NODE_ID="pbx-1", HOTLINE_AMI_PORT=str(sim_a.sim.port), HOTLINE_HTTP_PORT=str(port_1),
        HOTLINE_TAKEOVER_NODES=f"pbx-2={b}", HOTLINE_SPOOL_DIR=str(tmp_path / "spool-1"),
    )  # fmt: skip
    g2 = start_gateway(
        common, HOTLINE_NODE_ID="pbx-2", HOTLINE_AMI_PORT=str(sim_b.sim.port), HOTLINE_HTTP_PORT=str(port_2),
        HOTLINE_TAKEOVER_NODES=f"pbx-1={a}", HOTLINE_SPOOL_DIR=str(tmp_path / "spool-2"),
    )  # fmt: skip
    try:

        async def both_active() -> bool:
            try:
                return all(api(p, "/api/status", token)["role"] == "active" for p in (port_1, port_2))
            except OSError:
                return False

        await until(both_active, within=20, every=0.1, what="each gateway controlling its own node")

        # Either dashboard shows both nodes: seats of both simulators in the general queue.
        def general(port: int) -> dict[str, Any]:
            queues = api(port, "/api/queues", token)["queues"]
            return next(q for q in queues if q["name"] == "hotline-general")

        members = sum(len(s.sim.pbx.queues.queues["hotline-general"].members) for s in (sim_a, sim_b))

        async def merged() -> bool:
            return all(general(p)["seats"]["logged_in"] == members for p in (port_1, port_2))

        await until(merged, within=10, every=0.1, what="both dashboards merge both nodes")

        await asyncio.sleep(3)  # calls in progress on both nodes
        g1.send_signal(signal.SIGKILL)
        g1.wait()
        killed = time.monotonic()

        async def taken_over() -> bool:
            status = api(port_2, "/api/status", token)
            calls = {c["id"] for c in api(port_2, "/api/calls", token)["calls"] if c["node"] == "pbx-1"}
            live_a = {c.linkedid for c in sim_a.sim.pbx.channels.values()}
            return "pbx-1" in status["taken_over"] and calls == live_a

        await until(taken_over, within=LEASE_MS / 1000 + 8, every=0.1, what="gateway 2 controls pbx-1")
        took = time.monotonic() - killed
        assert took < LEASE_MS / 1000 + 8

        await asyncio.sleep(3)
        for sim in (sim_a, sim_b):
            assert sim.traffic is not None
            sim.traffic.stop()

        async def idle() -> bool:
            return not sim_a.sim.pbx.channels and not sim_b.sim.pbx.channels

        await until(idle, within=60, every=0.1, what="every simulated call ended")
        offered = sum(s.traffic.stats.offered for s in (sim_a, sim_b) if s.traffic is not None)

        async def all_recorded() -> bool:
            return bool(sink.store.counts()["final_work_orders"] >= offered)

        await until(all_recorded, within=20, every=0.1, what="every call a work order")
        counts = sink.store.counts()
        assert counts["work_orders"] == counts["final_work_orders"] == offered
    finally:
        for proc in (g1, g2):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)
        await sink.stop()
