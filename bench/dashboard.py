"""Dashboard push latency and gateway CPU with many browsers watching a busy hotline.

Three processes, as in production: the PBX simulator (``hotline-gateway simulate``) with enough
traffic to keep about 1,000 calls up at once, the gateway (``hotline-gateway run``), and this
script holding the SSE clients (the dashboard's /api/live stream). Latency is from the moment the
gateway built a snapshot (its ``at``) to the moment a client has read it, so it includes the
hub's coalescing (at most 4 pushes a second). CPU is the gateway process's own (utime + stime
from /proc) over each phase. Baseline in the same run: one client; then 200 clients. Every server
listens on 127.0.0.1 and is stopped at the end.

    .venv/bin/python bench/dashboard.py [--clients 200] [--calls 1000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from gateway.demo import demo_environment
from gateway.localredis import LocalRedis, free_port
from gateway.merge.loader import load_config
from gateway.ordersink.sink import OrderSink

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "hotline_merge.yaml"
TIME_SCALE = 0.25  # four simulated seconds per real second: the floor fills in under a minute
MEAN_CALL_S = 165.0  # seat ring + lognormal talk of the simulator's default seats (150 s)
TICKS = os.sysconf("SC_CLK_TCK")
AT = re.compile(rb'^data: ?\{"at":"([^"]+)"', re.MULTILINE)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def watch(
    session: aiohttp.ClientSession, url: str, token: str, latencies: list[float], stop: asyncio.Event
) -> None:
    """Read SSE messages (they can exceed aiohttp's 64 KiB line limit, so split by hand)."""
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        buffer = b""
        async for chunk in response.content.iter_any():
            buffer += chunk
            *messages, buffer = buffer.split(b"\n\n")
            now = time.time()
            for message in messages:
                # The snapshot's first field is its time: read it without parsing the whole page.
                found = AT.search(message, 0, 200)
                if found:
                    latencies.append(now - dt.datetime.fromisoformat(found[1].decode()).timestamp())
            if stop.is_set():
                return


async def phase(
    url: str, token: str, clients: int, seconds: float, gateway_pid: int
) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        tasks = [asyncio.create_task(watch(session, url, token, latencies, stop)) for _ in range(clients)]
        await asyncio.sleep(2)  # connect and settle
        latencies.clear()
        cpu0, t0 = cpu_seconds(gateway_pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = (cpu_seconds(gateway_pid) - cpu0) / (time.monotonic() - t0)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies, cpu, clients


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *command], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print(f"pid {proc.pid} ignored SIGTERM for 30 s; killed", file=sys.stderr)
        proc.kill()
        proc.wait()


def quantile(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) > 1 else float("nan")


async def live_calls(url: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/api/status", headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        return int((await response.json())["live_calls"])


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp, LocalRedis(aof=False) as redis:
        env = demo_environment({k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}, CONFIG)
        config = load_config(CONFIG)
        sink = OrderSink(Path(tmp) / "orders.sqlite3", env[config.order_system.token_env])
        await sink.start()
        ami_port, http_port = free_port(), free_port()
        rate = args.calls / MEAN_CALL_S  # calls per simulated second for ~args.calls up at once
        # About as many seats as calls: most talk, some wait (waiting callers are live calls too).
        sim = spawn(
            ["simulate", "--port", str(ami_port), "--rate", f"{rate:.3f}", "--seats-per-queue",
             str(args.calls // 8), "--seed", "1", "--time-scale", str(TIME_SCALE)], env,
        )  # fmt: skip
        env.update(
            HOTLINE_REDIS_URL=redis.url, HOTLINE_AMI_PORT=str(ami_port), HOTLINE_HTTP_PORT=str(http_port),
            HOTLINE_ORDER_URL=sink.url, HOTLINE_SPOOL_DIR=f"{tmp}/spool", HOTLINE_LOG_LEVEL="WARNING",
        )  # fmt: skip
        gateway = spawn(["run"], env)
        base, token = f"http://127.0.0.1:{http_port}", env["HOTLINE_SUPERVISOR_TOKENS"]
        try:
            began = time.monotonic()
            calls = 0
            while time.monotonic() - began < 180:
                await asyncio.sleep(2)
                try:
                    calls = await live_calls(base, token)
                except aiohttp.ClientError:
                    continue
                if calls >= args.calls * 0.95:
                    break
            print(f"live calls in the gateway: {calls:,} (after {time.monotonic() - began:.0f} s)")
            results = [
                await phase(base + "/api/live", token, 1, args.seconds / 2, gateway.pid),
                await phase(base + "/api/live", token, args.clients, args.seconds, gateway.pid),
            ]
            calls = await live_calls(base, token)
        finally:
            for proc in (gateway, sim):
                stop(proc)
            await sink.stop()
    (base_lat, base_cpu, _), (lat, cpu, clients) = results
    for name, (latencies, cpu_share, n) in (("baseline", results[0]), ("loaded", results[1])):
        print(
            f"{name}: {n} client(s), {len(latencies):,} pushes received, latency p50 {quantile(latencies, 0.5) * 1000:.0f} ms, "
            f"p99 {quantile(latencies, 0.99) * 1000:.0f} ms, gateway CPU {cpu_share * 100:.0f} % of one core"
        )
    print(
        f"dashboard: {clients} clients, {calls:,} live calls, p50 {quantile(lat, 0.5) * 1000:.0f} ms, "
        f"p99 {quantile(lat, 0.99) * 1000:.0f} ms, gateway CPU {cpu * 100:.0f} %, "
        f"ratio p99 {quantile(lat, 0.99) / quantile(base_lat, 0.99):.2f} and CPU {cpu / base_cpu:.2f} vs 1 client"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    asyncio.run(main(parser.parse_args()))
