"""Redis memory of the reports: each record's own keys against the report they feed.

A Beijing day of final call records (most answered, some abandoned, some overflowing from a
department's seats to the general seats; 27 numbers, 17 departments) goes through the
``ReportStore`` into a private redis-server, then the order system's feedback (resolution and
follow-up) for each call. ``MEMORY USAGE`` then weighs every key: the day's report hash (the
baseline, measured in the same run), and per record its replaceable counts (kept 2 days) and its
marker (versions and where its feedback goes, kept 62 days). The steady state is worked out for a
centre of Beijing's size. Everything listens on 127.0.0.1 and is stopped at the end.

    .venv/bin/python bench/reports.py [--records 20000] [--calls-per-day 65000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path

import redis.asyncio as aioredis

from gateway.localredis import LocalRedis
from gateway.merge.loader import load_config
from gateway.ordersink.examples import answered_call
from gateway.queues.stats import CHINA_TZ
from gateway.records.feedback import FollowUp, FollowUpResult, Resolution
from gateway.records.model import CallRecord, Disposition, QueueVisit
from gateway.reports.store import FEEDBACK_DAYS, REPLACE_DAYS, ReportStore
from gateway.vocabulary import DispositionKind, QueueResult

ROOT = Path(__file__).resolve().parent.parent
DAY = dt.datetime(2026, 3, 2, tzinfo=CHINA_TZ)
RETENTION_DAYS = 400


def day_of_records(count: int, seed: int = 16) -> list[CallRecord]:
    """``count`` final records spread over one Beijing day, with the shipped config's lines."""
    rng = random.Random(seed)
    config = load_config(ROOT / "hotline_merge.yaml")
    lines = [(config.hotline.number, None, "hotline-general")] + [
        (line.number, line.department, line.queue or "hotline-general") for line in config.legacy_lines
    ]
    records = []
    for n in range(count):
        number, department, queue = rng.choice(lines)
        base = answered_call(n, start=DAY + dt.timedelta(seconds=n * 86_000 / count - n))
        joined = base.times.queue_joined_at or base.times.arrived_at
        update: dict[str, object] = {"legacy_line": number, "department": department}
        fate = rng.random()
        if fate < 0.08:  # gives up after 40 s
            left = joined + dt.timedelta(seconds=40)
            update |= {
                "queues": [
                    QueueVisit(queue=queue, joined_at=joined, left_at=left, result=QueueResult.ABANDONED)
                ],
                "legs": [],
                "seat_ids": [],
                "survey": None,
                "times": base.times.model_copy(update={"answered_at": None, "ended_at": left}),
                "durations": base.durations.model_copy(update={"talk_s": 0.0, "hold_s": 0.0, "ring_s": 0.0}),
                "disposition": Disposition(
                    kind=DispositionKind.ABANDONED,
                    abandoned_after_s=40.0,
                    emergency_service=None,
                    callback_number=None,
                ),
            }
        elif fate < 0.2 and queue != "hotline-general":  # the department's seats, then the general ones
            first = base.queues[0]
            moved = first.joined_at + dt.timedelta(seconds=30)
            update["queues"] = [
                QueueVisit(
                    queue=queue, joined_at=first.joined_at, left_at=moved, result=QueueResult.OVERFLOWED
                ),
                first.model_copy(update={"joined_at": moved}),
            ]
        else:
            update["queues"] = [base.queues[0].model_copy(update={"queue": queue})]
            update["legs"] = [leg.model_copy(update={"queue": queue}) for leg in base.legs]
        records.append(base.model_copy(update=update))
    return records


async def weigh(redis: aioredis.Redis, names: Sequence[str]) -> list[int]:
    sizes: list[int] = []
    for start in range(0, len(names), 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for name in names[start : start + 1000]:
                pipe.memory_usage(name, samples=0)
            sizes += [int(size or 0) for size in await pipe.execute()]
    return sizes


async def bench(records: int, calls_per_day: int) -> None:
    day = day_of_records(records)
    with (
        tempfile.TemporaryDirectory(prefix="hotline-bench-") as data,
        LocalRedis(data_dir=Path(data)) as server,
    ):
        redis = aioredis.Redis.from_url(server.url)
        try:
            store = ReportStore(redis, lambda: {}, retention_days=RETENTION_DAYS)
            store.add(day)
            assert await store.flush(), "Redis did not take the records"
            at = DAY + dt.timedelta(days=3)
            for start in range(0, len(day), 10):
                await asyncio.gather(
                    *(
                        store.apply_feedback(
                            record.record_id,
                            feedback,
                        )
                        for record in day[start : start + 10]
                        for feedback in (
                            Resolution(kind="resolution", resolved=True, at=at),
                            FollowUp(kind="follow_up", result=FollowUpResult.SATISFIED, at=at),
                        )
                    )
                )
            keys = store.keys
            report = sum(await weigh(redis, [keys.day(DAY.date())]))
            month = sum(await weigh(redis, [keys.month("2026-03")]))
            counts = sum(await weigh(redis, [keys.increments(r.record_id) for r in day]))
            markers = sum(await weigh(redis, [keys.record(r.record_id) for r in day]))
            sample = await redis.get(keys.increments(day[0].record_id))
        finally:
            await redis.aclose()
    per_report, per_counts, per_marker = report / records, counts / records, markers / records
    print(f"records:            {records:,} over one Beijing day, each with a resolution and a follow-up")
    print(f"day's report hash:  {report:,} B ({per_report:.1f} B per record); month hash {month:,} B")
    print(f"record's counts:    {per_counts:.0f} B per record, kept {REPLACE_DAYS} days, e.g. {sample!r}")
    print(f"record's marker:    {per_marker:.0f} B per record, kept {FEEDBACK_DAYS} days")
    steady = {
        "markers": calls_per_day * FEEDBACK_DAYS * per_marker,
        "counts": calls_per_day * REPLACE_DAYS * per_counts,
    }
    print(
        f"steady state at {calls_per_day:,} calls a day: "
        + ", ".join(f"{name} {size / 1e6:,.0f} MB" for name, size in steady.items())
        + f"; the report buckets of {RETENTION_DAYS} days like this one {RETENTION_DAYS * report / 1e6:,.0f} MB"
    )
    print(
        f"reports: counts {per_counts:.0f} B/record ({per_counts / per_report:.2f}x the day's report per record), "
        f"marker {per_marker:.0f} B/record ({per_marker / per_report:.2f}x), day report {per_report:.1f} B/record"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000, help="calls in the day (default: %(default)s)")
    parser.add_argument("--calls-per-day", type=int, default=65_000, help="for the steady state (Beijing)")
    args = parser.parse_args()
    asyncio.run(bench(args.records, args.calls_per_day))


if __name__ == "__main__":
    main()
