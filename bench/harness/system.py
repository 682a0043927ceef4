"""The whole product as separate processes on 127.0.0.1, the system faults, and their accounting.

Shared by ``tests/reliability/test_system_faults.py`` (short faults) and ``bench/faults.py`` (the
order system down for a full minute). Each fault gets a fresh stack: a private redis-server
(``LocalRedis``, AOF), the reference order system (``hotline-gateway order-sink``), the PBX
simulator with time-scaled traffic (``hotline-gateway simulate --control-port``) and the gateway
(``hotline-gateway run``), optionally with separate ``python -m gateway.records.dispatcher``
processes. Everything listens on 127.0.0.1 and everything started is stopped (killed if need be).

The ground truth is the simulator's: every citizen call its traffic placed that is over
(``GET /calls/ended``). After each fault:
- time to recover: from the end of the fault (the killed process started again, the stopped one
  back) until the order system is caught up: every call over at that moment is a final work
  order within a second (so a gateway still waiting for its lease has not recovered);
- lost: calls over by the cut-off without a final work order (``within`` seconds to arrive);
- duplicated: final work orders beyond one per citizen call (for calls nobody placed, or twice).
The sink's deduplication by idempotency key is what the contract requires; a copy it absorbed is
not a duplicated work order (``absorbed`` counts them, for the record).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import redis.asyncio as aioredis

from gateway.demo import demo_environment
from gateway.localredis import LocalRedis, free_port
from gateway.merge.loader import load_config
from gateway.records.model import record_id_for
from gateway.records.outbox import backlog

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "hotline_merge.yaml"


@dataclass(frozen=True)
class Timing:
    """How long each fault lasts (real seconds) and how busy the hotline is meanwhile."""

    time_scale: float = 0.02  # real seconds per simulated second: calls last seconds, not minutes
    rate: float = 0.1  # calls per simulated second (5 a second in real time at 0.02)
    warmup_s: float = 2.0
    restart_delay_s: float = 0.5  # how soon a supervisor starts a killed gateway again
    sim_down_s: float = 1.0
    redis_down_s: float = 2.0
    order_down_s: float = 5.0
    stall_s: float = 4.0
    after_s: float = 2.0  # traffic after recovery, before the cut-off
    within_s: float = 45.0  # a work order later than this after the fault counts as lost


TEST = Timing()
BENCH = Timing(time_scale=0.05, rate=0.1, warmup_s=10.0, restart_delay_s=1.0, sim_down_s=3.0,
               redis_down_s=10.0, order_down_s=60.0, stall_s=10.0, after_s=10.0, within_s=120.0)  # fmt: skip


class Process:
    """A child process whose output goes to a log file; ``kill`` is SIGKILL, ``stop`` SIGTERM."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = logs / f"{name}.log"
        self._log: IO[bytes] | None = None
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Process:
        self._log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        await self._end(signal.SIGKILL)

    async def stop(self) -> None:
        await self._end(signal.SIGTERM)

    async def _end(self, signum: int) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signum)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]


async def until(
    check: Callable[[], Awaitable[bool]], *, within: float, what: str, every: float = 0.1
) -> float:
    """Poll ``check`` until it holds; returns how long it took, raises TimeoutError naming ``what``."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > within:
            raise TimeoutError(f"{what}: not within {within:g} s")
        await asyncio.sleep(every)
    return time.monotonic() - began


@dataclass
class SystemStack:
    """Redis, order sink, simulator, gateway (and dispatchers) as processes; see the module docstring."""

    workdir: Path
    timing: Timing = TEST
    dispatchers: int = 0  # separate dispatcher processes; the gateway then runs none itself
    env: dict[str, str] = field(default_factory=dict)
    redis: LocalRedis | None = None
    processes: dict[str, Process] = field(default_factory=dict)
    http: aiohttp.ClientSession | None = None
    node: str = ""

    async def __aenter__(self) -> SystemStack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = load_config(CONFIG)
        self.node = config.ami.node_id
        self.redis = LocalRedis(data_dir=self.workdir / "redis").start()
        ports = {name: free_port() for name in ("ami", "control", "sink", "http")}
        self.env = demo_environment(os.environ, CONFIG) | {
            "HOTLINE_CONFIG": str(CONFIG), "HOTLINE_REDIS_URL": self.redis.url, "HOTLINE_LOG_LEVEL": "WARNING",
            "HOTLINE_AMI_HOST": "127.0.0.1", "HOTLINE_AMI_PORT": str(ports["ami"]),
            "HOTLINE_ORDER_URL": f"http://127.0.0.1:{ports['sink']}/work-orders",
            "HOTLINE_HTTP_HOST": "127.0.0.1", "HOTLINE_HTTP_PORT": str(ports["http"]),
            "HOTLINE_SPOOL_DIR": str(self.workdir / "spool"), "HOTLINE_DIALPLANS_DIR": str(self.workdir / "dialplans"),
        }  # fmt: skip
        self.control_url = f"http://127.0.0.1:{ports['control']}"
        self.sink_url = f"http://127.0.0.1:{ports['sink']}"
        self.gateway_url = f"http://127.0.0.1:{ports['http']}"
        self.token_env = config.order_system.token_env
        self.sink_db = self.workdir / "orders.sqlite3"
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        t = self.timing
        self.processes = {
            "sink": Process("sink", _cli("order-sink", "--host", "127.0.0.1", "--port", str(ports["sink"]),
                                         "--db", str(self.sink_db), "--token-env", self.token_env), self.env, logs),
            "simulator": Process("simulator", _cli(
                "simulate", "--config", str(CONFIG), "--host", "127.0.0.1", "--port", str(ports["ami"]),
                "--control-port", str(ports["control"]), "--rate", f"{t.rate:g}", "--seed", "12345",
                "--time-scale", f"{t.time_scale:g}"), self.env, logs),
            "gateway": Process("gateway", _cli("run", "--dispatchers", "0" if self.dispatchers else "2"),
                               self.env, logs),
        }  # fmt: skip
        for i in range(self.dispatchers):
            self.processes[f"dispatcher-{i}"] = Process(f"dispatcher-{i}", [
                sys.executable, "-m", "gateway.records.dispatcher", "--redis-url", self.redis.url,
                "--order-url", self.env["HOTLINE_ORDER_URL"], "--token-env", self.token_env,
                "--consumer", f"dispatcher-{i}", "--timeout-s", "2", "--retry-cap-s", "1", "--claim-idle-ms", "6000",
            ], self.env, logs)  # fmt: skip
        await asyncio.gather(self.processes["sink"].start(), self.processes["simulator"].start())
        await until(self.sink_up, within=20, what="order sink up")
        await until(self.simulator_up, within=20, what="simulator up")
        await asyncio.gather(
            *(p.start() for name, p in self.processes.items() if name not in ("sink", "simulator"))
        )
        await self.wait_gateway_ready()

    async def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            await process.stop()
        if self.http is not None:
            await self.http.close()
        if self.redis is not None:
            self.redis.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.processes.values())

    # -- probes ------------------------------------------------------------------------------
    async def _get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        assert self.http is not None
        try:
            async with self.http.get(url, headers=headers) as response:
                body = await response.json(content_type=None) if response.status == 200 else None
                return response.status, body
        except (aiohttp.ClientError, TimeoutError):
            return 0, None

    async def _send(
        self,
        method: str,
        url: str,
        body: object = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        assert self.http is not None
        async with self.http.request(method, url, json=body, params=params, headers=headers) as response:
            response.raise_for_status()
            return await response.json(content_type=None)

    def _sink_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env[self.token_env]}"}

    async def sink_up(self) -> bool:
        return (await self._get(f"{self.sink_url}/_sink/stats", self._sink_headers()))[0] == 200

    async def simulator_up(self) -> bool:
        status, body = await self._get(f"{self.control_url}/status")
        return status == 200 and bool(body and body.get("running") and body.get("booted"))

    async def gateway_ready(self) -> bool:
        return (await self._get(f"{self.gateway_url}/readyz"))[0] == 200

    async def wait_gateway_ready(self, within: float = 30) -> float:
        return await until(self.gateway_ready, within=within, what="gateway ready")

    # -- the ground truth and the order system's view -----------------------------------------
    async def calls(self) -> tuple[set[str], set[str]]:
        """(over, still up): Linkedids of the citizen calls the simulator's traffic placed."""
        status, body = await self._get(f"{self.control_url}/calls/ended")
        if status != 200 or body is None:
            raise RuntimeError(f"simulator control answered {status}")
        return {c["linkedid"] for c in body["ended"]}, set(body["live"])

    def final_orders(self) -> set[str]:
        """Record ids of the final work orders the order system holds."""
        with contextlib.closing(sqlite3.connect(self.sink_db, timeout=5)) as db:
            return {rid for (rid,) in db.execute("SELECT record_id FROM work_orders WHERE stage = 'final'")}

    def _count(self, sql: str) -> int:
        with contextlib.closing(sqlite3.connect(self.sink_db, timeout=5)) as db:
            (count,) = db.execute(sql).fetchone()
            return int(count)

    def absorbed(self) -> int:
        return self._count("SELECT COALESCE(SUM(copies - 1), 0) FROM deliveries")

    def from_pbx_log(self) -> int:
        return self._count(
            "SELECT COUNT(*) FROM work_orders WHERE json_extract(record, '$.origin') = 'pbx_log'"
        )

    def record_ids(self, linkedids: set[str]) -> set[str]:
        return {record_id_for(self.node, linkedid) for linkedid in linkedids}

    async def wait_ordered(self, linkedids: set[str], within: float) -> None:
        """Until every one of ``linkedids`` is a final work order, or ``within`` seconds passed."""
        wanted = self.record_ids(linkedids)

        async def done() -> bool:
            return wanted <= await asyncio.to_thread(self.final_orders)

        with contextlib.suppress(TimeoutError):
            await until(done, within=within, what="work orders", every=0.1)

    async def until_caught_up(self, within: float, lag: float = 1.0) -> float | None:
        """Seconds from now until the order system is caught up again: the first moment whose
        ended calls (the simulator's) are all final work orders ``lag`` seconds later. None if
        that never happens within ``within`` seconds."""
        began = time.monotonic()
        samples: deque[tuple[float, set[str]]] = deque()
        while time.monotonic() - began < within:
            over, _ = await self.calls()
            samples.append((time.monotonic(), self.record_ids(over)))
            orders = await asyncio.to_thread(self.final_orders)
            while samples and samples[0][0] <= time.monotonic() - lag:
                sampled_at, wanted = samples.popleft()
                if wanted <= orders:
                    return sampled_at - began
            await asyncio.sleep(0.1)
        return None

    async def dead_letters(self) -> int:
        assert self.redis is not None
        client = aioredis.Redis.from_url(self.redis.url)
        try:
            return (await backlog(client)).dead_letters
        finally:
            await client.aclose()

    # -- faults ------------------------------------------------------------------------------
    async def simulator(self, path: str, **params: str) -> Any:
        return await self._send("POST", f"{self.control_url}{path}", params=params)

    async def sink_faults(self, faults: dict[str, object]) -> None:
        await self._send("PUT", f"{self.sink_url}/_sink/faults", faults, headers=self._sink_headers())

    def simulated(self, real_s: float) -> str:
        return f"{real_s / self.timing.time_scale:g}"


# --- the faults ------------------------------------------------------------------------------

Inject = Callable[[SystemStack], Awaitable[None]]


async def gateway_killed(stack: SystemStack) -> None:
    """kill -9 under traffic; a supervisor starts it again (same node, same spool)."""
    gateway = stack.processes["gateway"]
    await gateway.kill()
    await asyncio.sleep(stack.timing.restart_delay_s)
    await gateway.start()


async def simulator_restarted(stack: SystemStack) -> None:
    """Asterisk restarts: every call up is cut off, AMI sessions close, back after the downtime."""
    await stack.simulator("/faults/restart", downtime=stack.simulated(stack.timing.sim_down_s))
    await asyncio.sleep(stack.timing.sim_down_s)
    await until(stack.simulator_up, within=20, what="simulator back")


async def redis_restarted(stack: SystemStack) -> None:
    """redis-server killed (SIGKILL) and started again on its AOF: records wait in the spool."""
    assert stack.redis is not None
    stack.redis.stop(kill=True)
    await asyncio.sleep(stack.timing.redis_down_s)
    await asyncio.to_thread(stack.redis.start)


async def order_system_down(stack: SystemStack) -> None:
    """The order system killed and down for ``order_down_s``, then back with its data."""
    sink = stack.processes["sink"]
    await sink.kill()
    await asyncio.sleep(stack.timing.order_down_s)
    await sink.start()
    await until(stack.sink_up, within=20, what="order sink back")


async def ami_stalled(stack: SystemStack) -> None:
    """Asterisk's AMI answers nothing for ``stall_s`` (the gateway's watchdog may reconnect)."""
    await stack.simulator("/faults/stall", seconds=stack.simulated(stack.timing.stall_s))
    await asyncio.sleep(stack.timing.stall_s)


async def dispatcher_killed(stack: SystemStack) -> None:
    """One of two dispatcher processes killed -9 holding undelivered records: the order system
    answered 503 for a while, so both had batches pending; the other one must take them over."""
    await stack.sink_faults({"status": 503})
    await asyncio.sleep(1.0)
    await stack.processes["dispatcher-0"].kill()
    await stack.sink_faults({})


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Inject
    dispatchers: int = 0  # separate dispatcher processes


FAULTS = (
    Fault("gateway kill -9", gateway_killed),
    Fault("simulator (Asterisk) restart", simulator_restarted),
    Fault("Redis restart", redis_restarted),
    Fault("order system down", order_system_down),
    Fault("AMI stall", ami_stalled),
    Fault("dispatcher kill -9", dispatcher_killed, dispatchers=2),
)


@dataclass(frozen=True)
class FaultResult:
    fault: str
    calls: int  # citizen calls over at the cut-off
    lost: int
    duplicated: int
    recovery_s: float | None  # None: not recovered within ``Timing.within_s``
    absorbed: int  # copies the order system absorbed by idempotency key (not duplicates)
    dead_letters: int
    from_pbx_log: int  # work orders the backstop built from the PBX's log of ended calls

    @property
    def clean(self) -> bool:
        return (
            self.lost == 0 and self.duplicated == 0 and self.recovery_s is not None and self.dead_letters == 0
        )


async def run_fault(fault: Fault, workdir: Path, timing: Timing = TEST) -> FaultResult:
    """One fault on a fresh stack, measured as the module docstring says."""
    async with SystemStack(workdir, timing, dispatchers=fault.dispatchers) as stack:
        await asyncio.sleep(timing.warmup_s)
        await fault.inject(stack)
        recovery = await stack.until_caught_up(timing.within_s)
        await asyncio.sleep(timing.after_s)
        over, _ = await stack.calls()
        await stack.wait_ordered(over, timing.within_s)
        finals = await asyncio.to_thread(stack.final_orders)
        ended, live = await stack.calls()  # read after the orders: every order's call is in here
        return FaultResult(
            fault=fault.name,
            calls=len(over),
            lost=len(stack.record_ids(over) - finals),
            duplicated=len(finals - stack.record_ids(ended | live)),
            recovery_s=recovery,
            absorbed=await asyncio.to_thread(stack.absorbed),
            dead_letters=await stack.dead_letters(),
            from_pbx_log=await asyncio.to_thread(stack.from_pbx_log),
        )


def table(results: Sequence[FaultResult]) -> str:
    rows = [("fault", "calls", "records lost", "duplicated", "time to recover (s)")]
    for r in results:
        recovery = f"{r.recovery_s:.1f}" if r.recovery_s is not None else "not recovered"
        rows.append((r.fault, str(r.calls), str(r.lost), str(r.duplicated), recovery))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(results: Sequence[FaultResult]) -> str:
    recoveries = [r.recovery_s for r in results if r.recovery_s is not None]
    worst = "never" if len(recoveries) < len(results) else f"{max(recoveries, default=0.0):.1f} s"
    return (f"faults: {len(results)} faults, {sum(r.lost for r in results)} lost, "
            f"{sum(r.duplicated for r in results)} duplicated, worst recovery {worst}")  # fmt: skip
