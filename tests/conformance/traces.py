"""Recorded AMI traces and their replay against the simulator over real TCP.

A trace ``NN-name`` is: ``.sent.ami`` (the client's exact bytes), ``.timeline.txt`` (when each
write happened, seconds since connect) and ``.ami`` (what Asterisk answered). The replay sends the
same bytes at the same simulated times on a manual clock, so a run is deterministic and takes a
few milliseconds of real time per recorded second.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.sim.manager import Session
from gateway.sim.plan import load_asterisk_conf
from gateway.sim.server import SimOptions, Simulator

TRACES = Path(__file__).resolve().parent.parent / "fixtures" / "ami-traces"
BENCH_CONF = TRACES / "asterisk-conf"

_TIME = re.compile(r"^\s*(\d+\.\d+)\s+(SENT|RECV|NOTE|EOF)\b(.*)$")


@dataclass
class Write:
    at: float
    data: bytes
    messages: int


@dataclass
class Trace:
    name: str
    writes: list[Write]
    end: float  # last moment on the timeline
    recorded: bytes


def _raw_messages(data: bytes) -> list[bytes]:
    """Split client bytes where Asterisk's parser ends messages: at an empty line (CRLF or LF)."""
    out, current = [], bytearray()
    for line in data.splitlines(keepends=True):
        current += line
        if line in (b"\r\n", b"\n"):
            out.append(bytes(current))
            current = bytearray()
    if current:
        out.append(bytes(current))
    return out


def load(name: str) -> Trace:
    sent = (TRACES / f"{name}.sent.ami").read_bytes()
    times: list[float] = []
    end = 0.0
    for line in (TRACES / f"{name}.timeline.txt").read_text(encoding="utf-8").splitlines():
        match = _TIME.match(line)
        if not match:
            continue
        end = max(end, float(match.group(1)))
        if match.group(2) == "SENT":
            times.append(float(match.group(1)))
    writes: list[Write] = []
    for raw in _raw_messages(sent):
        # A message smuggled inside a header value (trace 10) left in the same write as its carrier.
        smuggled = re.search(rb"ActionID: [^\r\n]*-smuggled", raw) is not None
        if smuggled and writes:
            writes[-1].data += raw
            writes[-1].messages += 1
        else:
            writes.append(Write(0.0, raw, 1))
    if len(writes) != len(times):
        raise AssertionError(f"{name}: {len(writes)} writes in .sent.ami but {len(times)} SENT lines")
    for write, at in zip(writes, times, strict=True):
        write.at = at
    return Trace(name, writes, end, (TRACES / f"{name}.ami").read_bytes())


Hook = Callable[[Simulator], Awaitable[None]]


@dataclass
class Part:
    """One connection of a replay: a trace, when it connects, and simulator actions on its timeline."""

    trace: Trace
    offset: float = 0.0
    hooks: list[tuple[float, Hook]] = field(default_factory=list)


def bench_simulator(*, boot: bool = True) -> Simulator:
    options = SimOptions(manual_clock=True, auth_fail_delay=1.0, seed=7)
    return Simulator(
        load_asterisk_conf(BENCH_CONF), options, reload_plan=lambda: load_asterisk_conf(BENCH_CONF)
    )


async def _settle(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"replay: gave up waiting for {what}")


class Connection:
    def __init__(self, sim: Simulator, part: Part) -> None:
        self.sim = sim
        self.part = part
        self.received = bytearray()
        self.closed = asyncio.Event()
        self.session: Session | None = None
        self.sent_messages = 0
        self._reader_task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.sim.port)
        self._writer = writer
        port = writer.get_extra_info("sockname")[1]
        server = self.sim.server
        await _settle(lambda: any(s.remote[1] == port for s in server.sessions), "the server to accept")
        self.session = next(s for s in server.sessions if s.remote[1] == port)
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            self.received += data
        self.closed.set()

    async def send(self, write: Write) -> None:
        assert self._writer is not None
        assert self.session is not None
        self._writer.write(write.data)
        await self._writer.drain()
        self.sent_messages += write.messages
        session = self.session
        await _settle(lambda: session.actions_handled >= self.sent_messages or session.closing,
                      f"{self.part.trace.name} to handle its actions")  # fmt: skip

    async def finish(self) -> bytes:
        await asyncio.wait_for(self.closed.wait(), 5)
        if self._reader_task is not None:
            await self._reader_task
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()
        return bytes(self.received)


async def replay(sim: Simulator, parts: list[Part]) -> list[bytes]:
    """Run the parts' writes and hooks in time order on the simulator's manual clock."""
    clock = sim.clock
    base = clock.now()
    schedule: list[tuple[float, int, Callable[[], Awaitable[None]]]] = []
    connections = [Connection(sim, part) for part in parts]
    for index, (part, conn) in enumerate(zip(parts, connections, strict=True)):
        schedule.append((part.offset, index, conn.open))
        for write in part.trace.writes:
            schedule.append((part.offset + write.at, index, functools.partial(conn.send, write)))
        for at, hook in part.hooks:
            schedule.append((part.offset + at, index, functools.partial(hook, sim)))
    schedule.sort(key=lambda item: (item[0], item[1]))
    for at, _, step in schedule:
        clock.advance_to(base + at)
        await asyncio.sleep(0)
        await step()
    end = max(part.offset + part.trace.end for part in parts) + 2.0
    clock.advance_to(base + end)
    for conn in connections:
        if not conn.closed.is_set() and conn.session is not None and not conn.session.closing:
            conn.session.close()
    return [await conn.finish() for conn in connections]
