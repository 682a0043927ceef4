"""Issue 17: everything the gateway reads back from Redis is untrusted input.

A whole gateway runs on loopback against a real redis-server; hostile values are written straight
into Redis under its keys. Each is refused (logged naming key and field), counted in
``hotline_redis_values_refused_total``, skipped, and the background loops keep running; no AMI
action is built from any of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from gateway import keys
from gateway.ami import safety
from gateway.app import init_app
from gateway.callbacks.http import CALLBACKS
from gateway.demo import demo_environment
from gateway.keys import KpiKeys
from gateway.lease import NodeLease
from gateway.localredis import LocalRedis, free_port
from gateway.readback import register
from gateway.settings import Settings
from gateway.transfers.errors import TransferNotFoundError
from gateway.transfers.http import TRANSFERS
from gateway.web.api import NODE
from gateway.web.snapshot import SeatJson
from tests.conftest import ROOT
from tests.support.polling import until

REGISTRY = CollectorRegistry()
register(REGISTRY)

SENT = web.AppKey("sent", list[safety.Action])
EVIL_CHANNEL = "PJSIP/1001-0000002a\r\nAction: Hangup\r\nChannel: PJSIP/2001-01,x"


def refused(source: str) -> float:
    return REGISTRY.get_sample_value("hotline_redis_values_refused_total", {"source": source}) or 0.0


@pytest.fixture
async def gateway(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[web.Application]:
    """A gateway whose AMI port has no listener (its loops run all the same); every send is recorded."""
    config = ROOT / "hotline_merge.yaml"
    env = demo_environment({"HOTLINE_REDIS_URL": redis_server.url}, config)
    env.update({
        "HOTLINE_AMI_PORT": str(free_port()),
        "HOTLINE_SPOOL_DIR": str(tmp_path / "spool"),
        "HOTLINE_DIALPLANS_DIR": str(tmp_path / "dialplans"),
    })  # fmt: skip
    app = init_app(Settings.from_env(env, config_path=config), dispatchers=0)
    sent: list[safety.Action] = []

    async def record(action: safety.Action) -> Any:
        sent.append(action)
        raise AssertionError(f"an action was sent: {action}")

    app[TRANSFERS].send = record
    app[CALLBACKS].send = record
    app[CALLBACKS].tick_s = 0.02
    app[SENT] = sent
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        await until(lambda: app[NODE].controlling, "the node controlled")
        yield app
    finally:
        await server.close()
    assert sent == []


def alive(app: web.Application, *names: str) -> bool:
    tasks = {t.get_name(): t for t in app[NODE].tasks}
    return all(not tasks[name].done() for name in names if name in tasks)


def mirror(transfer_id: str, **changes: Any) -> dict[str, Any]:
    at = "2024-05-01T08:00:00.000+00:00"
    good = {
        "id": transfer_id, "call_id": "1714550400.12", "mode": "blind",
        "target": {"kind": "queue", "name": "hotline-expert", "title": "专家组"},
        "state": "ringing", "reason": None, "outcome": None, "from_seat": "1001", "answered_by": None,
        "override": False, "room": None, "node": "pbx-2", "requested_at": at,
        "history": [{"state": "requested", "at": at}],
    }  # fmt: skip
    return good | changes


@pytest.mark.parametrize(
    "changes",
    [
        {"from_seat": EVIL_CHANNEL},
        {"room": "1234,evil-ctx,s,1"},
        {"target": {"kind": "queue", "name": "q\r\nAction: Hangup", "title": "x"}},
        {"caller": {"uniqueid": "1.1", "channel": EVIL_CHANNEL}},  # fields a mirror never has
        {"state": 7},
    ],
)
async def test_forged_transfer_mirror_is_refused(
    gateway: web.Application, redis_client: aioredis.Redis, changes: dict[str, Any]
) -> None:
    service = gateway[TRANSFERS]
    tid = "tr-00000000000000aa"
    await redis_client.set(keys.transfer(tid), json.dumps(mirror(tid, **changes)))
    before = refused("transfer")
    assert await service.lookup(tid) is None
    with pytest.raises(TransferNotFoundError):
        await service.cancel(tid)
    with pytest.raises(TransferNotFoundError):
        await service.complete(tid)
    assert refused("transfer") == before + 3
    assert gateway[SENT] == []


async def test_genuine_transfer_mirror_still_reads(
    gateway: web.Application, redis_client: aioredis.Redis
) -> None:
    tid = "tr-00000000000000bb"
    await redis_client.set(keys.transfer(tid), json.dumps(mirror(tid)))
    found = await gateway[TRANSFERS].lookup(tid)
    assert found == mirror(tid)


async def test_callback_entry_that_is_not_json(
    gateway: web.Application, redis_client: aioredis.Redis
) -> None:
    before = refused("callback")
    await redis_client.hset(keys.CALLBACK_ENTRIES, "1714550400.7", b"{not json\r\n")
    await redis_client.hset(keys.CALLBACK_ENTRIES, "1714550400.8", json.dumps({
        "call_id": "1714550400.8", "number": "13900000011", "queue": "hotline-general\r\nAction: Hangup",
        "joined_at": 1, "requested_at": 1,
    }))  # fmt: skip
    await redis_client.zadd(keys.CALLBACK_ORDER, {"1714550400.7": 1, "1714550400.8": 2})
    await until(lambda: refused("callback") >= before + 4, "both entries refused, twice each tick")
    service = gateway[CALLBACKS]
    assert await service.pending() == []
    service.link_ready = lambda: True  # even with a link, nothing is dialled from them
    await service.dispatch()
    await until(lambda: refused("callback") >= before + 10, "the loop keeps running")
    assert gateway[SENT] == []


async def test_live_state_mirror_with_wrong_types(
    gateway: web.Application, redis_client: aioredis.Redis
) -> None:
    node = gateway[NODE]
    before = refused("live")

    def mirror(name: str, **changes: Any) -> dict[str, Any]:
        """A genuine mirror of node ``name`` (this node's state under its name), changed."""
        good: dict[str, Any] = json.loads(node.update_live().to_json(SeatJson()))
        seat = {"node": name, "extension": "1001", "name": "x", "state": "ready", "reason": "", "since": 1.0,
                "calls_taken": 0, "queues": []}  # fmt: skip
        return good | {"node": name, "seats": [seat]} | changes

    queue = {"name": "hotline-general", "waiting": "5", "longest_wait_s": 1.0, "seats": {}}
    foreign_seat = mirror("pbx-10")
    foreign_seat["seats"][0]["node"] = "pbx-2"  # a seat under another node's name
    hostile: dict[str, dict[str, Any] | str] = {
        "pbx-3": mirror("pbx-3", queues=[queue]),
        "pbx-4": mirror("pbx-4", at="2026-12-02T08:00:00Z"),
        "pbx-5": mirror("pbx-5", seats=[{"extension": "1001", "state": "on_call"}]),
        "pbx-6": mirror("pbx-6", link={"stale": "yes", "reason": "x"}),
        "pbx-7": mirror("pbx-8"),  # another node's state under this one's name
        "pbx-9": "not json at all",
        "pbx-10": foreign_seat,
    }
    # The list of nodes is read back too: a member that is no node id is refused.
    await redis_client.zadd(keys.LIVE_NODES, {"pbx-1\r\nAction: Hangup": time.time()})
    for name, value in hostile.items():
        text = value if isinstance(value, str) else json.dumps(value)
        await redis_client.set(keys.live(name), text, ex=60)
        await redis_client.zadd(keys.LIVE_NODES, {name: time.time() + 60})
    await until(lambda: refused("live") >= before + 2 * (len(hostile) + 1), "every forgery refused, twice")
    assert alive(gateway, "ticker")
    assert alive(gateway, "share")
    assert [p.node for p in node.peers] == []
    await redis_client.set(keys.live("pbx-2"), json.dumps(mirror("pbx-2")), ex=60)
    await redis_client.zadd(keys.LIVE_NODES, {"pbx-2": time.time() + 60})
    await until(lambda: [p.node for p in node.peers] == ["pbx-2"], "a genuine peer still merges")


async def test_kpi_bucket_with_non_numbers(gateway: web.Application, redis_client: aioredis.Redis) -> None:
    node = gateway[NODE]
    before = refused("kpi")
    kpi = KpiKeys()
    minute = int(time.time() // 60)
    day = time.strftime("%Y%m%d", time.gmtime(minute * 60))
    await redis_client.sadd(kpi.scopes, "queue:hotline-general")
    await redis_client.hset(kpi.counts("queue:hotline-general", day), mapping={
        f"{minute}:offered": "lots", f"{minute}:answered": "nan", f"{minute}:abandoned": "-3",
    })  # fmt: skip
    await redis_client.sadd(kpi.gauges, "waiting")
    await redis_client.hset(kpi.gauge("waiting", day), str(minute), "inf")
    await until(lambda: refused("kpi") >= before + 4, "the forged figures refused")
    await until(lambda: refused("kpi") >= before + 8, "the ticker keeps refreshing")
    assert alive(gateway, "ticker")
    assert await node.kpi_store.load(node.book, time.time()) >= 0  # the start-up load skips them too


async def test_lease_with_junk(redis_client: aioredis.Redis) -> None:
    lease = NodeLease(redis_client, "pbx-9", "gw-a:1:0123abcd", ttl_ms=500)
    before = refused("lease")
    await redis_client.set(keys.lease("pbx-9"), "junk value\r\nAction: Hangup")  # no expiry either
    assert await lease.acquire(), "junk is no lease: it is cleared and the node taken"
    assert await lease.owner() == "gw-a:1:0123abcd"
    await redis_client.delete(keys.lease("pbx-9"))
    await redis_client.set(keys.lease("pbx-9"), "gw-b:2:89abcdef")  # a holder id, but never expiring
    assert await lease.acquire()
    await redis_client.delete(keys.lease("pbx-9"))
    await redis_client.hset(keys.lease("pbx-9"), "holder", "gw-b")  # not even a string
    assert await lease.acquire()
    await redis_client.set(keys.lease("pbx-9"), b"\xff\xfe")
    assert await lease.owner() is None
    assert refused("lease") == before + 4
    await redis_client.set(keys.lease("pbx-9"), "gw-b:2:89abcdef", px=500)  # a genuine lease is kept
    assert not await lease.acquire()
    assert refused("lease") == before + 4
