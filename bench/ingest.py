"""AMI ingest: events per second through the gateway and through its Python peers, side by side.

Every consumer reads the same trace-shaped stream (``bench/amistream.py``: real Asterisk 22 call
traces repeated with fresh identifiers, about 200 calls in flight) from a server in a process of
its own, pinned to CPU 0, while the consumer runs in another process pinned to CPU 1:

- raw-split: asyncio reads split into dicts and nothing else (the floor for Python);
- panoramisk: a bare panoramisk 1.4 ``Manager`` with one ``'*'`` handler that counts;
- cacofonisk: cacofonisk 0.7.10's ``AmiRunner`` (panoramisk underneath) with its channel and
  bridge tracking and a reporter that does nothing; an exception in its tracker is counted so it
  cannot drop the connection;
- gateway: ``AmiClient`` -> ``TrackerFeed`` -> ``Tracker``, outputs counted and dropped (as the
  app's records pipeline takes them away).

Each consumer runs ``--runs`` times (rounds interleave the consumers so noise spreads over all
of them); the median counts, every run must see exactly the stream's events, the gateway must end
every call, and peak RSS is the largest of the runs. Targets (issue 14): gateway >= 1.0x
panoramisk and >= 2.5x cacofonisk; peak RSS on the full stream within 1.5x the peers'.

    .venv/bin/python bench/ingest.py [--calls 1000 | --full] [--runs 3] [--only gateway,panoramisk]

Ends with one line: ``ingest: ratio X vs panoramisk, Y vs cacofonisk; ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import amistream

CONSUMERS = ("raw-split", "panoramisk", "cacofonisk", "gateway")
FULL_CALLS = 10_000
SECRET = "bench-secret"
SERVER_CPU, CONSUMER_CPU = 0, 1


class _CountingHandler(logging.Handler):
    """Peers log per event on odd input: count the records instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname} {record.name}"] += 1


# --- the consumers, each in a fresh pinned process -----------------------------------------------


async def _raw_split(port: int) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    await reader.readline()
    writer.write(f"Action: Login\r\nActionID: 1\r\nUsername: bench\r\nSecret: {SECRET}\r\n\r\n".encode())
    events, tail = 0, b""
    while data := await reader.read(1 << 18):
        data = tail + data
        cut = data.rfind(b"\r\n\r\n")
        if cut < 0:
            tail = data
            continue
        tail = data[cut + 4 :]
        for text in data[:cut].decode("utf-8", "replace").split("\r\n\r\n"):
            fields = {}
            for line in text.split("\r\n"):
                name, _, value = line.partition(": ")
                fields[name] = value
            events += "Event" in fields
    writer.close()
    return {"events": events}


async def _panoramisk(port: int) -> dict[str, Any]:
    from panoramisk import Manager

    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    count = 0

    def on_event(_manager: Any, _event: Any) -> None:
        nonlocal count
        count += 1

    def on_disconnect(_manager: Any, _exc: Any) -> None:
        if not ended.done():
            ended.set_result(None)

    manager = Manager(
        loop=loop, host="127.0.0.1", port=port, username="bench", secret=SECRET, on_disconnect=on_disconnect
    )
    manager.register_event("*", on_event)
    manager.connect()
    await ended
    manager.close()
    return {"events": count}


async def _cacofonisk(port: int) -> dict[str, Any]:
    from cacofonisk.reporters import BaseReporter
    from cacofonisk.runners.ami_runner import AmiRunner

    errors: collections.Counter[str] = collections.Counter()

    class Runner(AmiRunner):  # type: ignore[misc]
        def on_event(self, manager: Any, event: Any) -> None:
            try:
                self.ami_managers[manager].on_event(event)
            except Exception as exc:  # its asserts must not make asyncio drop the connection
                errors[f"{type(exc).__name__} on {event.get('Event')}"] += 1

    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    runner = Runner([f"tcp://bench:{SECRET}@127.0.0.1:{port}"], BaseReporter())
    runner.attach_all()
    count = 0
    for manager in runner.ami_managers:
        manager.on_disconnect = lambda *_: ended.done() or ended.set_result(None)
        dispatch = manager.dispatch

        def counting(event: Any, dispatch: Callable[[Any], Any] = dispatch) -> Any:
            nonlocal count
            count += 1
            return dispatch(event)

        manager.dispatch = counting
    await ended
    for manager in runner.ami_managers:
        manager.close()
    return {"events": count, "tracker_errors": sum(errors.values())}


async def _gateway(port: int) -> dict[str, Any]:
    from gateway.ami.client import AmiClient, AmiSettings, ConnectionState, Phase
    from gateway.calls.resync import TrackerFeed
    from gateway.calls.tracker import CallEnded, Output, Tracker

    # Outputs are counted and dropped, as the app's records pipeline consumes them: a list of
    # every ended call would measure the bench's memory, not the gateway's.
    outputs: collections.Counter[type] = collections.Counter()

    def sink(output: Output) -> None:
        outputs[type(output)] += 1

    feed = TrackerFeed(Tracker(), sink)
    client = AmiClient(AmiSettings(port=port, secret=SECRET, ping_interval=3600))
    client.add_event_listener(feed)
    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_state(state: ConnectionState) -> None:
        # The server closed the stream: the client would back off and reconnect; the run is over.
        if state.phase is Phase.BACKOFF and not ended.done():
            ended.set_result(None)

    client.add_state_listener(on_state)
    client.start()
    await ended
    await client.close()
    return {
        "events": client.events_received,
        "calls_ended": outputs[CallEnded],
        "calls_live": len(feed.tracker.calls),
        "sessions": client.state.session,
    }


_RUN = {"raw-split": _raw_split, "panoramisk": _panoramisk, "cacofonisk": _cacofonisk, "gateway": _gateway}


def _consumer_main(name: str, port: int) -> None:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logs = _CountingHandler()
    logging.getLogger().handlers[:] = [logs]
    logging.getLogger().setLevel(logging.WARNING)
    started = time.perf_counter()
    result = asyncio.run(_RUN[name](port))
    result["seconds"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["rss_mb"] = usage.ru_maxrss / 1024
    result["logs"] = dict(logs.counts)
    print(json.dumps(result))


# --- the runs ------------------------------------------------------------------------------------


def _run_once(name: str, stream: amistream.Stream) -> dict[str, Any]:
    """One server process and one consumer process, pinned apart; the consumer's figures."""
    here = Path(__file__).resolve().parent
    server = subprocess.Popen(
        [sys.executable, str(here / "amistream.py"), "serve", str(stream.path), "--cpu", str(SERVER_CPU)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        done = subprocess.run(
            [sys.executable, __file__, "--consumer", name, "--port", str(port), "--cpu", str(CONSUMER_CPU)],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["events"] != stream.events:
        raise SystemExit(f"{name} saw {result['events']:,} events of {stream.events:,}: the run is void")
    if name == "gateway" and (result["calls_ended"] != stream.calls or result["calls_live"]):
        raise SystemExit(
            f"the gateway ended {result['calls_ended']:,} of {stream.calls:,} calls and still holds "
            f"{result['calls_live']:,}: the stream or the tracker is broken"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls in the stream (default 1000)")
    parser.add_argument("--full", action="store_true", help=f"the full stream: {FULL_CALLS:,} calls")
    parser.add_argument("--in-flight", type=int, default=200, help="calls up at once (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each consumer; the median counts")
    parser.add_argument("--only", help="comma-separated consumers (default: all)")
    parser.add_argument("--consumer", choices=CONSUMERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consumer:
        amistream.pin(args.cpu)
        _consumer_main(args.consumer, args.port)
        return

    names = args.only.split(",") if args.only else list(CONSUMERS)
    stream = amistream.build(FULL_CALLS if args.full else args.calls, args.in_flight)
    print(f"stream: {stream.describe()}")
    print(f"server on CPU {SERVER_CPU}, consumer on CPU {CONSUMER_CPU}; load average {_load()} at start")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(args.runs):
        for name in names:
            results[name].append(_run_once(name, stream))
    print(f"load average {_load()} at the end (1, 5, 15 min; 2 cores)")
    rate = {
        name: statistics.median(stream.events / r["seconds"] for r in runs) for name, runs in results.items()
    }
    per_cpu = {
        name: statistics.median(stream.events / r["cpu_s"] for r in runs) for name, runs in results.items()
    }
    rss = {name: max(r["rss_mb"] for r in runs) for name, runs in results.items()}
    base = rate.get("panoramisk")
    # Events per CPU second of the consumer: steadier than the wall clock on a shared machine.
    print(
        f"{'consumer':<12} {'events/s':>10} {'x panoramisk':>13} {'events/cpu-s':>13} {'peak RSS MB':>12}  notes"
    )
    for name, runs in results.items():
        ratio = f"{rate[name] / base:.2f}" if base else "-"
        spread = ", ".join(f"{stream.events / r['seconds']:,.0f}" for r in runs)
        notes = {
            k: v for k, v in runs[-1].items() if k not in ("events", "seconds", "cpu_s", "rss_mb", "logs")
        }
        notes.update(runs[-1]["logs"])
        print(
            f"{name:<12} {rate[name]:>10,.0f} {ratio:>13} {per_cpu[name]:>13,.0f} {rss[name]:>12.1f}  "
            f"runs: {spread}; {notes}"
        )
    if "gateway" in rate and base and "cacofonisk" in rate:
        peers = max(rss[name] for name in ("panoramisk", "cacofonisk"))
        print(
            f"ingest: ratio {rate['gateway'] / base:.2f} vs panoramisk, "
            f"{rate['gateway'] / rate['cacofonisk']:.2f} vs cacofonisk; gateway {rate['gateway']:,.0f} events/s, "
            f"peak RSS {rss['gateway']:.0f} MB = {rss['gateway'] / peers:.2f}x the peers' {peers:.0f} MB"
        )


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
