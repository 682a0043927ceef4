"""Records per second from call end to the order system, through the outbox, on loopback.

"Call end" is ``Outbox.append_many`` (the hand-over the tracker makes); "delivered" is the
reference sink's confirmation, seen as an empty outbox stream (an entry leaves it only when
the order system has confirmed it). In the same run, two baselines with the same records:
bare HTTP POSTs straight to the sink (what the order system can take at all) and the outbox's
own XADD rate. The sink runs as a child process (``hotline-gateway order-sink``) so that, like a
real order system, it does not share the gateway's CPU. Every server started here listens on
127.0.0.1 and is stopped at the end.

    .venv/bin/python bench/outbox.py [--records 5000] [--dispatchers 2] [--appendfsync everysec|always]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from gateway.localredis import LocalRedis, free_port
from gateway.ordersink.examples import answered_call
from gateway.records.client import OrderSystemClient
from gateway.records.dispatcher import Dispatcher
from gateway.records.model import CallRecord
from gateway.records.outbox import Outbox, backlog
from gateway.records.spool import Spool

TOKEN_ENV = "BENCH_ORDER_TOKEN"
TOKEN = "bench-token"
CONNECTIONS = 64
CHUNK = 50  # records per hand-over: calls ending together in one tracker tick


async def _start_sink(db: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    sink = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "order-sink", "--host", "127.0.0.1", "--port", str(port),
        "--db", str(db), "--token-env", TOKEN_ENV,
        env=os.environ | {TOKEN_ENV: TOKEN, "HOTLINE_LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert sink.stdout is not None
    line = await asyncio.wait_for(sink.stdout.readline(), 15)
    if b"listening" not in line:
        raise RuntimeError(f"order-sink did not start: {line!r}")
    return sink, f"http://127.0.0.1:{port}/work-orders"


async def _bare_posts(url: str, records: Sequence[CallRecord]) -> float:
    """Seconds to POST every record straight to the sink, CONNECTIONS requests always in flight."""
    bodies = iter([(r.idempotency_key, r.model_dump_json().encode()) for r in records])
    async with OrderSystemClient(url, 5.0, TOKEN_ENV, connections=CONNECTIONS) as client:

        async def poster() -> None:
            for key, body in bodies:
                answer = await client.submit(key, body)
                assert answer.result.delivered, answer

        started = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(CONNECTIONS)))
        return time.perf_counter() - started


async def _xadd_only(redis: aioredis.Redis, records: Sequence[CallRecord], spool: Spool) -> float:
    """Seconds to hand every record to the outbox with no dispatcher running."""
    outbox = Outbox(redis, spool)
    started = time.perf_counter()
    for start in range(0, len(records), CHUNK):
        await outbox.append_many(records[start : start + CHUNK])
    elapsed = time.perf_counter() - started
    await redis.delete(outbox.keys.stream)
    await redis.delete(*[outbox.keys.seen(r.idempotency_key) for r in records])
    return elapsed


async def _end_to_end(
    redis: aioredis.Redis, url: str, records: Sequence[CallRecord], spool: Spool, dispatchers: int
) -> float:
    """Seconds from the first hand-over to the last confirmation, dispatchers already waiting."""
    outbox = Outbox(redis, spool)
    async with OrderSystemClient(url, 5.0, TOKEN_ENV, connections=CONNECTIONS) as client:
        running = [
            Dispatcher(redis, client, consumer=f"bench-{i}", batch_size=CONNECTIONS, block_ms=100)
            for i in range(dispatchers)
        ]
        for dispatcher in running:
            await dispatcher.ensure_group()
        tasks = [asyncio.create_task(d.run()) for d in running]
        try:
            started = time.perf_counter()
            for start in range(0, len(records), CHUNK):
                await outbox.append_many(records[start : start + CHUNK])
                await asyncio.sleep(0)  # calls end over time: let the dispatchers run meanwhile
            while (await backlog(redis)).entries:  # noqa: ASYNC110 - Redis has no "empty" event
                await asyncio.sleep(0.005)
            return time.perf_counter() - started
        finally:
            for dispatcher in running:
                dispatcher.stop()
            await asyncio.gather(*tasks)


async def _sink_counts(url: str) -> dict[str, int]:
    stats_url = url.removesuffix("/work-orders") + "/_sink/stats"
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        http.get(stats_url) as response,
    ):
        stats: dict[str, int] = await response.json()
        return stats


async def main(args: argparse.Namespace) -> int:
    os.environ[TOKEN_ENV] = TOKEN
    count = args.records
    baseline_records = [answered_call(n, pbx_node="bench-bare") for n in range(count)]
    outbox_records = [answered_call(n, pbx_node="bench-outbox") for n in range(count)]
    warm_up = [answered_call(n, pbx_node="bench-warm") for n in range(200)]
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp, LocalRedis() as server:
        redis = aioredis.Redis.from_url(server.url)
        sink, url = await _start_sink(Path(tmp) / "sink.sqlite3")
        spool = Spool(Path(tmp) / "spool.jsonl")
        try:
            await redis.config_set("appendfsync", args.appendfsync)
            await _bare_posts(url, warm_up)
            bare_s = await _bare_posts(url, baseline_records)
            xadd_s = await _xadd_only(redis, outbox_records, spool)
            e2e_s = await _end_to_end(redis, url, outbox_records, spool, args.dispatchers)
            counts = await _sink_counts(url)
        finally:
            sink.terminate()
            await sink.wait()
            await redis.aclose()
    delivered = counts["deliveries"] - len(warm_up) - count
    bare, xadd, e2e = count / bare_s, count / xadd_s, count / e2e_s
    print(f"records {count:,}, {args.dispatchers} dispatcher(s), {CONNECTIONS} connections, "
          f"Redis appendfsync {args.appendfsync}, sink in a child process, loopback")  # fmt: skip
    print(f"  bare POST to the sink     {bare:9,.0f} records/s")
    print(f"  outbox hand-over (XADD)   {xadd:9,.0f} records/s   (no dispatcher running)")
    print(f"  outbox end-to-end         {e2e:9,.0f} records/s   ({delivered:,} delivered, "
          f"{counts['duplicate_posts_absorbed']} duplicate POSTs)")  # fmt: skip
    if delivered != count or counts["work_orders"] != len(warm_up) + 2 * count:
        print(f"outbox: FAILED, {delivered:,} of {count:,} records delivered", file=sys.stderr)
        return 1
    print(f"outbox: {e2e:,.0f} records/s end-to-end, ratio {e2e / bare:.2f} vs bare POST ({bare:,.0f}/s)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--dispatchers", type=int, default=2)
    parser.add_argument("--appendfsync", choices=("everysec", "always"), default="everysec")
    sys.exit(asyncio.run(main(parser.parse_args())))
