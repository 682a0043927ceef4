"""The dispatcher: reads the outbox stream in a consumer group and delivers records to the order system.

Owns at-least-once delivery: an entry leaves the stream (XACK + XDEL, one MULTI) only when the
order system confirmed it (2xx, or 409 naming the same key) or refused it (other 4xx: the entry
moves to the dead-letter stream in the same MULTI). Everything else is retried with exponential
backoff and jitter, for as long as it takes; the order system deduplicates by Idempotency-Key, so
a retry after an unrecorded success is harmless.

Several dispatchers (processes or tasks) share the group. Each reads a batch and posts it
concurrently; a dispatcher that is killed leaves its batch pending, and another takes it over
with XAUTOCLAIM once it has been idle ``claim_idle_ms``. While retrying, the owner re-claims its
entries (XCLAIM JUSTID) after every backoff so a live dispatcher is never robbed; hence
``claim_idle_ms`` must exceed one backoff plus one request. After a Redis error a dispatcher first
re-reads its own pending entries.

``python -m gateway.records.dispatcher`` runs one in its own process (the fault tests kill it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

from gateway.errors import GatewayError
from gateway.keys import OutboxKeys
from gateway.logging import configure_logging
from gateway.records.client import Answer, OrderSystemClient, Result
from gateway.records.metrics import OutboxMetrics
from gateway.records.outbox import REDIS_FAILURES, StreamEntry, backlog, stream_entries

log = structlog.get_logger(__name__)

CLAIM_CHECK_S = 1.0  # how often a dispatcher looks for entries a dead one left behind
METRICS_REFRESH_S = 1.0
CLAIM_IDLE_MARGIN = 1.5  # event-loop lag and Redis round trips on top of the worst case
FORGET_CONSUMERS_IDLE_MS = 3_600_000  # consumers with nothing pending, unseen for an hour, are gone


class DispatcherConfigError(GatewayError):
    code = "records.dispatcher_config"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter": half the step fixed, half random."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        step = min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, 30))
        return step / 2 + rng.uniform(0, step / 2)


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _stream_reply(raw: object) -> object:
    """The entries of an XREADGROUP reply for one stream (RESP2 list or RESP3 map)."""
    if isinstance(raw, dict):
        return next(iter(raw.values()), [[]])[0]
    if isinstance(raw, list) and raw:
        return raw[0][1]
    return []


class Dispatcher:
    def __init__(
        self,
        redis: aioredis.Redis,
        client: OrderSystemClient,
        *,
        consumer: str | None = None,
        keys: OutboxKeys | None = None,
        batch_size: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int = 60_000,
        retry: RetryPolicy | None = None,
        metrics: OutboxMetrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        # The longest a live owner leaves an entry untouched: one attempt (the client's timeout covers
        # waiting for a pooled connection too, so a whole batch takes at most that) plus one backoff.
        busiest_s = client.timeout_s + self.retry.cap_s
        if claim_idle_ms / 1000 <= CLAIM_IDLE_MARGIN * busiest_s:
            raise DispatcherConfigError(
                f"claim_idle_ms={claim_idle_ms} would let dispatchers take live work from each other: it "
                f"must exceed {CLAIM_IDLE_MARGIN} x (order_system.timeout_s + the backoff cap) = "
                f"{CLAIM_IDLE_MARGIN * busiest_s:.1f} s"
            )
        self._redis = redis
        self._client = client
        self.consumer = consumer or default_consumer_name()
        self.keys = keys or OutboxKeys()
        self._batch_size = batch_size
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._stop = asyncio.Event()
        self._group_ready = False
        self._reread_own = True  # at start and after a Redis error: our own pending entries first
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._next_metrics = 0.0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Deliver until ``stop()``; Redis outages are waited out with backoff, never raised."""
        failures = 0
        while not self._stop.is_set():
            try:
                await self.step()
                failures = 0
            except REDIS_FAILURES as exc:
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    self._group_ready = False
                failures += 1
                self._reread_own = True
                delay = self.retry.delay(failures, self._rng)
                log.warning(
                    "dispatcher_redis_error", consumer=self.consumer, error=repr(exc), retry_in_s=delay
                )
                await self._sleep(delay)

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.keys.stream, self.keys.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self._forget_idle_consumers()
        self._group_ready = True

    async def step(self) -> int:
        """Read one batch (own pending, abandoned, or new) and deliver it; returns its size."""
        if not self._group_ready:
            await self.ensure_group()
        entries: list[StreamEntry] = []
        if self._reread_own:
            entries = await self._read("0")
            self._reread_own = bool(entries)
        if not entries and time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + CLAIM_CHECK_S
            entries = await self._take_over()
        if not entries:
            entries = await self._read(">", block_ms=self._block_ms)
        if entries:
            await self._deliver(entries)
        if self._metrics and time.monotonic() >= self._next_metrics:
            self._next_metrics = time.monotonic() + METRICS_REFRESH_S
            await self._refresh_backlog(self._metrics)
        return len(entries)

    async def _read(self, start: str, block_ms: int | None = None) -> list[StreamEntry]:
        raw = await self._redis.xreadgroup(
            self.keys.group, self.consumer, {self.keys.stream: start}, count=self._batch_size, block=block_ms
        )
        return stream_entries(_stream_reply(raw))

    async def _take_over(self) -> list[StreamEntry]:
        reply = await self._redis.xautoclaim(
            self.keys.stream,
            self.keys.group,
            self.consumer,
            min_idle_time=self._claim_idle_ms,
            start_id=self._claim_cursor,
            count=self._batch_size,
        )
        cursor, claimed = reply[0], reply[1]
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        entries = stream_entries(claimed)
        if entries:
            log.warning("dispatcher_took_over", consumer=self.consumer, entries=len(entries))
        return entries

    async def _deliver(self, entries: Sequence[StreamEntry]) -> None:
        pending = list(entries)
        attempt = 0
        while pending:
            answers = await asyncio.gather(*(self._submit(fields) for _, fields in pending))
            settled = [
                (entry, a) for entry, a in zip(pending, answers, strict=True) if a.result is not Result.RETRY
            ]
            await self._settle(settled)
            retry = [
                (entry, a) for entry, a in zip(pending, answers, strict=True) if a.result is Result.RETRY
            ]
            pending = [entry for entry, _ in retry]
            if not pending:
                return
            attempt += 1
            # Retry-After is honoured up to the cap: beyond it, others would take the entries over.
            asked = max((a.retry_after_s or 0.0 for _, a in retry), default=0.0)
            delay = max(self.retry.delay(attempt, self._rng), min(asked, self.retry.cap_s))
            reasons = sorted({a.reason for _, a in retry})
            log.warning("dispatcher_retrying", consumer=self.consumer, entries=len(pending), attempt=attempt,
                        reasons=reasons, retry_in_s=round(delay, 3))  # fmt: skip
            if self._metrics:
                for _, answer in retry:
                    self._metrics.attempts_failed.labels(reason=answer.reason).inc()
            if await self._sleep(delay):
                return  # stopping: the entries stay pending for whoever runs next
            # Re-claiming resets their idle time, so no other dispatcher takes them over meanwhile;
            # an entry that is no longer pending was settled by another dispatcher: drop it.
            still_pending = await self._redis.xclaim(
                self.keys.stream, self.keys.group, self.consumer, 0, [entry_id for entry_id, _ in pending],
                justid=True,
            )  # fmt: skip
            ours = {
                entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                for entry_id in still_pending
            }
            pending = [entry for entry in pending if entry[0] in ours]

    async def _submit(self, fields: dict[str, bytes]) -> Answer:
        if "key" not in fields or "record" not in fields:
            return Answer(Result.REJECT, None, "malformed_entry", detail=f"fields {sorted(fields)}")
        return await self._client.submit(fields["key"].decode(), fields["record"])

    async def _settle(self, settled: Sequence[tuple[StreamEntry, Answer]]) -> None:
        if not settled:
            return
        ids = [entry_id for (entry_id, _), _ in settled]
        now = dt.datetime.now(dt.UTC)
        async with self._redis.pipeline(transaction=True) as pipe:
            for (entry_id, fields), answer in settled:
                if answer.result is Result.REJECT:
                    pipe.xadd(self.keys.dead, {
                        "key": fields.get("key", b""), "record": fields.get("record", b"{}"),
                        "status": str(answer.status or ""), "reason": answer.reason, "detail": answer.detail,
                        "failed_at": now.isoformat(), "source_id": entry_id, "consumer": self.consumer,
                    })  # fmt: skip
            pipe.xack(self.keys.stream, self.keys.group, *ids)
            pipe.xdel(self.keys.stream, *ids)
            await pipe.execute()
        for (_, fields), answer in settled:
            if answer.result is Result.REJECT:
                log.error("record_dead_lettered", key=fields.get("key", b"").decode(), status=answer.status,
                          reason=answer.reason, detail=answer.detail)  # fmt: skip
        if self._metrics:
            self._count(settled, now)

    def _count(self, settled: Sequence[tuple[StreamEntry, Answer]], now: dt.datetime) -> None:
        assert self._metrics is not None
        now_ms = now.timestamp() * 1000
        for (entry_id, _), answer in settled:
            if answer.result is Result.REJECT:
                self._metrics.dead_lettered.inc()
                continue
            self._metrics.delivered.labels(result=answer.result.value).inc()
            added_ms = int(entry_id.split("-", 1)[0])  # a stream id starts with its XADD time in ms
            self._metrics.latency.observe(max(0.0, (now_ms - added_ms) / 1000))

    async def _refresh_backlog(self, metrics: OutboxMetrics) -> None:
        now = await backlog(self._redis, self.keys)
        metrics.backlog.set(now.entries)
        metrics.pending.set(now.pending)
        metrics.dead_letters.set(now.dead_letters)

    async def _forget_idle_consumers(self) -> None:
        """Dispatchers are named per process; drop the long-gone ones that hold nothing."""
        for info in await self._redis.xinfo_consumers(self.keys.stream, self.keys.group):
            name = info["name"]
            if info["pending"] == 0 and info["idle"] > FORGET_CONSUMERS_IDLE_MS and name != self.consumer:
                await self._redis.xgroup_delconsumer(self.keys.stream, self.keys.group, name)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True if stopped."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.records.dispatcher",
        description="deliver call records from the Redis outbox to the order system until SIGTERM",
    )
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--order-url", required=True, help="the order system's work-orders URL (POST)")
    parser.add_argument("--timeout-s", type=float, default=5.0)
    parser.add_argument("--token-env", required=True, help="NAME of the env var holding the bearer token")
    parser.add_argument("--consumer", default=None, help="consumer name (default host-pid)")
    parser.add_argument("--prefix", default=OutboxKeys.prefix)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--claim-idle-ms", type=int, default=60_000)
    parser.add_argument("--retry-base-s", type=float, default=0.5)
    parser.add_argument("--retry-cap-s", type=float, default=30.0)
    return parser


async def _serve(args: argparse.Namespace) -> None:
    redis = aioredis.Redis.from_url(args.redis_url)
    try:
        async with OrderSystemClient(args.order_url, args.timeout_s, args.token_env) as client:
            dispatcher = Dispatcher(
                redis, client, consumer=args.consumer, keys=OutboxKeys(prefix=args.prefix),
                batch_size=args.batch_size, claim_idle_ms=args.claim_idle_ms,
                retry=RetryPolicy(args.retry_base_s, args.retry_cap_s),
            )  # fmt: skip
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, dispatcher.stop)
            await dispatcher.ensure_group()
            print(f"dispatcher {dispatcher.consumer} ready", flush=True)
            await dispatcher.run()
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    try:
        asyncio.run(_serve(args))
    except GatewayError as exc:
        print(f"dispatcher: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
