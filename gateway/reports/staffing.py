"""Staffing check: the seats Erlang C asks for in each half hour against the seats the shifts roster.

Per queue and interval: arrivals = the calls offered to it (measured), handling time = the queue's
average talk + hold + wrap-up over the whole range (an interval's few calls are too noisy to plan
on), traffic = arrivals x handling time / 1800 s, seats needed = Erlang C's fewest seats reaching
the queue's ``service_level_target_pct`` within its ``service_level_s``. Seats on duty are what the
YAML's shifts put there (a shift ending at or before its start runs past midnight). Pure, plus the
``hotline-gateway staffing`` subcommand that reads the buckets from Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from redis.exceptions import RedisError

from gateway.errors import GatewayError
from gateway.merge.schema import DAYS, HotlineConfig, Queue
from gateway.reports.aggregate import SLOT_MIN, Cell, check_range, local, slot_label
from gateway.reports.erlang import seats_needed, service_level

SLOT_S = SLOT_MIN * 60


def on_duty(queue: Queue, day: dt.date, slot: int) -> int:
    """Seats the queue's shifts roster at the start of ``slot`` on local ``day``."""
    minute = slot * SLOT_MIN
    seats = 0
    for shift in queue.shifts:
        start, end = shift.minutes()
        length = (end - start) % 1440 or 1440
        for back in (0, 1):  # a shift that began the day before may still run
            began = day - dt.timedelta(days=back)
            if DAYS[began.weekday()] in shift.weekdays() and 0 <= minute + back * 1440 - start < length:
                seats += shift.seats
    return seats


@dataclass(frozen=True)
class StaffingRow:
    day: dt.date
    slot: int
    queue: str
    offered: int
    handling_s: float
    traffic: float  # Erlangs
    needed: int
    on_duty: int
    service_level_on_duty: float  # Erlang C's prediction with the rostered seats

    @property
    def understaffed(self) -> bool:
        return self.needed > self.on_duty

    @property
    def shortfall(self) -> int:
        return max(0, self.needed - self.on_duty)


def handling_times(cells: Mapping[Cell, Counter[str]]) -> dict[str, float]:
    """Average talk + hold + wrap-up per answered call, by queue name, over all ``cells``."""
    work: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    for cell, counts in cells.items():
        if cell.scope.startswith("queue:"):
            name = cell.scope.removeprefix("queue:")
            work[name] += counts["talk_ms"] + counts["hold_ms"] + counts["wrapup_ms"]
            answered[name] += counts["answered"]
    return {name: work[name] / answered[name] / 1000 for name in answered if answered[name] and work[name]}


def staffing(cells: Mapping[Cell, Counter[str]], config: HotlineConfig) -> list[StaffingRow]:
    """Every interval of every configured queue that had calls, in time order."""
    queues = {q.name: q for q in config.queues}
    handling = handling_times(cells)
    rows = []
    for cell, counts in cells.items():
        name = cell.scope.removeprefix("queue:")
        queue = queues.get(name)
        if not cell.scope.startswith("queue:") or queue is None or name not in handling:
            continue
        offered = counts["offered"]
        traffic = offered * handling[name] / SLOT_S
        duty = on_duty(queue, cell.day, cell.slot)
        target = queue.service_level_target_pct / 100
        rows.append(
            StaffingRow(
                day=cell.day,
                slot=cell.slot,
                queue=name,
                offered=offered,
                handling_s=round(handling[name], 1),
                traffic=round(traffic, 2),
                needed=seats_needed(traffic, handling[name], queue.service_level_s, target),
                on_duty=duty,
                service_level_on_duty=round(
                    service_level(duty, traffic, handling[name], queue.service_level_s), 4
                ),
            )
        )
    return sorted(rows, key=lambda r: (r.day, r.slot, r.queue))


# The subcommand.


class StaffingError(GatewayError):
    code = "reports.unreachable"


def configure(parser: argparse.ArgumentParser) -> None:
    today = local(dt.datetime.now(dt.UTC)).date()
    parser.add_argument("--config", default=os.environ.get("HOTLINE_CONFIG", "hotline_merge.yaml"))
    parser.add_argument(
        "--redis-url", default=os.environ.get("HOTLINE_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--from", dest="first", type=dt.date.fromisoformat, default=today - dt.timedelta(6))
    parser.add_argument("--to", dest="last", type=dt.date.fromisoformat, default=today)
    parser.add_argument("--all", action="store_true", help="every interval with calls, not only understaffed")


def run(args: argparse.Namespace) -> int:
    from gateway.merge.loader import load_config

    check_range(args.first, args.last)
    config = load_config(Path(args.config))
    try:
        rows = asyncio.run(_read(args.redis_url, config, args.first, args.last))
    except (RedisError, OSError) as exc:
        raise StaffingError(f"cannot read the report data from {args.redis_url}: {exc}") from None
    shown = [r for r in rows if args.all or r.understaffed]
    print(
        f"{args.first} .. {args.last} (北京时间): {len(rows)} intervals with calls, "
        f"{sum(r.understaffed for r in rows)} understaffed"
    )
    if shown:
        print(format_rows(shown))
    return 0


def format_rows(rows: list[StaffingRow]) -> str:
    header = ("date", "interval", "queue", "offered", "AHT s", "Erlangs", "needed", "on duty", "SL on duty")
    lines = [
        (
            str(r.day),
            slot_label(r.slot),
            r.queue,
            str(r.offered),
            f"{r.handling_s:.1f}",
            f"{r.traffic:.2f}",
            str(r.needed),
            str(r.on_duty),
            f"{r.service_level_on_duty:.1%}",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [header, *lines]
    )


async def _read(redis_url: str, config: HotlineConfig, first: dt.date, last: dt.date) -> list[StaffingRow]:
    import redis.asyncio as aioredis

    from gateway.reports.store import ReportStore
    from gateway.settings import DEFAULT_REPORTS_RETENTION_DAYS

    redis = aioredis.Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        store = ReportStore(redis, dict, retention_days=DEFAULT_REPORTS_RETENTION_DAYS)  # reads only
        return staffing(await store.cells(first, last), config)
    finally:
        await redis.aclose()
