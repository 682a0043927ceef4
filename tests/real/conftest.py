"""The real-PBX tier: the product against a real Asterisk 22 with real SIP phones and trunk.

One session stack (start-up costs seconds): the PBX under test and the phones/carrier instance
(``tests/real/asterisk.py``, ``phones.py``), a private redis-server, the reference order system
and the gateway as ``hotline-gateway run`` processes (``bench/harness/system.py``'s
``Process``). Tests talk to the gateway over HTTP, to the phones and the PBX over AMI, and read
what Asterisk itself logged (queue_log, CDR). Seats are handed out fresh per test (each queue's
wrap-up would otherwise make one test wait for the previous one), callers get unique numbers.

Without an Asterisk the tier is skipped, one line saying why; with ``CI=true`` that fails instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bench.harness.system import Process, until
from gateway.demo import demo_environment
from gateway.localredis import LocalRedis, free_port
from tests.real.ami import Ami, Message
from tests.real.asterisk import (
    RECORDER_USER,
    ROOT,
    Package,
    Pbx,
    PbxPorts,
    PbxSecrets,
    find_asterisk,
    namespace_works,
)
from tests.real.phones import DEAD_SEAT, SLOW_SEAT, Phones

CONFIG = ROOT / "hotline_merge.yaml"
# Seats with phones: general seats handed out one per test, the slow and the dead one, and the
# department seats the scenarios use (one expert per queue is enough).
GENERAL_POOL = [f"{n}" for n in range(1004, 1041)]
SEATS = sorted(
    {*GENERAL_POOL, "1001", SLOW_SEAT, DEAD_SEAT, "2001", "2002", "2201", "3001", "3002", "4001", "4002"}
)
RTP_BLOCK = 200


def _unavailable() -> str | Package:
    found = find_asterisk()
    if isinstance(found, str):
        return found
    return namespace_works() or found


AVAILABLE = _unavailable()
IN_CI = os.environ.get("CI", "").lower() == "true"
if isinstance(AVAILABLE, str) and not IN_CI:
    # Not collected at all: one line in the summary says why (per-test skips would say it N times).
    collect_ignore_glob = ["test_*.py"]

    def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_line(f"SKIPPED tests/real (real-PBX tier): {AVAILABLE}")


@pytest.fixture(scope="session")
def asterisk_package() -> Package:
    if isinstance(AVAILABLE, str):
        pytest.fail(f"CI=true and the real-PBX tier cannot run: {AVAILABLE}")
    return AVAILABLE


def _rtp_range() -> tuple[int, int]:
    """A block of free UDP ports (RTP) that nothing else of this machine is using right now."""
    import random
    import socket

    for _ in range(50):
        start = random.randrange(20000, 60000 - RTP_BLOCK, 2)
        try:
            for port in range(start, start + RTP_BLOCK, 20):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return start, start + RTP_BLOCK - 1
    raise RuntimeError("no free block of UDP ports for RTP")


@dataclass
class Citizen:
    """A call the carrier placed: its channel on the phones side and the caller's number."""

    number: str
    dialled: str
    channel: str


@dataclass
class RealStack:
    workdir: Path
    pbx: Pbx
    phones: Phones
    redis: LocalRedis
    env: dict[str, str]
    gateway_url: str
    sink_db: Path
    processes: dict[str, Process]
    http: aiohttp.ClientSession
    phones_ami: Ami
    pbx_ami: Ami  # the read-all recorder user: what Asterisk says, for comparisons
    config_path: Path
    pbx_secrets_recorder: str
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _pool: list[str] = field(default_factory=lambda: list(GENERAL_POOL))

    # -- gateway HTTP -------------------------------------------------------------------------
    def headers(self, role: str = "supervisor") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env[f'HOTLINE_{role.upper()}_TOKENS'].split(',')[0]}"}

    async def request(
        self, method: str, path: str, body: object = None, role: str = "supervisor", base: str | None = None
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, (base or self.gateway_url) + path, json=body, headers=self.headers(role)
        ) as response:
            return response.status, await response.json(content_type=None)

    async def get(self, path: str, role: str = "supervisor") -> Any:
        status, body = await self.request("GET", path, role=role)
        assert status == 200, (path, status, body)
        return body

    async def post(self, path: str, body: object = None, role: str = "supervisor") -> Any:
        status, answer = await self.request("POST", path, body or {}, role=role)
        assert status == 200, (path, status, answer)
        return answer

    async def ready(self, base: str | None = None) -> bool:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with self.http.get((base or self.gateway_url) + "/readyz") as response:
                return response.status == 200
        return False

    async def agent(self, seat: str) -> dict[str, Any]:
        agents = (await self.get("/api/agents"))["agents"]
        return next(a for a in agents if a["id"] == seat)

    async def queue(self, name: str) -> dict[str, Any]:
        queues = (await self.get("/api/queues"))["queues"]
        return next(q for q in queues if q["name"] == name)

    async def live_call(self, caller: str) -> dict[str, Any] | None:
        calls = (await self.get("/api/calls"))["calls"]
        return next((c for c in calls if c["caller"] == caller), None)

    async def wait_live_call(
        self, caller: str, *, state: str | None = None, within: float = 30
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}

        async def seen() -> bool:
            call = await self.live_call(caller)
            if call is not None and (state is None or call["state"] == state):
                found.update(call)
                return True
            return False

        await until(seen, within=within, what=f"gateway shows the call of {caller} ({state or 'any state'})")
        return found

    async def call_detail(self, caller: str) -> dict[str, Any]:
        call = await self.wait_live_call(caller)
        return dict(await self.get(f"/api/calls/{call['id']}"))

    # -- seats --------------------------------------------------------------------------------
    def fresh_seat(self) -> str:
        """A general seat (hotline-general only) no other test has used."""
        return self._pool.pop(0)

    async def login(self, seat: str) -> None:
        await self.post(f"/api/agents/{seat}/login", role="seat")
        await until(lambda: self._state_is(seat, "ready"), within=10, what=f"seat {seat} ready")

    async def logout(self, seat: str) -> None:
        await self.post(f"/api/agents/{seat}/logout", role="seat")
        await until(lambda: self._state_is(seat, "logged_out"), within=10, what=f"seat {seat} logged out")

    async def _state_is(self, seat: str, state: str) -> bool:
        return bool((await self.agent(seat))["state"] == state)

    @contextlib.asynccontextmanager
    async def seats_in(self, *seats: str) -> AsyncIterator[None]:
        for seat in seats:
            await self.login(seat)
        try:
            yield
        finally:
            for seat in seats:  # a seat left logged in would take the next test's calls
                await self.post(f"/api/agents/{seat}/logout", role="seat")

    async def members(self, queue: str) -> dict[str, Message]:
        """QueueStatus members of ``queue`` from Asterisk, by seat extension."""
        reply = await self.pbx_ami.action("QueueStatus", Queue=queue)
        return {
            m["Location"].split("/")[1].split("@")[0]: m for m in reply if m.get("Event") == "QueueMember"
        }

    async def reconnect_pbx_ami(self) -> None:
        await self.pbx_ami.__aexit__(None, None, None)
        self.pbx_ami = await Ami(self.pbx.ami_port, RECORDER_USER, self.pbx_secrets_recorder).__aenter__()

    async def entries(self, queue: str) -> list[Message]:
        reply = await self.pbx_ami.action("QueueStatus", Queue=queue)
        return [m for m in reply if m.get("Event") == "QueueEntry"]

    async def pbx_channels(self) -> list[Message]:
        reply = await self.pbx_ami.action("CoreShowChannels")
        return [m for m in reply if m.get("Event") == "CoreShowChannel"]

    # -- the outside world --------------------------------------------------------------------
    def new_number(self) -> str:
        return f"1390{next(self._numbers):07d}"

    async def dial(self, dialled: str, number: str | None = None) -> Citizen:
        """A citizen calls ``dialled`` through the carrier trunk; returns once the PBX answered."""
        number = number or self.new_number()
        channel_id = f"citizen-{number}-{secrets.token_hex(3)}"
        since = len(self.phones_ami.events)
        await self.phones_ami.action(
            "Originate",
            Channel=f"PJSIP/{dialled}@pbx",
            Context="citizen",
            Exten="s",
            Priority="1",
            CallerID=f'"" <{number}>',
            ChannelId=channel_id,
            Async="true",
            Timeout="30000",
        )
        response = await self.phones_ami.wait_event(
            lambda e: e.get("Event") == "OriginateResponse" and e.get("Uniqueid") == channel_id,
            since=since,
            what=f"the PBX answers {number} -> {dialled}",
        )
        assert response.get("Response") == "Success", response
        return Citizen(number, dialled, response["Channel"])

    async def hang_up(self, citizen: Citizen) -> None:
        await self.phones_ami.action("Hangup", Channel=citizen.channel)

    async def press(self, citizen: Citizen, digit: str) -> None:
        """The citizen presses a key (RFC 4733 DTMF to the PBX)."""
        reply = await self.phones_ami.action("PlayDTMF", Channel=citizen.channel, Digit=digit, Duration="250")
        assert reply[0].get("Response") == "Success", reply

    async def seat_channel(self, seat: str) -> str | None:
        """The phone's channel of a call the PBX put through to ``seat`` (on the phones side)."""
        reply = await self.phones_ami.action("CoreShowChannels")
        for item in reply:
            if item.get("Event") == "CoreShowChannel" and item.get("Exten") == seat:
                return item["Channel"]
        return None

    async def seat_hangs_up(self, seat: str) -> None:
        channel = await self.seat_channel(seat)
        assert channel is not None, f"seat {seat} has no call on its phone"
        await self.phones_ami.action("Hangup", Channel=channel)

    async def seat_dials(self, seat: str, number: str) -> None:
        """The seat's phone calls ``number`` on the PBX (``*71``, ``*72``), as the seat's account."""
        await self.phones_ami.action(
            "Originate", Channel=f"PJSIP/{number}@seat-{seat}", Application="Wait", Data="3", Async="true"
        )

    # -- the order system ---------------------------------------------------------------------
    def orders(self) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.sink_db, timeout=5)) as db:
            rows = db.execute("SELECT record FROM work_orders WHERE stage = 'final'").fetchall()
        return [json.loads(r) for (r,) in rows]

    async def order_of(self, caller: str, within: float = 30) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        async def arrived() -> bool:
            found[:] = [o for o in await asyncio.to_thread(self.orders) if o["caller_number"] == caller]
            return bool(found)

        await until(arrived, within=within, what=f"the final work order of {caller}")
        assert len(found) == 1, found
        return found[0]

    def queue_log(self, callid: str) -> list[list[str]]:
        return [row for row in self.pbx.queue_log() if len(row) > 4 and row[1] == callid]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def real(asterisk_package: Package) -> AsyncIterator[RealStack]:
    workdir = Path(tempfile.mkdtemp(prefix="hotline-real-"))
    site = workdir / "site"
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(ROOT / "docker" / "gen_seats.py"), "--out", str(site)],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    with (site / "seat-credentials.csv").open(encoding="utf-8") as f:
        passwords = {row["extension"]: row["password"] for row in csv.DictReader(f)}
    pbx_ports = PbxPorts(sip=free_port(), ami=free_port(), rtp=_rtp_range())
    pbx_secrets = PbxSecrets(secrets.token_hex(16), secrets.token_hex(16), secrets.token_hex(16))
    carrier_port = free_port()
    pbx = Pbx(
        asterisk_package,
        workdir / "pbx",
        pbx_ports,
        pbx_secrets,
        site,
        carrier=f"127.0.0.2:{carrier_port}",
        carrier_match="127.0.0.2",
    )
    phones = Phones(
        asterisk_package,
        workdir / "phones",
        ami_port=free_port(),
        ami_secret=secrets.token_hex(16),
        seat_port=free_port(),
        carrier_port=carrier_port,
        rtp=_rtp_range(),
        pbx_sip=f"127.0.0.1:{pbx_ports.sip}",
        passwords={s: passwords[s] for s in SEATS},
    )
    redis = LocalRedis(data_dir=workdir / "redis").start()
    config_path = workdir / "hotline_merge.yaml"
    shutil.copy(CONFIG, config_path)
    (workdir / "recordings").symlink_to(ROOT / "recordings")
    http_port, sink_port = free_port(), free_port()
    env = demo_environment(os.environ, config_path) | {
        "HOTLINE_CONFIG": str(config_path),
        "HOTLINE_REDIS_URL": redis.url,
        "HOTLINE_LOG_LEVEL": "INFO",
        "HOTLINE_AMI_HOST": "127.0.0.1",
        "HOTLINE_AMI_PORT": str(pbx_ports.ami),
        "HOTLINE_AMI_SECRET": pbx_secrets.ami,
        "HOTLINE_AMI_ADMIN_SECRET": pbx_secrets.ami_admin,
        "HOTLINE_ORDER_URL": f"http://127.0.0.1:{sink_port}/work-orders",
        "HOTLINE_HTTP_HOST": "127.0.0.1",
        "HOTLINE_HTTP_PORT": str(http_port),
        "HOTLINE_SPOOL_DIR": str(workdir / "spool"),
        "HOTLINE_DIALPLANS_DIR": str(pbx.dialplans),
    }
    logs = workdir / "logs"
    logs.mkdir()
    cli = [sys.executable, "-m", "gateway.cli"]
    processes = {
        "sink": Process(
            "sink",
            [
                *cli,
                "order-sink",
                "--host",
                "127.0.0.1",
                "--port",
                str(sink_port),
                "--db",
                str(workdir / "orders.sqlite3"),
                "--token-env",
                "HOTLINE_ORDER_TOKEN",
            ],
            env,
            logs,
        ),
        "gateway": Process("gateway", [*cli, "run"], env, logs),
    }
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    stack: RealStack | None = None
    try:
        await pbx.start()
        await phones.start()
        await processes["sink"].start()
        await processes["gateway"].start()
        phones_ami = await Ami(phones.ami_port, "phones", phones.ami_secret).__aenter__()
        pbx_ami = await Ami(pbx_ports.ami, RECORDER_USER, pbx_secrets.recorder).__aenter__()
        stack = RealStack(
            workdir, pbx, phones, redis, env, f"http://127.0.0.1:{http_port}", workdir / "orders.sqlite3",
            processes, http, phones_ami, pbx_ami, config_path, pbx_secrets.recorder,
        )  # fmt: skip
        await until(stack.ready, within=60, what="gateway ready")

        async def registered() -> bool:
            out = await phones.cli("pjsip show registrations")
            return out.count(" Registered") >= len(SEATS)

        await until(registered, within=60, what=f"{len(SEATS)} seat phones registered")
        yield stack
    finally:
        if stack is not None:
            for ami in (stack.phones_ami, stack.pbx_ami):
                await ami.__aexit__(None, None, None)
        for process in reversed(list(processes.values())):
            await process.stop()
        await http.close()
        await phones.stop()
        await pbx.stop()
        redis.close()
        if os.environ.get("HOTLINE_REAL_KEEP") is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"real tier kept its files in {workdir}")
