"""System faults under traffic: records lost, duplicated, and the time to recover, per fault.

The faults and the accounting of the fault suite (``bench/harness/system.py``), run longer:
gateway kill -9 (restarted 1 s later, as a supervisor would), simulator (Asterisk) restart, Redis
killed and back after 10 s, the order system down for a full 60 s, AMI stalled for 10 s (past the
gateway's watchdog), one of two dispatcher processes killed -9. Each fault runs on a fresh stack
of real processes with the simulator at 20x (two calls a second in real time, Beijing's peak).
Every server started here listens on 127.0.0.1 and is stopped at the end.

    .venv/bin/python bench/faults.py [--only "order system"] [--order-down-s 60]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # bench.harness: the fault harness the tests share

from bench.harness.system import BENCH, FAULTS, FaultResult, Timing, run_fault, summary, table


async def _run(timing: Timing, only: str | None) -> list[FaultResult]:
    results = []
    for fault in FAULTS:
        if only and only not in fault.name:
            continue
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="hotline-faults-") as workdir:
            result = await run_fault(fault, Path(workdir), timing)
        print(f"  {fault.name}: {result.calls} calls, {result.from_pbx_log} from the PBX's log, "
              f"{result.absorbed} copies absorbed by the order system, {result.dead_letters} dead letters "
              f"({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
        results.append(result)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run the faults whose name contains this")
    parser.add_argument("--order-down-s", type=float, default=BENCH.order_down_s)
    args = parser.parse_args()
    timing = dataclasses.replace(BENCH, order_down_s=args.order_down_s)
    results = asyncio.run(_run(timing, args.only))
    print(table(results))
    print(summary(results))
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
