"""Simulator throughput on one core: calls/s and concurrent calls it sustains in real time.

The simulator runs the dialplan rendered from hotline_merge.yaml in this process (one core, real
time, time_scale 1) with 500+ seats logged in and Poisson arrivals; a separate process logs in and
reads every event: by default with every class and no filter (the worst case: VarSet and Newexten
are most of the stream), or as the rendered controller user (``--client controller``, as a gateway
would). Seats talk a minute on average, callers give up after a minute and a half on average, so
the calls pile up in the queues. "Sustained" means the simulated clock keeps up: timers fire on time (p99 lag below
50 ms) and this process uses less than one core. The same traffic with no AMI client attached is
the baseline: the PBX model alone, events not even built; the ratio is what the AMI stream costs.

    .venv/bin/python bench/sim.py [--rate 100] [--seconds 40] [--seats 500] [--client all|controller]

Ends with one line: ``sim: N concurrent calls, X calls/s, S seats, ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.merge.loader import load_config  # noqa: E402
from gateway.sim.manager import ManagerUser  # noqa: E402
from gateway.sim.people import CallerBehaviour, Endpoints, SeatBehaviour  # noqa: E402
from gateway.sim.plan import plan_from_config  # noqa: E402
from gateway.sim.server import SimOptions, Simulator  # noqa: E402
from gateway.sim.traffic import TrafficGenerator  # noqa: E402

SECRET = "bench-secret"
PROBE_EVERY = 0.1  # seconds between clock-lag probes


@dataclass
class Result:
    offered: int
    calls_per_s: float
    peak_calls: int
    seats: int
    lag_p99_ms: float
    cpu_share: float
    events: int


def _consumer(port: int, username: str, ready: Any, out: Any) -> None:
    """A separate process: log in, read everything until the server closes, report the count."""

    async def main() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"Action: Login\r\nUsername: {username}\r\nSecret: {SECRET}\r\n\r\n".encode())
        await writer.drain()
        ready.set()
        messages = 0
        while data := await reader.read(1 << 20):
            messages += data.count(b"\r\n\r\n")
        writer.close()
        return messages

    out.put(asyncio.run(main()))


async def run(
    rate: float, seconds: float, seats: int, *, with_client: bool, all_events: bool = False
) -> Result:
    config = load_config(ROOT / "hotline_merge.yaml")
    from gateway.contract import TRACKED_EVENTS

    per_queue = max(1, -(-seats // len(config.queues)))
    plan = plan_from_config(config, seats_per_queue=per_queue, prompts=ROOT / "recordings" / "prompts",
                            tracked_events=TRACKED_EVENTS)  # fmt: skip
    seat_count = len({m.interface for members in plan.seats.values() for m in members})
    template = next(u for u in plan.users if u.username == config.ami.username)
    user = ManagerUser(template.username, SECRET, template.read, template.write, template.eventfilters)
    if all_events:  # the worst case: every class, no filter (VarSet and Newexten are most of it)
        user = ManagerUser(template.username, SECRET)
    people = Endpoints(seats=SeatBehaviour(talk_mean_s=60.0, talk_min_s=20.0, talk_max_s=300.0))
    sim = Simulator(plan, SimOptions(port=0, seed=7, endpoints=people), users=[user])
    await sim.start()
    spawn = multiprocessing.get_context("spawn")  # never fork a process that runs an event loop
    process, out = None, spawn.Queue()
    if with_client:
        ready = spawn.Event()
        process = spawn.Process(target=_consumer, args=(sim.port, user.username, ready, out))
        process.start()
        await asyncio.get_running_loop().run_in_executor(None, ready.wait, 10)
        await asyncio.sleep(0.5)
    traffic = TrafficGenerator(sim, rate=rate, seed=7, callers=CallerBehaviour(patience_mean_s=90.0))
    lags: list[float] = []
    loop = asyncio.get_running_loop()

    def probe(planned: float) -> None:
        lags.append(loop.time() - planned)
        sim.clock.call_later(PROBE_EVERY, probe, loop.time() + PROBE_EVERY)

    peak = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    traffic.start()
    sim.clock.call_later(PROBE_EVERY, probe, loop.time() + PROBE_EVERY)
    while time.perf_counter() - wall0 < seconds:
        await asyncio.sleep(0.5)
        peak = max(peak, len({c.linkedid for c in sim.pbx.channels.values()}))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    traffic.stop()
    offered = traffic.stats.offered
    await sim.stop()
    events = 0
    if process is not None:
        events = out.get(timeout=10)
        process.join(10)
    lags.sort()
    p99 = lags[int(len(lags) * 0.99)] if lags else 0.0
    return Result(offered, offered / wall, peak, seat_count, p99 * 1000, cpu / wall, events)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="arrivals per second (default: %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=40.0, help="length of the run (default: %(default)s)"
    )
    parser.add_argument("--seats", type=int, default=500, help="seats logged in (default: %(default)s)")
    parser.add_argument("--baseline-seconds", type=float, default=12.0)
    parser.add_argument("--client", choices=("all", "controller"), default="all",
                        help="all: the client reads every class unfiltered (worst case, default); "
                             "controller: the rendered controller user's classes and filter")  # fmt: skip
    args = parser.parse_args()
    print(f"simulator bench: rendered hotline_merge.yaml, {args.seats}+ seats, {args.rate:g} arrivals/s, "
          f"real time, one core", flush=True)  # fmt: skip
    base = asyncio.run(run(args.rate, args.baseline_seconds, args.seats, with_client=False))
    print(f"baseline, no AMI client:   {base.calls_per_s:6.1f} calls/s, CPU {base.cpu_share:5.1%}, "
          f"timer lag p99 {base.lag_p99_ms:5.1f} ms", flush=True)  # fmt: skip
    full = asyncio.run(
        run(args.rate, args.seconds, args.seats, with_client=True, all_events=args.client == "all")
    )
    who = "a client reading every event" if args.client == "all" else "the controller user's client"
    print(f"with {who}: {full.calls_per_s:6.1f} calls/s, CPU {full.cpu_share:5.1%}, "
          f"timer lag p99 {full.lag_p99_ms:5.1f} ms, {full.events:,} AMI messages read "
          f"({full.events / args.seconds:,.0f}/s)", flush=True)  # fmt: skip
    sustained = full.lag_p99_ms < 50 and full.cpu_share < 1.0
    ratio = full.cpu_share / base.cpu_share if base.cpu_share else float("nan")
    print(f"sim: {full.peak_calls:,} concurrent calls, {full.calls_per_s:.1f} calls/s, {full.seats} seats, "
          f"timer lag p99 {full.lag_p99_ms:.0f} ms, CPU {full.cpu_share:.0%} of one core "
          f"({ratio:.1f}x the PBX alone){'' if sustained else ' (NOT sustained)'}")  # fmt: skip


if __name__ == "__main__":
    main()
