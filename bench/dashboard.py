"""Dashboard push latency and gateway CPU with many browsers watching a busy hotline.

Processes as in production: PBX simulators (``hotline-gateway simulate``, one per Asterisk node)
with enough traffic to keep the calls up, the reference order system (``hotline-gateway
order-sink``, in its own process: its SQLite writes must not stall the clients' reads), one
gateway (``hotline-gateway run``) controlling the
first node and taking the others over (``HOTLINE_TAKEOVER_NODES``: no other instance holds their
leases), and this script holding the SSE clients (the dashboard's /api/live stream). Latency is
from the moment the gateway built a snapshot (its ``at``) to the moment a client has read it, so
it includes the hub's coalescing (at most 4 pushes a second); each client gets the whole snapshot
once and then deltas, and the figures count both. This process's own loop lag (how late a 50 ms
sleep wakes) is printed beside it: a late reader would count as a late push. CPU is the gateway process's own (utime + stime
from /proc) over each phase. Every server listens on 127.0.0.1 and is stopped at the end.

Two floors in one run: the city (one node, about 1,000 calls and seats; one client, then 200)
is the baseline; the province (10 nodes, 10,000 seats, 5,000 calls, 200 clients) is the target
of issue 14: push latency p99 < 500 ms and gateway CPU under one core.

    .venv/bin/python bench/dashboard.py [--clients 200] [--seconds 60] [--only city|province]
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
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp

from gateway.demo import demo_environment
from gateway.localredis import LocalRedis, free_port
from gateway.merge.loader import load_config

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "hotline_merge.yaml"
TIME_SCALE = 0.25  # four simulated seconds per real second: the floor fills in under a minute
QUEUES = 8  # in hotline_merge.yaml
SHARED = 5  # places per queue taken by the roster's seats that are in several queues: one seat each
MEAN_CALL_S = 148.0  # measured (4,450 calls up at 165): abandons and short calls make it less than the talk
TICKS = os.sysconf("SC_CLK_TCK")
AT = re.compile(rb'^data: ?\{"at":"([^"]+)"', re.MULTILINE)


def peak_rss_mb(pid: int) -> float:
    found = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(found[1]) / 1024 if found else float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Received:
    clients: int
    latencies: list[float]
    bytes: int = 0
    connected_s: float = 0.0  # until every client had its whole snapshot
    lag: list[float] = field(default_factory=list)  # this process's loop lag, sampled
    first: set[int] = field(default_factory=set)  # the streams that had their whole snapshot
    all_first: asyncio.Event = field(default_factory=asyncio.Event)


async def probe_lag(lag: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        began = time.monotonic()
        await asyncio.sleep(0.05)
        lag.append(time.monotonic() - began - 0.05)


async def watch(
    session: aiohttp.ClientSession, url: str, token: str, received: Received, stop: asyncio.Event
) -> None:
    """Read SSE messages (they can exceed aiohttp's 64 KiB line limit, so split by hand; a whole
    snapshot comes in many chunks, joined once it is complete)."""
    latencies = received.latencies
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        parts: list[bytes] = []
        async for chunk in response.content.iter_any():
            received.bytes += len(chunk)
            ends = b"\n\n" in chunk or (parts and parts[-1].endswith(b"\n") and chunk.startswith(b"\n"))
            parts.append(chunk)
            if not ends:
                continue
            *messages, rest = b"".join(parts).split(b"\n\n")
            parts = [rest]
            received.first.add(id(response))
            if len(received.first) == received.clients:
                received.all_first.set()
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
) -> tuple[Received, float]:
    received = Received(clients, [])
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        tasks = [asyncio.create_task(watch(session, url, token, received, stop)) for _ in range(clients)]
        # Every page opens with a whole snapshot (about 130 bytes a seat); when they all open at
        # once it takes a while. The figures are the steady state after it.
        began = time.monotonic()
        async with asyncio.timeout(120):
            await received.all_first.wait()
        received.connected_s = time.monotonic() - began
        await asyncio.sleep(5)  # and the deltas that queued behind them
        received.latencies.clear()
        received.bytes = 0
        tasks.append(asyncio.create_task(probe_lag(received.lag, stop)))
        cpu0, t0 = cpu_seconds(gateway_pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = (cpu_seconds(gateway_pid) - cpu0) / (time.monotonic() - t0)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return received, cpu


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


@dataclass(frozen=True)
class Floor:
    name: str
    nodes: int
    calls: int  # calls up at once across the nodes
    seats: int  # seats logged in across the nodes
    clients: tuple[int, ...]  # dashboards in each measured phase


CITY = Floor("city", nodes=1, calls=1000, seats=1000, clients=(1, 200))
PROVINCE = Floor("province", nodes=10, calls=5000, seats=10_000, clients=(200,))


async def pbx_calls(control_urls: list[str]) -> int:
    """Calls up on every node, as the simulators count them (not the gateway)."""
    async with aiohttp.ClientSession() as session:
        total = 0
        for url in control_urls:
            async with session.get(url + "/status") as response:
                total += int((await response.json()).get("calls", 0))
        return total


async def shown(url: str, token: str) -> int:
    """Seats logged in on the dashboard's own snapshot (every node's)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/api/snapshot", headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        snapshot = await response.json()
    return sum(s["state"] != "logged_out" for s in snapshot["seats"])


async def measure(floor: Floor, seconds: float) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp, LocalRedis(aof=False) as redis:
        env = demo_environment({k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}, CONFIG)
        config = load_config(CONFIG)
        sink_port = free_port()
        sink = spawn(["order-sink", "--port", str(sink_port), "--db", f"{tmp}/orders.sqlite3",
                      "--token-env", config.order_system.token_env], env)  # fmt: skip
        rate = floor.calls / floor.nodes / MEAN_CALL_S  # per node, per simulated second
        per_queue = -(-floor.seats // floor.nodes // QUEUES) + SHARED
        ports = [(free_port(), free_port()) for _ in range(floor.nodes)]
        sims = [
            spawn(
                ["simulate", "--port", str(ami), "--control-port", str(control), "--rate", f"{rate:.3f}",
                 "--seats-per-queue", str(per_queue), "--seed", str(n + 1), "--time-scale", str(TIME_SCALE)],
                env,
            )
            for n, (ami, control) in enumerate(ports)
        ]  # fmt: skip
        http_port = free_port()
        env.update(
            HOTLINE_REDIS_URL=redis.url, HOTLINE_AMI_PORT=str(ports[0][0]), HOTLINE_HTTP_PORT=str(http_port),
            HOTLINE_ORDER_URL=f"http://127.0.0.1:{sink_port}/work-orders", HOTLINE_SPOOL_DIR=f"{tmp}/spool", HOTLINE_LOG_LEVEL="WARNING",
            HOTLINE_NODE_ID="pbx-1", HOTLINE_LEASE_TTL_MS="1000",
            HOTLINE_TAKEOVER_NODES=",".join(f"pbx-{n + 1}=127.0.0.1:{ami}" for n, (ami, _) in enumerate(ports) if n),
        )  # fmt: skip
        gateway = spawn(["run"], env)
        base, token = f"http://127.0.0.1:{http_port}", env["HOTLINE_SUPERVISOR_TOKENS"]
        controls = [f"http://127.0.0.1:{control}" for _, control in ports]
        try:
            began = time.monotonic()
            calls = 0
            while time.monotonic() - began < 240:
                await asyncio.sleep(2)
                try:
                    calls = await pbx_calls(controls)
                    seats = await shown(base, token)
                except (aiohttp.ClientError, KeyError):
                    continue
                if calls >= floor.calls * 0.95 and seats >= floor.seats * 0.95:
                    break
            print(f"{floor.name}: {floor.nodes} node(s), {calls:,} calls up, {seats:,} seats on the dashboard "
                  f"(after {time.monotonic() - began:.0f} s)", flush=True)  # fmt: skip
            results = []
            for clients in floor.clients:
                received, cpu = await phase(base + "/api/live", token, clients, seconds, gateway.pid)
                calls = await pbx_calls(controls)
                rss = peak_rss_mb(gateway.pid)
                results.append(Result(floor, clients, calls, seats, received, seconds, cpu, rss))
                print(f"  {results[-1].line()}", flush=True)
        finally:
            for proc in (gateway, *sims, sink):
                stop(proc)
    return results


@dataclass(frozen=True)
class Result:
    floor: Floor
    clients: int
    calls: int
    seats: int
    received: Received  # by every client
    seconds: float
    cpu: float  # share of one core
    rss_mb: float  # the gateway's peak resident memory so far

    @property
    def latencies(self) -> list[float]:
        return self.received.latencies

    @property
    def p99_ms(self) -> float:
        return quantile(self.latencies, 0.99) * 1000

    def line(self) -> str:
        pushes = len(self.latencies)
        return (
            f"{self.clients} client(s): {pushes:,} pushes received ({pushes / self.clients / self.seconds:.1f}/s "
            f"each, {self.received.bytes / max(1, pushes) / 1000:.1f} kB each), latency p50 "
            f"{quantile(self.latencies, 0.5) * 1000:.0f} ms, p99 {self.p99_ms:.0f} ms (this process's loop lag "
            f"p99 {quantile(self.received.lag, 0.99) * 1000:.0f} ms), gateway CPU {self.cpu * 100:.0f} % of "
            f"one core, peak RSS {self.rss_mb:.0f} MB; all {self.clients} had their first, whole snapshot "
            f"{self.received.connected_s:.1f} s after connecting at once"
        )


async def main(args: argparse.Namespace) -> None:
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores)")
    floors = [replace(CITY, clients=(1, args.clients)), replace(PROVINCE, clients=(args.clients,))]
    results = [
        r for floor in floors if args.only in (None, floor.name) for r in await measure(floor, args.seconds)
    ]
    city = next((r for r in results if r.floor.name == "city" and r.clients == args.clients), None)
    province = next((r for r in results if r.floor.name == "province"), None)
    parts = [
        f"{r.floor.name} {r.floor.nodes} node(s) {r.seats:,} seats {r.calls:,} calls {r.clients} clients: "
        f"p99 {r.p99_ms:.0f} ms, CPU {r.cpu * 100:.0f} %"
        for r in (city, province)
        if r is not None
    ]
    if city and province:
        parts.append(
            f"ratio p99 {province.p99_ms / city.p99_ms:.2f} and CPU {province.cpu / city.cpu:.2f} vs city"
        )
    print("dashboard: " + "; ".join(parts))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    # A minute: at the province's scale the gateway's full garbage collections come every 10 to
    # 20 s, and a window must hold several for the p99 to count them at their real rate.
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--only", choices=("city", "province"))
    asyncio.run(main(parser.parse_args()))
