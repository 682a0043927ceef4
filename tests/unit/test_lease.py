"""Node leases in a real Redis: one holder at a time, renew only your own, expiry frees the node."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from gateway.lease import NodeLease


async def test_one_holder_renews_and_a_standby_takes_over_after_expiry(redis_client: aioredis.Redis) -> None:
    active = NodeLease(redis_client, "pbx-1", "gw-a", ttl_ms=300)
    standby = NodeLease(redis_client, "pbx-1", "gw-b", ttl_ms=300)
    assert await active.acquire()
    assert not await standby.acquire()
    assert await active.renew()
    assert await standby.owner() == "gw-a"
    await asyncio.sleep(0.4)  # the active instance died: nobody renewed
    assert await standby.acquire()
    assert not await active.renew()  # it may not extend what another took over
    await active.release()  # nor drop it
    assert await standby.owner() == "gw-b"
    await standby.release()
    assert await standby.owner() is None


async def test_leases_are_per_node(redis_client: aioredis.Redis) -> None:
    assert await NodeLease(redis_client, "pbx-1", "gw-a").acquire()
    assert await NodeLease(redis_client, "pbx-2", "gw-b").acquire()
