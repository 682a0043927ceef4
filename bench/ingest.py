"""AMI ingest: events per second over TCP through bare panoramisk and through the gateway.

The stream is trace-shaped: the recorded call traces 01-07 (real Asterisk 22 bytes, responses
left out) repeated with fresh Uniqueids, Linkedids and channel names for every call, ended by a
sentinel UserEvent. A server thread in this process sends it to each client as fast as TCP
takes it; each client runs in its own fresh interpreter and is timed from connect to sentinel:

- bare: a panoramisk 1.4 ``Manager`` with no handlers (one for the sentinel);
- full: the gateway's ingest path, ``AmiClient`` -> ``TrackerFeed`` -> ``Tracker``.

Then the full path ingests 5,000 calls that stay up (each answered by a seat) and reports its
resident memory. Targets (issue 4): full path >= 60 % of bare panoramisk; RSS < 300 MB.

    .venv/bin/python bench/ingest.py [--calls 1500] [--live 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import structlog

from gateway.ami.protocol import MessageParser
from gateway.localredis import free_port

TRACES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ami-traces"
TEMPLATES = ["01", "02", "03", "04", "05", "06", "07"]
SENTINEL = b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: BenchDone\r\n\r\n"
SECRET = "bench-secret"
_IDS = re.compile(rb"(?:Uniqueid|Linkedid): (\S+)\r\n")
_CHANNEL_SUFFIX = re.compile(rb"-([0-9a-f]{8});([12])")
_LIVE_UNTIL = b"Event: BridgeEnter"  # an answered call: everything up to the seat joining the bridge


def _template(name: str) -> list[bytes]:
    """A trace's event messages (exact bytes), without the banner, responses and login noise."""
    path = next(p for p in TRACES.glob(f"{name}-*.ami") if not p.name.endswith(".sent.ami"))
    _, _, rest = path.read_bytes().partition(b"\r\n")
    blocks = [b + b"\r\n\r\n" for b in rest.split(b"\r\n\r\n") if b.startswith(b"Event: ")]
    return [b for b in blocks if not b.startswith((b"Event: FullyBooted", b"Event: SuccessfulAuth"))]


def _renamer(blocks: list[bytes]) -> re.Pattern[bytes]:
    """Matches every Uniqueid/Linkedid of a template, longest first (one may prefix another)."""
    ids = sorted({m for b in blocks for m in _IDS.findall(b)}, key=len, reverse=True)
    return re.compile(b"|".join(re.escape(i) for i in ids))


def calls(count: int, *, live: bool = False) -> Iterator[bytes]:
    """``count`` calls from the templates in turn, each with ids of its own."""
    templates = [_template(name) for name in (TEMPLATES[:1] if live else TEMPLATES)]
    renamers = [_renamer(t) for t in templates]
    channel_serial = itertools.count(0x100000)
    for n in range(count):
        blocks = templates[n % len(templates)]
        if live:
            blocks = blocks[: next(i for i, b in enumerate(blocks) if b.startswith(_LIVE_UNTIL)) + 2]
        pattern = renamers[n % len(templates)]

        def rename(match: re.Match[bytes], suffix: bytes = b"-b%d" % n) -> bytes:
            return match.group(0) + suffix

        data = pattern.sub(rename, b"".join(blocks))
        suffixes: dict[bytes, bytes] = {}

        def channel(match: re.Match[bytes], suffixes: dict[bytes, bytes] = suffixes) -> bytes:
            new = suffixes.setdefault(match.group(1), b"%08x" % next(channel_serial))
            return b"-" + new + b";" + match.group(2)

        yield _CHANNEL_SUFFIX.sub(channel, data)


class Server:
    """Greets, accepts any Login, then sends ``stream``; answers Ping and Logoff like Asterisk."""

    def __init__(self, stream: bytes) -> None:
        self.stream = stream
        self.port = free_port()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self._ready.set()
        await self._stop.wait()
        server.close()
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        parser = MessageParser()
        streaming: asyncio.Task[None] | None = None
        try:
            while data := await reader.read(65536):
                for request in parser.feed(data):
                    action, action_id = (request.action or "").lower(), request.action_id or ""
                    answer = {"login": "Success", "logoff": "Goodbye"}.get(action, "Success")
                    writer.write(
                        f"Response: {answer}\r\nActionID: {action_id}\r\nMessage: ok\r\n\r\n".encode()
                    )
                    if action == "login":
                        writer.write(
                            b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
                        )
                        streaming = asyncio.create_task(self._send(writer))
                    elif action == "logoff":
                        writer.close()
        except ConnectionError:
            pass
        finally:
            if streaming is not None:
                streaming.cancel()
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        view = memoryview(self.stream)
        for start in range(0, len(view), 1 << 16):
            writer.write(view[start : start + (1 << 16)])
            await writer.drain()


# --- the clients, each run in a fresh interpreter ------------------------------------------------


async def _bare(port: int) -> dict[str, float]:
    from panoramisk import Manager  # only the baseline needs it

    done = asyncio.Event()
    manager = Manager(
        host="127.0.0.1", port=port, username="gateway", secret=SECRET, ping_delay=3600, ping_interval=3600,
        loop=asyncio.get_running_loop(),
    )  # fmt: skip
    manager.register_event(
        "UserEvent", lambda _, event: done.set() if event.UserEvent == "BenchDone" else None
    )
    started = time.perf_counter()
    manager.connect()
    await done.wait()
    elapsed = time.perf_counter() - started
    manager.close()
    return {"seconds": elapsed}


async def _full(port: int) -> dict[str, float]:
    from gateway.ami.client import AmiClient, AmiSettings
    from gateway.calls.resync import TrackerFeed
    from gateway.calls.tracker import CallEnded, Output, Tracker

    outputs: deque[Output] = deque()
    feed = TrackerFeed(Tracker(), outputs.append)
    done = asyncio.Event()
    client = AmiClient(AmiSettings(port=port, secret=SECRET, ping_interval=3600))
    client.add_event_listener(feed)
    client.add_event_listener(lambda event: done.set() if event.get("UserEvent") == "BenchDone" else None)
    started = time.perf_counter()
    client.start()
    await done.wait()
    elapsed = time.perf_counter() - started
    rss_mb = _rss_mb()
    await client.close()
    ended = sum(isinstance(o, CallEnded) for o in outputs)
    return {"seconds": elapsed, "ended": ended, "live": len(feed.tracker.calls), "rss_mb": rss_mb}


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def _client_main(kind: str, port: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(_bare(port) if kind == "bare" else _full(port))
    print(json.dumps(result))


def _run_client(kind: str, stream: bytes) -> dict[str, float]:
    with Server(stream) as server:
        done = subprocess.run(
            [sys.executable, __file__, "--client", kind, "--port", str(server.port)],
            capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--calls", type=int, default=1500, help="calls in the throughput stream")
    parser.add_argument("--live", type=int, default=5000, help="calls left up for the memory figure")
    parser.add_argument("--runs", type=int, default=3, help="runs of each client; the best is reported")
    parser.add_argument("--client", choices=["bare", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        _client_main(args.client, args.port)
        return

    stream = b"".join(calls(args.calls)) + SENTINEL
    events = stream.count(b"\r\n\r\n")
    print(
        f"stream: {args.calls:,} calls from traces {', '.join(TEMPLATES)}: {events:,} events, {len(stream) / 1e6:.1f} MB"
    )
    best: dict[str, float] = {}
    for _ in range(args.runs):
        for kind in ("bare", "full"):
            result = _run_client(kind, stream)
            best[kind] = min(best.get(kind, result["seconds"]), result["seconds"])
    if result["ended"] != args.calls:
        raise SystemExit(
            f"the tracker ended {result['ended']:.0f} of {args.calls} calls: the stream is broken"
        )
    bare_rate, full_rate = events / best["bare"], events / best["full"]
    print(f"bare panoramisk 1.4 Manager, no handlers:   {bare_rate:>9,.0f} events/s (best of {args.runs})")
    print(
        f"gateway AmiClient + TrackerFeed + Tracker:  {full_rate:>9,.0f} events/s (best of {args.runs}, every call ended)"
    )

    live_stream = b"".join(calls(args.live, live=True)) + SENTINEL
    live_events = live_stream.count(b"\r\n\r\n")
    live = _run_client("full", live_stream)
    print(f"live: {live['live']:,.0f} calls up after {live_events:,} events, RSS {live['rss_mb']:.0f} MB")
    print(
        f"ingest: ratio {full_rate / bare_rate:.2f}, {full_rate:,.0f} events/s full path, "
        f"RSS {live['rss_mb']:.0f} MB at {live['live']:,.0f} live calls"
    )


if __name__ == "__main__":
    main()
