"""A node taken over stays controlled while no other instance holds its lease (issue 14 item 3).

On the province floor (one gateway taking over nine nodes nobody else held) the loop was often late
to renew: the lease expired unheld, the node was stopped and rebuilt from scratch, and its seats
kept vanishing from the dashboard while each new tracker read the PBX again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

import redis.asyncio as aioredis

from gateway import keys
from gateway.demo import demo_environment
from gateway.lease import NodeLease, instance_id
from gateway.localredis import LocalRedis, free_port
from gateway.node.runtime import Node, take_over
from gateway.settings import Settings
from tests.conftest import ROOT
from tests.support.polling import until


async def test_a_lease_expired_unheld_is_taken_back_without_rebuilding_the_node(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    config = ROOT / "hotline_merge.yaml"
    env = demo_environment({"HOTLINE_REDIS_URL": redis_server.url}, config)
    env.update({
        "HOTLINE_AMI_PORT": str(free_port()),  # nobody listens: the node runs all the same
        "HOTLINE_SPOOL_DIR": str(tmp_path / "spool"),
        "HOTLINE_DIALPLANS_DIR": str(tmp_path / "dialplans"),
        "HOTLINE_LEASE_TTL_MS": "500",
    })  # fmt: skip
    settings = replace(Settings.from_env(env, config_path=config), node_id="pbx-2")
    holder = instance_id()
    nodes: dict[str, Node] = {}
    lease = NodeLease(redis_client, "pbx-2", "other-host:1:0a1b2c3d", ttl_ms=500)
    task = asyncio.create_task(take_over(settings, redis_client, holder, nodes))
    try:
        await until(lambda: "pbx-2" in nodes, "pbx-2 taken over (no instance ever held it)", within=10)
        first = nodes["pbx-2"]

        await redis_client.delete(keys.lease("pbx-2"))  # expired: the renewal came too late

        async def ours_again() -> bool:
            return await lease.owner() == holder

        await until(ours_again, "the lease taken back", within=10)
        assert nodes["pbx-2"] is first  # the same node, still running: not stopped and rebuilt
        assert not first.stopping.is_set()

        # Another instance (the node's own, restarted) holds it: handed back.
        await redis_client.delete(keys.lease("pbx-2"))
        assert await lease.acquire()
        await until(lambda: "pbx-2" not in nodes, "pbx-2 handed back", within=10)
        assert first.stopping.is_set()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
