"""``hotline-gateway order-sink``: a reference order system that stores work orders in SQLite.

For the demo and the tests, not production. It implements the receiving side of
docs/order-system.md exactly: bearer token, ``Idempotency-Key`` dedup, the highest revision of a
record wins, 201 / 200 / 409 / 422 as documented. It can pretend to be a bad order system
(answer 500, answer slowly, drop connections) through ``PUT /_sink/faults`` or the ``faults``
attribute, and ``GET /_sink/stats`` counts what it holds and what it absorbed. Being *down* is
simulated by stopping it (``OrderSink.stop()``, or killing the process). With ``--feedback-url``
it also plays the order system's staff for the demo: some seconds after a final record it posts a
resolution and a follow-up (回访) result back to the gateway (docs/order-system.md, section 2).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import signal
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.logging import configure_logging
from gateway.records.feedback import FEEDBACK_PATH, FollowUpResult
from gateway.records.model import CallRecord, Stage
from gateway.records.tokens import bearer_matches, token_from_env

log = structlog.get_logger(__name__)

DEFAULT_TOKEN_ENV = "HOTLINE_ORDER_TOKEN"
WORK_ORDERS_PATH = "/work-orders"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS work_orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL UNIQUE,
    revision INTEGER NOT NULL,
    stage TEXT NOT NULL,
    disposition TEXT NOT NULL,
    legacy_line TEXT,  -- null: a call found by a resync (the contract allows it)
    record TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    idempotency_key TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    digest TEXT NOT NULL,
    received_at TEXT NOT NULL,
    copies INTEGER NOT NULL DEFAULT 1
);
"""


class Stored(StrEnum):
    CREATED = "created"  # a new work order
    UPDATED = "updated"  # a higher revision of a known record
    SUPERSEDED = "superseded"  # a new key, but a lower revision than the work order holds: kept, not applied
    DUPLICATE = "duplicate"  # this key, with this content, was stored before
    KEY_REUSED = "key_reused"  # this key was stored before with different content


def work_order_id(row_id: int) -> str:
    return f"GD{row_id:010d}"  # 工单 number


def _digest(record: CallRecord) -> str:
    # Content, not bytes: the same record serialized differently is still the same delivery.
    canonical = json.dumps(record.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class SinkStore:
    """SQLite storage; every submit is one transaction, so a crash never half-stores a record."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def submit(self, key: str, record: CallRecord) -> tuple[Stored, str]:
        """Store one delivery; returns what happened and the work order id."""
        digest = _digest(record)
        now = dt.datetime.now(dt.UTC).isoformat()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seen = db.execute("SELECT digest FROM deliveries WHERE idempotency_key = ?", (key,)).fetchone()
            if seen is not None:
                outcome = Stored.DUPLICATE if seen[0] == digest else Stored.KEY_REUSED
                if outcome is Stored.DUPLICATE:
                    db.execute("UPDATE deliveries SET copies = copies + 1 WHERE idempotency_key = ?", (key,))
            else:
                db.execute(
                    "INSERT INTO deliveries (idempotency_key, record_id, revision, digest, received_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (key, record.record_id, record.revision, digest, now),
                )
                outcome = self._apply(record, now)
            row = db.execute("SELECT id FROM work_orders WHERE record_id = ?", (record.record_id,)).fetchone()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return outcome, work_order_id(row[0]) if row else ""

    def _apply(self, record: CallRecord, now: str) -> Stored:
        current = self._db.execute(
            "SELECT revision FROM work_orders WHERE record_id = ?", (record.record_id,)
        ).fetchone()
        values = (
            record.revision,
            record.stage.value,
            record.disposition.kind.value,
            record.model_dump_json(),
            now,
        )
        if current is None:
            self._db.execute(
                "INSERT INTO work_orders (revision, stage, disposition, record, updated_at, record_id, legacy_line,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, record.record_id, record.legacy_line, now),
            )
            return Stored.CREATED
        if record.revision <= current[0]:
            return Stored.SUPERSEDED
        self._db.execute(
            "UPDATE work_orders SET revision = ?, stage = ?, disposition = ?, record = ?, updated_at = ? "
            "WHERE record_id = ?",
            (*values, record.record_id),
        )
        return Stored.UPDATED

    def work_order(self, record_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT id, revision, stage, record, created_at, updated_at FROM work_orders WHERE record_id = ?",
            (record_id,),
        ).fetchone()
        if row is None:
            return None
        row_id, revision, stage, record, created_at, updated_at = row
        return {
            "work_order_id": work_order_id(row_id), "record_id": record_id, "revision": revision,
            "stage": stage, "created_at": created_at, "updated_at": updated_at, "record": json.loads(record),
        }  # fmt: skip

    def delivery_keys(self) -> list[str]:
        return [key for (key,) in self._db.execute("SELECT idempotency_key FROM deliveries ORDER BY rowid")]

    def counts(self) -> dict[str, int]:
        work_orders, final = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(stage = 'final'), 0) FROM work_orders"
        ).fetchone()
        deliveries, copies = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(copies), 0) FROM deliveries"
        ).fetchone()
        return {
            "work_orders": work_orders,
            "final_work_orders": final,
            "deliveries": deliveries,
            "duplicate_posts_absorbed": copies - deliveries,
        }


class FeedbackPoster:
    """Resolves work orders and calls citizens back, reproducibly: outcomes follow the record id."""

    def __init__(self, gateway_url: str, token: str, *, delay_s: float = 10.0) -> None:
        self._gateway_url = gateway_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._delay_s = delay_s
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: set[str] = set()

    @staticmethod
    def outcomes(record_id: str) -> tuple[bool, FollowUpResult]:
        """About 85 % resolved; 70 % satisfied, 18 % basic, 7 % dissatisfied, 5 % unreachable."""
        draw = int(hashlib.sha256(record_id.encode()).hexdigest()[:8], 16)
        resolved, survey = draw % 100 < 85, (draw // 100) % 100
        thresholds = (
            (70, FollowUpResult.SATISFIED),
            (88, FollowUpResult.BASIC),
            (95, FollowUpResult.DISSATISFIED),
        )
        return resolved, next(
            (result for limit, result in thresholds if survey < limit), FollowUpResult.UNREACHABLE
        )

    def schedule(self, record_id: str, work_order_id: str) -> None:
        if record_id in self._seen:
            return
        self._seen.add(record_id)
        task = asyncio.create_task(self._post_both(record_id, work_order_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_both(self, record_id: str, work_order_id: str) -> None:
        resolved, follow_up = self.outcomes(record_id)
        url = self._gateway_url + FEEDBACK_PATH.format(record_id=record_id)
        for body in (
            {"kind": "resolution", "resolved": resolved, "work_order_id": work_order_id},
            {"kind": "follow_up", "result": follow_up.value, "work_order_id": work_order_id},
        ):
            await asyncio.sleep(self._delay_s)
            if self._session is None:
                self._session = aiohttp.ClientSession(
                    headers=self._headers, timeout=aiohttp.ClientTimeout(total=5)
                )
            payload = body | {"at": dt.datetime.now(dt.UTC).isoformat()}
            try:
                async with self._session.post(url, json=payload) as response:
                    if response.status != 200:
                        log.warning("sink_feedback_refused", record_id=record_id, status=response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("sink_feedback_failed", record_id=record_id, error=repr(exc))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


class Faults(BaseModel):
    """Misbehaviour on ``POST /work-orders``; ``remaining`` None means until changed."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    status: int | None = Field(default=None, ge=400, le=599, description="answer with this status")
    drop: bool = Field(default=False, description="close the connection without answering (if no status)")
    delay_s: float = Field(default=0.0, ge=0, le=600, description="wait before answering")
    remaining: int | None = Field(default=None, ge=0, description="requests the status/drop apply to")
    duplicate_status: int = Field(default=200, description="answer to a duplicate key: 200 or 409")


@dataclass
class RequestCounts:
    requests: int = 0
    faulted: int = 0
    rejected: int = 0


class OrderSink:
    """The receiver as an object: ``async with OrderSink(db, token) as sink: ... sink.url``.

    ``stop()`` and ``start()`` in between take it down and bring it back on the same port.
    """

    def __init__(
        self,
        db: Path | str,
        token: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        feedback: FeedbackPoster | None = None,
    ) -> None:
        self.store = SinkStore(db)
        self.feedback = feedback
        self.faults = faults or Faults()
        self.host = host
        self.port = port
        self.requests = RequestCounts()
        self.answers: Counter[int] = Counter()
        self._token = token
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The work-orders endpoint (what ``order_system.url`` points at)."""
        return f"http://{self.host}:{self.port}{WORK_ORDERS_PATH}"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.add_routes([
            web.post(WORK_ORDERS_PATH, self._post_work_order),
            web.get(WORK_ORDERS_PATH + "/{record_id}", self._get_work_order),
            web.get("/_sink/stats", self._get_stats),
            web.put("/_sink/faults", self._put_faults),
        ])  # fmt: skip
        return app

    async def start(self) -> OrderSink:
        """Listen; a restart after ``stop()`` reuses the same port (the order system came back)."""
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]
        log.info("order_sink_listening", url=self.url)
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> OrderSink:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        if self.feedback is not None:
            await self.feedback.close()
        self.store.close()

    def stats(self) -> dict[str, Any]:
        return {
            **self.store.counts(),
            **asdict(self.requests),
            "answers": {str(status): count for status, count in sorted(self.answers.items())},
            "faults": self.faults.model_dump(),
        }

    def _authorized(self, request: web.Request) -> bool:
        return bearer_matches(request.headers.get("Authorization"), self._token)

    def _answer(self, status: int, body: dict[str, Any]) -> web.Response:
        self.answers[status] += 1
        return web.json_response(body, status=status)

    def _fault_now(self) -> bool:
        faults = self.faults
        if (faults.status is None and not faults.drop) or faults.remaining == 0:
            return False
        if faults.remaining is not None:
            faults.remaining -= 1
        return True

    async def _post_work_order(self, request: web.Request) -> web.StreamResponse:
        self.requests.requests += 1
        if not self._authorized(request):
            return self._answer(401, {"code": "unauthorized", "message": "missing or wrong bearer token"})
        body = await request.read()
        fault = self._fault_now()
        # A slow order system is slow to answer, not to store: a client that gives up early
        # must still find its record there on retry (the duplicate case the dedup is for).
        response = None if fault else self._store(request.headers.get("Idempotency-Key", ""), body)
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        if response is not None:
            return response
        self.requests.faulted += 1
        if self.faults.status is None:  # drop
            assert request.transport is not None
            request.transport.close()
            return web.Response()  # never reaches the client
        return self._answer(self.faults.status, {"code": "simulated", "message": "fault injected"})

    def _store(self, key: str, body: bytes) -> web.Response:
        if not key:
            return self._reject(400, "idempotency_key_missing", "send the record's idempotency key")
        try:
            record = CallRecord.model_validate_json(body)
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:20]]
            return self._reject(422, "invalid_record", "; ".join(problems))
        if key != record.idempotency_key:
            return self._reject(422, "idempotency_key_mismatch", f"expected {record.idempotency_key}")
        outcome, order_id = self.store.submit(key, record)
        answer = {
            "work_order_id": order_id, "record_id": record.record_id, "revision": record.revision,
            "idempotency_key": key, "status": outcome.value,
        }  # fmt: skip
        if outcome is Stored.KEY_REUSED:
            return self._reject(422, "idempotency_key_reused", f"{key} was stored with different content")
        if outcome is Stored.DUPLICATE:
            return self._answer(self.faults.duplicate_status, {**answer, "code": "duplicate"})
        if self.feedback is not None and record.stage is Stage.FINAL:
            self.feedback.schedule(record.record_id, order_id)
        return self._answer(201 if outcome is Stored.CREATED else 200, answer)

    def _reject(self, status: int, code: str, message: str) -> web.Response:
        self.requests.rejected += 1
        return self._answer(status, {"code": code, "message": message})

    async def _get_work_order(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._answer(401, {"code": "unauthorized", "message": "missing or wrong bearer token"})
        order = self.store.work_order(request.match_info["record_id"])
        if order is None:
            return web.json_response({"code": "not_found", "message": "no such record"}, status=404)
        return web.json_response(order)

    async def _get_stats(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._answer(401, {"code": "unauthorized", "message": "missing or wrong bearer token"})
        return web.json_response(self.stats())

    async def _put_faults(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._answer(401, {"code": "unauthorized", "message": "missing or wrong bearer token"})
        try:
            self.faults = Faults.model_validate_json(await request.read())
        except ValidationError as exc:
            return web.json_response({"code": "invalid_faults", "message": str(exc)}, status=422)
        log.warning("order_sink_faults", **self.faults.model_dump())
        return web.json_response(self.faults.model_dump())


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--db", default="var/order-sink.sqlite3", help="SQLite file (created if missing)")
    parser.add_argument(
        "--token-env", default=DEFAULT_TOKEN_ENV, help="NAME of the env var holding the token"
    )
    parser.add_argument("--duplicate-status", type=int, choices=(200, 409), default=200)
    parser.add_argument(
        "--feedback-url", help="gateway base URL: post resolution and 回访 results back (demo)"
    )
    parser.add_argument(
        "--feedback-token-env", default="HOTLINE_FEEDBACK_TOKEN", help="NAME of its token's env var"
    )
    parser.add_argument("--feedback-delay-s", type=float, default=10.0, help="staff reaction time per step")


async def _serve(args: argparse.Namespace) -> None:
    token = token_from_env(args.token_env, "the bearer token the gateway must present")
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    faults = Faults(duplicate_status=args.duplicate_status)
    feedback = None
    if args.feedback_url:
        feedback_token = token_from_env(args.feedback_token_env, "the token for the gateway's feedback route")
        feedback = FeedbackPoster(args.feedback_url, feedback_token, delay_s=args.feedback_delay_s)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    async with OrderSink(
        args.db, token, host=args.host, port=args.port, faults=faults, feedback=feedback
    ) as sink:
        print(f"order-sink listening on {sink.url} (db {args.db}, token from ${args.token_env})", flush=True)
        await stopped.wait()


def run(args: argparse.Namespace) -> int:
    configure_logging()
    asyncio.run(_serve(args))
    return 0
