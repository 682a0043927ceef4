"""The whole product on loopback: redis-server, the order sink, the PBX simulator and the gateway."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import init_app
from gateway.demo import demo_environment
from gateway.localredis import LocalRedis
from gateway.merge.loader import load_config
from gateway.node.runtime import Node
from gateway.ordersink.sink import OrderSink
from gateway.settings import Settings
from gateway.sim.cli import ServiceOptions, SimulatorService
from gateway.sim.people import CallerBehaviour, Endpoints, SeatBehaviour
from gateway.sim.server import Simulator
from gateway.web.api import NODE
from tests.conftest import ROOT
from tests.support.polling import until

CONFIG = ROOT / "hotline_merge.yaml"
TIME_SCALE = 0.02  # 50 simulated seconds per real second


@dataclass
class Stack:
    client: TestClient[web.Request, web.Application]
    service: SimulatorService
    sink: OrderSink
    env: dict[str, str]

    @property
    def sim(self) -> Simulator:
        return self.service.sim

    @property
    def gateway(self) -> Node:
        app = self.client.app
        assert app is not None
        return app[NODE]

    def headers(self, role: str = "supervisor") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env[f'HOTLINE_{role.upper()}_TOKENS']}"}

    async def get(self, path: str, role: str = "supervisor") -> Any:
        response = await self.client.get(path, headers=self.headers(role))
        assert response.status == 200, await response.text()
        return await response.json()

    async def post(self, path: str, body: dict[str, object] | None = None, role: str = "supervisor") -> Any:
        response = await self.client.post(path, json=body or {}, headers=self.headers(role))
        assert response.status == 200, await response.text()
        return await response.json()


@dataclass
class StackOptions:
    rate: float = 1.0  # calls per simulated second
    time_scale: float = TIME_SCALE
    # Shorter calls than a real day, so a test sees hundreds of them end.
    seats: SeatBehaviour = field(
        default_factory=lambda: SeatBehaviour(talk_mean_s=40.0, talk_min_s=5.0, talk_max_s=120.0)
    )
    patience_mean_s: float = 60.0


@pytest.fixture
def stack_options() -> StackOptions:
    """Override in a test module for other traffic or timing."""
    return StackOptions()


@pytest.fixture
async def stack(
    redis_server: LocalRedis, tmp_path: Path, stack_options: StackOptions
) -> AsyncIterator[Stack]:
    redis = aioredis.Redis.from_url(redis_server.url)
    await redis.flushall()
    await redis.aclose()
    # A copy of the shipped config that a test may edit (reload), with the prompts beside it.
    config_path = tmp_path / "hotline_merge.yaml"
    shutil.copy(CONFIG, config_path)
    (tmp_path / "recordings").symlink_to(ROOT / "recordings")
    env = demo_environment({"HOTLINE_REDIS_URL": redis_server.url}, config_path)
    config = load_config(config_path)
    sink = OrderSink(tmp_path / "orders.sqlite3", env[config.order_system.token_env])
    await sink.start()
    service = SimulatorService(
        ServiceOptions(
            config=config_path,
            port=0,
            rate=stack_options.rate,
            seed=12345,
            time_scale=stack_options.time_scale,
            endpoints=Endpoints(seats=stack_options.seats),
            start_traffic=False,
        ),
        env,
    )
    if service.traffic is not None:
        service.traffic.callers = CallerBehaviour(patience_mean_s=stack_options.patience_mean_s)
    await service.start()
    env.update(
        {
            "HOTLINE_AMI_PORT": str(service.sim.port),
            "HOTLINE_ORDER_URL": sink.url,
            "HOTLINE_SPOOL_DIR": str(tmp_path / "spool"),
            "HOTLINE_DIALPLANS_DIR": str(tmp_path / "dialplans"),
        }
    )
    settings = Settings.from_env(env, config_path=config_path)
    client = TestClient(TestServer(init_app(settings), host="127.0.0.1"))
    await client.start_server()
    try:
        stack = Stack(client, service, sink, env)
        # Calls start once the gateway has its first snapshot: a call that began and ended before
        # it would be counted by app_queue and not by the gateway, and a test would compare the two.
        await until(lambda: stack.gateway.resync.completed > 0, within=30, every=0.05, what="first resync")
        if service.traffic is not None:
            service.traffic.start()
        yield stack
    finally:
        await client.close()
        await service.stop()
        await sink.stop()
