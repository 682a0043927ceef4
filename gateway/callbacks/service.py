"""Callbacks (回拨): callers who pressed the callback key are called back when a seat is free.

Owns the callback queue in Redis (ordered by the caller's original JoinTime, so a gateway restart
loses nothing and every instance sees one order), the dispatch rule (oldest first per queue, and
never more calls back in flight for a queue than it has ready seats), placing the call, reading
its outcome from AMI events, retries, and reporting the outcome into the call's record.

A call back is ``Originate Local/<number>@hotline-outbound`` into ``hotline-callback-dial``: the
trunk rings the citizen, and only when they answer does the call enter the queue, first in line
(a seat is free: that is when it was placed). Its outcome comes from the outbound leg's DialEnd
(ANSWER, BUSY, NOANSWER, ...), and it stops being in flight when a seat answers it. Nothing is
dialled while the original call is still up (the caller is hearing the confirmation) or while
the tracker is resynchronising.

Claiming an entry is a ZREM, so two instances never dial the same caller. The instance dialling
refreshes its claim every tick; a claim nobody refreshed for ``stale_claim_s`` (its instance died
or restarted) is put back in line by whichever instance sees it, so the caller is not lost. That
attempt is not: while its channel is still up nobody dials again, and if it was answered (it is
a live call) the entry is done and that call back still joins the original call's record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from gateway import keys
from gateway.ami import safety
from gateway.ami.errors import AmiError
from gateway.ami.protocol import Message
from gateway.calls.model import SeatState
from gateway.calls.resync import utc_now
from gateway.contract import (
    CALL_BACK_PREFIX,
    CALLBACK_DIAL_CONTEXT,
    OUTBOUND_CONTEXT,
    OUTBOUND_RING_S,
    VAR_LEGACY_LINE,
    VAR_QUEUE,
    Callback,
)
from gateway.merge.schema import CallbackNumbers
from gateway.ports import Send, TrackerView
from gateway.records.from_calls import CallbackAttempt, RecordBuilder
from gateway.records.model import CallbackOutcome, CallRecord
from gateway.records.outbox import Outbox
from gateway.tasks import stop_if_cancelled
from gateway.transfers.inbox import Inbox

log = structlog.get_logger(__name__)

_DIAL_OUTCOMES = {"BUSY": CallbackOutcome.BUSY, "NOANSWER": CallbackOutcome.NO_ANSWER}
# The originate outlives the outbound Dial, so an unanswered call back ends with Dial's NOANSWER.
_ORIGINATE_TIMEOUT_MS = (OUTBOUND_RING_S + 10) * 1000


@dataclass
class CallbackEntry:
    call_id: str
    number: str | None
    queue: str
    joined_at: float  # epoch seconds: the order
    requested_at: float
    line: str | None = None  # the number the citizen dialled (12345 or a merged line)
    attempts: int = 0
    not_before: float = 0.0  # epoch seconds: retries wait
    claimed_by: str | None = None  # the instance dialling it now
    claimed_at: float = 0.0  # epoch seconds: its last sign of life
    linkedid: str | None = None  # the last attempt's call
    attempted_at: float = 0.0  # epoch seconds

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> CallbackEntry:
        return cls(**json.loads(text))


@dataclass(eq=False)
class Flight:
    """One call back being placed: until a seat answers it, or it fails."""

    entry: CallbackEntry
    linkedid: str
    started: dt.datetime
    answered: bool = False  # the citizen picked up (now waiting, first in line)


_Work = tuple[str, Any]


class CallbackService:
    """``__call__`` for AMI events (after the tracker's), ``run`` in the background, ``load`` at start.

    It dials through ``send`` while ``link_ready``, reads ``tracker``, amends call records through
    ``records`` and appends their outcomes to ``outbox``; its queue is in ``redis``.
    """

    def __init__(
        self,
        *,
        send: Send,
        tracker: TrackerView,
        link_ready: Callable[[], bool],
        records: RecordBuilder,
        outbox: Outbox,
        redis: aioredis.Redis,
        general_queue: str,
        numbers: CallbackNumbers,
        node_id: str,
        wallclock: Callable[[], dt.datetime] = utc_now,
        tick_s: float = 1.0,
        max_attempts: int = 3,
        retry_after_s: float = 300.0,
        stale_claim_s: float = 30.0,
    ) -> None:
        self.send = send
        self.tracker = tracker
        self.link_ready = link_ready
        self.records = records
        self.outbox = outbox
        self.redis = redis
        self.general_queue = general_queue
        self.numbers = numbers  # the YAML's dial plan for call backs
        self.wallclock = wallclock
        self.tick_s = tick_s
        self.max_attempts = max_attempts
        self.retry_after_s = retry_after_s
        self.stale_claim_s = stale_claim_s
        self.flights: dict[str, Flight] = {}  # by the call back's Linkedid
        self.instance = f"{node_id}:{secrets.token_hex(4)}"  # one node may have standby instances
        self._work: Inbox[_Work] = Inbox()

    # --- the queue in Redis ----------------------------------------------------------------------

    async def load(self) -> None:
        """At start: the call records kept for callbacks' outcomes (Redis being away is survivable)."""
        try:
            for raw in (await self.redis.hgetall(keys.CALLBACK_RECORDS)).values():
                self.records.remember(CallRecord.model_validate_json(raw))
        except (RedisError, OSError) as exc:
            log.warning("callback.redis_unreachable", error=str(exc))

    async def pending(self) -> list[CallbackEntry]:
        """Waiting to be called back, oldest arrival first."""
        redis = self.redis
        order = [
            m.decode() if isinstance(m, bytes) else str(m)
            for m in await redis.zrange(keys.CALLBACK_ORDER, 0, -1)
        ]
        if not order:
            return []
        entries = await redis.hmget(keys.CALLBACK_ENTRIES, order)
        return [CallbackEntry.from_json(raw) for raw in entries if raw is not None]

    async def _keep_claims(self) -> None:
        """Refresh this instance's claims; put back claims nobody has refreshed (a dead dialler's)."""
        now = self.wallclock().timestamp()
        for flight in list(self.flights.values()):  # events may land a flight meanwhile
            flight.entry.claimed_at = now
            await self.redis.hset(keys.CALLBACK_ENTRIES, flight.entry.call_id, flight.entry.to_json())
        for raw in (await self.redis.hgetall(keys.CALLBACK_ENTRIES)).values():
            entry = CallbackEntry.from_json(raw)
            if entry.claimed_by is not None and now - entry.claimed_at > self.stale_claim_s:
                log.warning("callback.claim_stale", call_id=entry.call_id, claimed_by=entry.claimed_by)
                entry.claimed_by = None
                await self._put_back(entry)

    async def _add(self, entry: CallbackEntry) -> None:
        redis = self.redis
        if await redis.hsetnx(keys.CALLBACK_ENTRIES, entry.call_id, entry.to_json()):
            await redis.zadd(keys.CALLBACK_ORDER, {entry.call_id: entry.joined_at}, nx=True)
            log.info("callback.queued", call_id=entry.call_id, queue=entry.queue)

    async def _put_back(self, entry: CallbackEntry) -> None:
        redis = self.redis
        await redis.hset(keys.CALLBACK_ENTRIES, entry.call_id, entry.to_json())
        await redis.zadd(keys.CALLBACK_ORDER, {entry.call_id: entry.joined_at})

    async def _drop(self, call_id: str) -> None:
        redis = self.redis
        await redis.zrem(keys.CALLBACK_ORDER, call_id)
        await redis.hdel(keys.CALLBACK_ENTRIES, call_id)
        await redis.hdel(keys.CALLBACK_RECORDS, call_id)

    # --- requests and outcomes from AMI events ---------------------------------------------------

    def __call__(self, event: Message) -> None:
        name = event.event
        f = event.as_dict()
        if name == "UserEvent" and f.get("UserEvent") == Callback.NAME:
            self._requested(f)
            return
        flight = self.flights.get(f.get("Linkedid", ""))
        if flight is None:
            return
        uniqueid = f.get("Uniqueid")
        if name == "DialEnd" and uniqueid == f"{flight.linkedid}-2":
            status = f.get("DialStatus", "")
            if status == "ANSWER":
                flight.answered = True
            elif status != "CANCEL":
                self._land(flight, _DIAL_OUTCOMES.get(status, CallbackOutcome.FAILED))
        elif name == "AgentConnect" and uniqueid == flight.linkedid:
            self._land(flight, CallbackOutcome.ANSWERED)  # a seat has it: no longer in flight
        elif name == "Hangup" and uniqueid in (flight.linkedid, f"{flight.linkedid}-2"):
            self._land(flight, CallbackOutcome.ANSWERED if flight.answered else CallbackOutcome.FAILED)

    def _requested(self, f: dict[str, str]) -> None:
        tracker = self.tracker
        call = tracker.call_of_leg(f.get("Uniqueid", "")) or tracker.calls.get(f.get("Linkedid", ""))
        request = call.callback if call is not None else None
        if call is None or request is None:
            return
        queue = request.queue or self.general_queue
        number = request.number if self._dialable(request.number, call.call_id) else None
        entry = CallbackEntry(
            call.call_id, number, queue, request.joined_at.timestamp(), request.at.timestamp(),
            call.legacy_line,
        )  # fmt: skip
        self._work.put(("add", entry))

    def on_final_record(self, record: CallRecord) -> None:
        """RecordBuilder listener: keep the record of a call awaiting its call back, for its outcome."""
        if record.callback is not None and record.callback.outcome is CallbackOutcome.PENDING:
            self._work.put(("record", record))

    def _land(self, flight: Flight, outcome: CallbackOutcome) -> None:
        if self.flights.pop(flight.linkedid, None) is not None:
            self._work.put(("outcome", (flight, outcome)))

    async def _settle(self, flight: Flight, outcome: CallbackOutcome) -> None:
        entry, records = flight.entry, self.records
        log.info("callback.attempt", call_id=entry.call_id, attempt=entry.attempts, outcome=outcome.value)
        if outcome is CallbackOutcome.ANSWERED:
            # Its record is amended when the call back ends (RecordBuilder.expect_callback).
            await self._drop(entry.call_id)
            return
        records.forget_callback(flight.linkedid)
        if entry.attempts < self.max_attempts:
            entry.claimed_by = None
            entry.not_before = self.wallclock().timestamp() + self.retry_after_s
            await self._put_back(entry)
            return
        await self._report(entry, outcome)

    async def _report(self, entry: CallbackEntry, outcome: CallbackOutcome) -> None:
        record = self.records.callback_outcome(entry.call_id, outcome, entry.attempts, self.wallclock())
        if record is not None:
            await self.outbox.append_many([record])
        await self._drop(entry.call_id)

    # --- dispatch --------------------------------------------------------------------------------

    def ready_seats(self, queue: str) -> int:
        return sum(
            1
            for seat in self.tracker.seats.values()
            if seat.state is SeatState.READY
            and queue in seat.memberships
            and not seat.memberships[queue].paused
        )

    def in_flight(self, queue: str) -> int:
        return sum(1 for flight in self.flights.values() if flight.entry.queue == queue)

    async def dispatch(self) -> None:
        """Call back the oldest waiting callers of each queue, as many as it has ready seats free."""
        tracker = self.tracker
        if tracker.stale or not self.link_ready():
            return
        now = self.wallclock().timestamp()
        free: dict[str, int] = {}
        for entry in await self.pending():
            if entry.not_before > now or entry.call_id in tracker.calls:
                continue
            if (
                entry.linkedid is not None and entry.linkedid in tracker.calls
            ):  # a lost attempt was answered: that was the call back
                at = dt.datetime.fromtimestamp(entry.attempted_at, dt.UTC)
                self.records.expect_callback(
                    entry.linkedid, CallbackAttempt(entry.call_id, entry.attempts, at)
                )
                await self._drop(entry.call_id)
                continue
            if entry.linkedid is not None and tracker.call_of_leg(entry.linkedid) is not None:
                continue  # a lost attempt still rings
            if entry.queue not in free:
                free[entry.queue] = self.ready_seats(entry.queue) - self.in_flight(entry.queue)
            if free[entry.queue] <= 0:
                continue
            if not await self.redis.zrem(keys.CALLBACK_ORDER, entry.call_id):
                continue  # another instance took it
            free[entry.queue] -= 1
            await self._dial(entry)

    def _dialable(self, number: str | None, call_id: str) -> bool:
        """Only numbers of the YAML's callback dial plan are called (checked again on entries read back
        from Redis, which anyone with access to it could have written)."""
        if self.numbers.allows(number):
            return True
        if number is not None:
            log.warning("callback.number_refused", call_id=call_id, number=number[:32])
        return False

    async def _dial(self, entry: CallbackEntry) -> None:
        entry.attempts += 1
        if not self._dialable(entry.number, entry.call_id):
            await self._report(entry, CallbackOutcome.FAILED)  # withheld, or outside the dial plan
            return
        linkedid = f"{CALL_BACK_PREFIX}{secrets.token_hex(8)}"
        flight = Flight(entry, linkedid, self.wallclock())
        entry.linkedid, entry.claimed_by = linkedid, self.instance
        entry.attempted_at = entry.claimed_at = flight.started.timestamp()
        await self.redis.hset(keys.CALLBACK_ENTRIES, entry.call_id, entry.to_json())
        self.flights[linkedid] = flight
        self.records.expect_callback(linkedid, CallbackAttempt(entry.call_id, entry.attempts, flight.started))
        log.info("callback.dialling", call_id=entry.call_id, attempt=entry.attempts, queue=entry.queue)
        try:
            await self.send(
                safety.originate(
                    f"Local/{entry.number}@{OUTBOUND_CONTEXT}", context=CALLBACK_DIAL_CONTEXT, exten="s",
                    caller_id_name="12345回拨", caller_id_number=entry.number,
                    variables=self._variables(entry), timeout_ms=_ORIGINATE_TIMEOUT_MS,
                    channel_id=linkedid, other_channel_id=f"{linkedid}-2",
                )
            )  # fmt: skip
        except AmiError as exc:
            log.warning("callback.not_placed", call_id=entry.call_id, error=exc.message)
            self._land(flight, CallbackOutcome.FAILED)

    @staticmethod
    def _variables(entry: CallbackEntry) -> dict[str, str]:
        """The queue to join; the line tells any gateway (after a resync too) this is a citizen's call."""
        line = {VAR_LEGACY_LINE: entry.line} if entry.line else {}
        return {VAR_QUEUE: entry.queue, **line}

    async def run(self) -> None:
        """Background task: Redis writes and outcomes as they come, dispatch every tick."""
        loop = asyncio.get_running_loop()
        next_dispatch = loop.time()
        while True:
            stop_if_cancelled()
            work = await self._work.next(next_dispatch - loop.time())
            if work is not None:
                await self._do(work)
            if loop.time() >= next_dispatch:
                next_dispatch = loop.time() + self.tick_s
                try:
                    await self._keep_claims()
                    await self.dispatch()
                except (RedisError, OSError) as exc:
                    log.warning("callback.redis_unreachable", error=str(exc))

    async def _do(self, work: _Work) -> None:
        kind, item = work
        try:
            if kind == "add":
                await self._add(item)
            elif kind == "record":
                await self.redis.hset(keys.CALLBACK_RECORDS, item.linkedid, item.model_dump_json())
            else:
                await self._settle(*item)
        except (RedisError, OSError) as exc:
            log.warning("callback.redis_unreachable", work=kind, error=str(exc))
