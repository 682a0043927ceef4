"""A trace-shaped AMI stream for ``bench/ingest.py``, and the server process that sends it.

The stream is made of real Asterisk 22 bytes: the call part of traces 01, 02, 03, 05 and 07 in
``tests/fixtures/ami-traces`` (everything after the login exchange, up to the Logoff answer),
each repeated as many times as needed. Every copy is a call of its own: its Uniqueids, Linkedids,
Local channel suffixes, BridgeUniqueids and ActionIDs get new values. Calls start as a Poisson
process that keeps about ``in_flight`` calls up at once, every message keeps its offset in its
call from the trace's ``.timeline.txt``, and the calls are merged by time, so the consumer sees
the interleaving of a busy PBX rather than one call after another.

``python bench/amistream.py serve FILE --cpu 0`` is the server: it prints its port, greets,
answers every action with a Success carrying its ActionID (``Ping: Pong`` for Ping, a nonce for
Challenge), and after the first Login writes the stream as fast as the client reads, in chunks cut
at message ends (answers go in between chunks), then half-closes and waits for the client to hang
up.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import itertools
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT / "tests" / "fixtures" / "ami-traces"
TEMPLATES = ("01", "02", "03", "05", "07")
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "hotline-bench-ami"
_CHUNK = 256 * 1024
_END = b"\r\n\r\n"

# The identifiers that make a call distinct; the group name says how a copy renames it.
_IDS = re.compile(
    rb"(?P<bridge>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    rb"|(?P<caller>caller-s\d+-\d+)"  # originated ChannelId: caller-s01-798895[-2]
    rb"|(?P<epoch>\d{10}\.\d+)"  # Asterisk's own Uniqueids: 1795798895.2
    rb"|(?<=-)(?P<local>[0-9a-f]{8})(?=;[12])"  # Local/1001@agents-00000001;1
    rb"|^ActionID: (?P<action>[^\r\n]*)",
    re.MULTILINE,
)
_LOGIN = (b"Event: FullyBooted\r\n", b"Event: SuccessfulAuth\r\n")


@dataclass(frozen=True)
class Template:
    """One recorded call: messages as literal pieces with numbered identifier slots between them."""

    name: str
    pieces: list[list[bytes | int]]  # per message: bytes, slot, bytes, slot, ...
    offsets: list[float]  # seconds since the call's first message
    slots: list[tuple[str, bytes]]  # slot -> (kind, what the trace has there)
    events: int

    @classmethod
    def load(cls, number: str) -> Template:
        path = next(p for p in sorted(TRACES.glob(f"{number}-*.ami")) if not p.name.endswith(".sent.ami"))
        raw = path.read_bytes()
        if not raw.startswith(b"Asterisk Call Manager/"):
            raise SystemExit(f"{path}: no AMI banner")
        messages = [m + _END for m in raw.partition(b"\r\n")[2].split(_END) if m.strip()]
        timeline = path.with_name(path.name.removesuffix(".ami") + ".timeline.txt")
        received = [float(line.split()[0]) for line in timeline.open() if line.split()[1:2] == ["RECV"]]
        if len(received) != len(messages) + 1:  # the first RECV is the banner
            raise SystemExit(f"{timeline}: {len(received)} RECV lines for {len(messages)} messages")
        times = received[1:]
        keep = [
            i
            for i, m in enumerate(messages)
            if not m.startswith(_LOGIN) and b"ActionID: login-" not in m and b"ActionID: logoff-" not in m
        ]
        slots: dict[tuple[str, bytes], int] = {}
        pieces = [cls._pieces(messages[i], slots) for i in keep]
        start = times[keep[0]]
        return cls(
            path.name,
            pieces,
            [times[i] - start for i in keep],
            sorted(slots, key=slots.__getitem__),
            sum(messages[i].startswith(b"Event: ") for i in keep),
        )

    @staticmethod
    def _pieces(message: bytes, slots: dict[tuple[str, bytes], int]) -> list[bytes | int]:
        out: list[bytes | int] = []
        at = 0
        for match in _IDS.finditer(message):
            kind = match.lastgroup
            assert kind is not None
            out.append(message[at : match.start(kind)])
            out.append(slots.setdefault((kind, match.group(kind)), len(slots)))
            at = match.end(kind)
        out.append(message[at:])
        return out

    @property
    def duration(self) -> float:
        return self.offsets[-1]


class _Counters:
    """Identifiers Asterisk numbers across the whole system (never reused between calls)."""

    def __init__(self) -> None:
        self.uniqueid = itertools.count(1)
        self.local = itertools.count(1)


def _values(template: Template, call: int, counters: _Counters) -> list[bytes]:
    values = []
    for kind, original in template.slots:
        if kind == "bridge":
            values.append(original[:24] + b"%012x" % call)
        elif kind == "caller":
            values.append(original.rpartition(b"-")[0] + b"-%d" % call)
        elif kind == "epoch":
            values.append(original.partition(b".")[0] + b".%d" % next(counters.uniqueid))
        elif kind == "local":
            values.append(b"%08x" % next(counters.local))
        else:  # action
            values.append(original + b"-c%d" % call)
    return values


@dataclass(frozen=True)
class Stream:
    path: Path
    calls: int
    events: int
    messages: int
    bytes: int
    mean_in_flight: float

    def describe(self) -> str:
        return (
            f"{self.calls:,} calls (traces {', '.join(TEMPLATES)}), {self.events:,} events, "
            f"{self.bytes / 1e6:,.0f} MB, about {self.mean_in_flight:.0f} calls in flight"
        )


def build(calls: int, in_flight: int, *, seed: int = 1) -> Stream:
    """The stream file for these settings, built once and kept in ``CACHE``."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for number in TEMPLATES:
        for path in sorted(TRACES.glob(f"{number}-*")):
            digest.update(path.read_bytes())
    path = CACHE / f"stream-{calls}c-{in_flight}-{seed}-{digest.hexdigest()[:12]}.ami"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return Stream(path=path, **json.loads(meta.read_text()))
    CACHE.mkdir(parents=True, exist_ok=True)
    templates = [Template.load(number) for number in TEMPLATES]
    gap = sum(t.duration for t in templates) / len(templates) / in_flight
    rng = random.Random(seed)
    counters = _Counters()
    # (time, call, message index, template, identifier values); calls join as time reaches them.
    due: list[tuple[float, int, int, Template, list[bytes]]] = []
    started, next_start, messages, size, in_flight_sum = 0, 0.0, 0, len(BANNER), 0
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        out.write(BANNER)
        chunk: list[bytes] = []
        while due or started < calls:
            if started < calls and (not due or next_start <= due[0][0]):
                template = templates[started % len(templates)]
                values = _values(template, started + 1, counters)
                heapq.heappush(due, (next_start, started, 0, template, values))
                in_flight_sum += len(due)
                started += 1
                next_start += rng.expovariate(1 / gap)
                continue
            when, call, index, template, values = due[0]
            message = b"".join(p if isinstance(p, bytes) else values[p] for p in template.pieces[index])
            chunk.append(message)
            messages += 1
            size += len(message)
            if index + 1 < len(template.pieces):
                offset = template.offsets[index + 1] - template.offsets[index]
                heapq.heapreplace(due, (when + offset, call, index + 1, template, values))
            else:
                heapq.heappop(due)
            if len(chunk) >= 4096:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))
    figures = {
        "calls": calls,
        "events": sum(templates[n % len(templates)].events for n in range(calls)),
        "messages": messages,
        "bytes": size,
        "mean_in_flight": in_flight_sum / max(1, calls),
    }
    meta.write_text(json.dumps(figures))
    partial.rename(path)
    return Stream(path=path, **figures)  # type: ignore[arg-type]


def pin(cpu: int | None) -> None:
    """Run this process on one CPU only (when there is more than one), away from its peer."""
    if cpu is not None and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {cpu})


# --- the server ----------------------------------------------------------------------------------


def _answer(headers: dict[str, str]) -> bytes:
    action = headers.get("action", "").lower()
    lines = [f"Response: {'Goodbye' if action == 'logoff' else 'Success'}"]
    if "actionid" in headers:
        lines.append(f"ActionID: {headers['actionid']}")
    # As Asterisk does: a Challenge gets a nonce (the gateway logs in with MD5 only); every Login
    # succeeds, whatever its key.
    lines.append({"ping": "Ping: Pong", "challenge": "Challenge: 840415273"}.get(action, "Message: ok"))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _serve_one(stream: bytes, port_out: asyncio.Future[int]) -> None:
    finished = asyncio.get_running_loop().create_future()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        sending: asyncio.Task[None] | None = None
        pending = b""
        try:
            while data := await reader.read(65536):
                pending += data
                *requests, pending = pending.replace(b"\r\n", b"\n").split(b"\n\n")
                for request in requests:
                    headers = {}
                    for line in request.decode(errors="replace").split("\n"):
                        name, _, value = line.partition(":")
                        headers.setdefault(name.strip().lower(), value.strip())
                    if writer.transport.is_closing() or (sending is not None and sending.done()):
                        continue  # the stream is over (half-closed): a late Ping or Logoff goes unanswered
                    writer.write(_answer(headers))
                    if headers.get("action", "").lower() == "login" and sending is None:
                        sending = asyncio.create_task(send(writer))
        except ConnectionError:
            pass
        finally:
            if sending is not None:
                sending.cancel()
            writer.close()
            if not finished.done():
                finished.set_result(None)

    async def send(writer: asyncio.StreamWriter) -> None:
        view, at = memoryview(stream), len(BANNER)
        while at < len(stream):
            end = stream.find(_END, at + _CHUNK)
            end = len(stream) if end < 0 else end + len(_END)
            writer.write(view[at:end])
            await writer.drain()
            at = end
        writer.write_eof()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    port_out.set_result(server.sockets[0].getsockname()[1])
    async with server:
        await finished


def serve(path: Path) -> None:
    """Serve one connection, then exit; the first line on stdout is the port."""
    stream = path.read_bytes()

    async def main() -> None:
        port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(_serve_one(stream, port))
        print(await port, flush=True)
        await task

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="serve a stream file to one client")
    serving.add_argument("file", type=Path)
    serving.add_argument("--cpu", type=int)
    building = commands.add_parser("build", help="build (or find) the stream file, print its path")
    building.add_argument("--calls", type=int, default=1000)
    building.add_argument("--in-flight", type=int, default=200)
    args = parser.parse_args()
    if args.command == "serve":
        pin(args.cpu)
        serve(args.file)
    else:
        built = build(args.calls, args.in_flight)
        print(built.path)
        print(built.describe())
