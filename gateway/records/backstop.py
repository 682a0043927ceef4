"""The records backstop: work orders for calls the gateway never saw, from the PBX's own log.

A call that starts and ends while no gateway is connected (killed and restarting, AMI session
down, a standby still waiting for the lease) leaves nothing on AMI. The rendered dialplan covers
it without depending on the gateway: the caller's hangup handler writes every ended citizen call
into AstDB (``gateway.contract.ENDED_LOG_FIELDS``), one family per UTC day and one key per
hour, kept three days. After every resync (each new AMI session, and periodically) the backstop
reads the hours since its last sweep (``DBGetTree``: the ``reporting`` class, no ``system``) and
turns every call nobody recorded into a final record marked ``origin: pbx_log``.

"Recorded" is known three ways, so that a call is reported once and the live path always wins:
- live in the tracker: its Hangup is on its way (the handler runs before it), the live path ends it;
- ended in this process (the tracker feed's outputs): its record is being built or was built;
- a marker in Redis, written for every final record once the outbox holds it (its ``seen`` key
  exists: the record is in the stream, or was), so a restarted gateway knows what the last one did.
A call the gateway closed as "ended during PBX outage" (it lost the link and guessed the end) is
reported again from the log with what the PBX knows (answered or abandoned, seat, survey), as a
newer revision that the order system keeps. A second copy of a record is harmless (the outbox and
the order system deduplicate by key); the markers only keep it from happening by the thousand.
A call the tracker still holds live a minute after the PBX logged its end is one whose Hangup it
missed: the backstop asks for a resync, which closes it, and the next sweep corrects it.

The log's hours and days are the PBX's: the sweep asks the PBX for its time (Ping), so a skewed
gateway clock (or the simulator's scaled one) changes nothing. Times in a backstop record are the
PBX's whole seconds; the first answer is the last queue entry plus Asterisk's QEHOLDTIME.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

import redis.asyncio as aioredis
import structlog
from pydantic import TypeAdapter, ValidationError

from gateway.ami import safety
from gateway.ami.errors import ActionFailedError, AmiError
from gateway.calls.model import seat_id_of
from gateway.calls.resync import Resync
from gateway.calls.tracker import CallEnded, Output
from gateway.contract import ENDED_FAMILY, ENDED_KEEP_DAYS, ENDED_LOG_FIELDS, ENDED_LOG_VERSION
from gateway.records.build import RecordBuildError, build, pending_callback, survey_result
from gateway.records.from_calls import RecordBuilder
from gateway.records.model import (
    LINKEDID_PATTERN,
    CallRecord,
    Origin,
    PhoneNumber,
    QueueName,
    SeatId,
    ShortText,
    Stage,
    SurveyResult,
    record_id_for,
    revision_for,
)
from gateway.records.outbox import REDIS_FAILURES, Outbox, Via
from gateway.vocabulary import CATEGORY_RE, DTMF_KEY_RE, DispositionKind, MergeMode, QueueResult

log = structlog.get_logger(__name__)

KEEP_S: Final = ENDED_KEEP_DAYS * 86_400  # what the PBX keeps, hence the furthest a sweep looks back
MARGIN_S: Final = 60.0  # re-read before the last sweep: handlers still writing when it read
MARKER_TTL_S: Final = KEEP_S + 86_400
REMEMBER: Final = 50_000  # calls known recorded in this process (about a busy day)
PENDING_MAX: Final = 100_000  # markers waiting for Redis; beyond, a copy may be sent again (harmless)
CHUNK: Final = 200
GHOST_AFTER_S: Final = 60.0  # PBX seconds: a Hangup event is never this late on a working link
EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NOT_FOUND = "Database entry not found"  # Asterisk's answer to DBGetTree on an empty tree
# A sweep waits for the next chance: AMI down or Redis down (it cannot tell what was recorded).
SWEEP_FAILURES: tuple[type[BaseException], ...] = (AmiError, *REDIS_FAILURES)

_FIELDS = tuple(name for name, _ in ENDED_LOG_FIELDS)
E = TypeVar("E", bound=StrEnum)


# --- the log's entries -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedCall:
    """One entry of the PBX's log of ended calls: what the caller's channel knew when it hung up.

    Times are epoch seconds of the PBX; text fields are None when the dialplan left them empty.
    """

    linkedid: str
    fields: dict[str, str]

    def text(self, name: str) -> str | None:
        return self.fields[name] or None

    def epoch(self, name: str) -> float | None:
        value = self.fields[name]
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) and number >= 0 else None

    @property
    def ended(self) -> float:
        ended = self.epoch("ended")
        assert ended is not None  # parse_entry refuses entries without it
        return ended


def parse_entry(key: str, value: str) -> LoggedCall | None:
    """``/hotline-ended-YYYYMMDD/HH/<Linkedid>`` = ``v1|...``; None (and an error logged) if unreadable."""
    parts = key.split("/")
    values = value.split("|")
    linkedid = parts[3] if len(parts) == 4 and parts[1].startswith(ENDED_FAMILY) else ""
    if not _LINKEDID.fullmatch(linkedid) or values[0] != ENDED_LOG_VERSION or len(values) != len(_FIELDS) + 1:
        log.error("backstop.entry_unreadable", key=key, value=value[:300])
        return None
    entry = LoggedCall(linkedid, dict(zip(_FIELDS, values[1:], strict=True)))
    if entry.epoch("ended") is None:
        log.error("backstop.entry_unreadable", key=key, value=value[:300], reason="no end time")
        return None
    return entry


def hours(since: float, until: float) -> list[tuple[str, str]]:
    """The log's (family, key) of every UTC hour from ``since`` to ``until`` (PBX epoch seconds)."""
    found = []
    hour = math.floor(since / 3600) * 3600
    while hour <= until:
        moment = dt.datetime.fromtimestamp(hour, dt.UTC)
        found.append((f"{ENDED_FAMILY}-{moment:%Y%m%d}", f"{moment:%H}"))
        hour += 3600
    return found


# --- what is known recorded, and what the backstop must report ------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    """A final record of the call exists (or is on its way): its revision, and whether it only
    says the call ended during a PBX outage (times guessed when the link came back)."""

    revision: int
    outage: bool = False

    def marker(self) -> str:
        return f"{self.revision}:{'outage' if self.outage else 'final'}"

    @classmethod
    def from_marker(cls, text: str) -> Recorded | None:
        revision, _, kind = text.partition(":")
        return cls(int(revision), kind == "outage") if revision.isdigit() else None


def ghosts(entries: Sequence[LoggedCall], live: Container[str], now: float) -> list[str]:
    """Calls the tracker holds live though the PBX logged their end over ``GHOST_AFTER_S`` ago.

    The handler runs just before the channel's Hangup, so a live call's log entry is never that
    old: the tracker missed the end (a resync closes such calls, and the backstop then corrects them).
    """
    return [e.linkedid for e in entries if e.linkedid in live and now - e.ended > GHOST_AFTER_S]


def report_as_of(entry: LoggedCall, *, live: bool, recorded: Recorded | None) -> dt.datetime | None:
    """The ``as_of`` of the record the backstop sends for ``entry``; None when it sends none.

    A record that corrects an outage guess must outrank it: one millisecond after its ``as_of``.
    """
    if live or (recorded is not None and not recorded.outage):
        return None
    ended = dt.datetime.fromtimestamp(entry.ended, dt.UTC)
    if recorded is None:
        return ended
    if revision_for(ended, Stage.FINAL) > recorded.revision:
        return ended
    # Whole milliseconds from the epoch: revision_for truncates a float, so step until it is higher.
    after = EPOCH + dt.timedelta(milliseconds=recorded.revision // 10 + 1)
    while revision_for(after, Stage.FINAL) <= recorded.revision:
        after += dt.timedelta(milliseconds=1)
    return after


# --- the record ------------------------------------------------------------------------------

_LINKEDID = re.compile(LINKEDID_PATTERN)
_PHONE: TypeAdapter[str] = TypeAdapter(PhoneNumber)
_QUEUE: TypeAdapter[str] = TypeAdapter(QueueName)
_SEAT: TypeAdapter[str] = TypeAdapter(SeatId)
_TEXT: TypeAdapter[str] = TypeAdapter(ShortText)


def _valid(adapter: TypeAdapter[str], value: str | None) -> str | None:
    """``value`` if the contract takes it, else None: an odd value in the log must never cost a record."""
    if not value:
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def _member(kind: Callable[[str], E], value: str | None) -> E | None:
    try:
        return kind(value) if value else None
    except ValueError:
        return None


def _at(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


def _seat(interface: str | None) -> str | None:
    return _valid(_SEAT, seat_id_of(interface)) if interface else None


def _survey(entry: LoggedCall) -> dict[str, Any] | None:
    result = _member(SurveyResult, survey_result(entry.text("survey")))
    if result is None:
        return None
    key = entry.text("survey_key")
    return {"result": result, "key": key if key and DTMF_KEY_RE.fullmatch(key) else None, "at": None}


def build_record(entry: LoggedCall, pbx_node: str, as_of: dt.datetime) -> CallRecord:
    """The final record of a logged call, in the contract's terms, marked ``origin: pbx_log``."""
    ended = entry.ended
    arrived = min(entry.epoch("arrived") or ended, ended)
    joined = entry.epoch("joined")
    queued, held, callback_at = entry.epoch("queued"), entry.epoch("held"), entry.epoch("callback")
    answered = min(queued + held, ended) if queued is not None and held is not None else None
    last_seat = _seat(entry.text("seat"))
    seat_ids = list(dict.fromkeys(s for s in (_seat(entry.text("handed_from")), last_seat) if s))
    talk = entry.epoch("talk")
    talk_s = (talk if talk is not None else ended - (answered or ended)) if seat_ids else 0.0
    caller = _valid(_PHONE, entry.text("caller"))
    queue = _valid(_QUEUE, entry.text("queue"))
    waited_from = joined if joined is not None else arrived
    left = answered if answered is not None else min(callback_at or ended, ended)
    if callback_at is not None:
        disposition: dict[str, Any] = {"kind": DispositionKind.CALLBACK_REQUESTED, "callback_number": caller}
        result = QueueResult.CALLBACK_REQUESTED
    elif seat_ids:
        disposition, result = {"kind": DispositionKind.ANSWERED}, QueueResult.ANSWERED
    else:
        disposition = {"kind": DispositionKind.ABANDONED, "abandoned_after_s": ended - waited_from}
        result = QueueResult.ABANDONED
    legs: list[dict[str, Any]] = [
        {"kind": "seat", "party": last_seat, "queue": queue, "offered_at": _at(answered),
         "answered_at": _at(answered), "ended_at": _at(min(answered + talk_s, ended)), "ring_s": 0.0,
         "talk_s": talk_s, "hold_s": 0.0, "recordings": []}
    ] if last_seat and answered is not None else []  # fmt: skip
    category = entry.text("category")
    recording = _valid(_TEXT, entry.text("recording"))
    return build(
        pbx_node=pbx_node,
        linkedid=entry.linkedid,
        stage=Stage.FINAL,
        as_of=as_of,
        disposition=disposition,
        origin=Origin.PBX_LOG,
        caller_number=caller,
        legacy_line=_valid(_PHONE, entry.text("line")),
        merge_mode=_member(MergeMode, entry.text("mode")),
        department=_valid(_TEXT, entry.text("department")),
        category_code=category if category and CATEGORY_RE.fullmatch(category) else None,
        queues=[
            {"queue": queue, "joined_at": _at(waited_from), "left_at": _at(left), "result": result}
        ] if queue and joined is not None else [],
        seat_ids=seat_ids,
        times={"arrived_at": _at(arrived), "queue_joined_at": _at(joined), "answered_at": _at(answered),
               "ended_at": _at(ended)},
        durations={"wait_s": max(0.0, left - waited_from) if joined is not None else 0.0, "ring_s": 0.0,
                   "talk_s": max(0.0, talk_s), "hold_s": 0.0, "wrap_up_s": None},
        handovers=[],
        legs=legs,
        recordings=[recording] if recording else [],
        survey=_survey(entry),
        callback=pending_callback(caller, queue, _at(callback_at), _at(waited_from))
        if callback_at is not None else None,
    )  # fmt: skip


# --- the service -----------------------------------------------------------------------------


@dataclass
class BackstopStats:
    sweeps: int = 0
    read: int = 0  # log entries read
    reported: int = 0  # records sent for calls nobody recorded
    corrected: int = 0  # records sent again for calls closed as "ended during PBX outage"
    last_sweep_at: float | None = None  # PBX epoch seconds


class Backstop:
    """One per PBX node: ``run()`` as a background task for the node's lifetime."""

    def __init__(
        self,
        resync: Resync,
        builder: RecordBuilder,
        outbox: Outbox,
        redis: aioredis.Redis,
        *,
        retry_s: float = 5.0,
        flush_every_s: float = 0.5,
    ) -> None:
        self._resync = resync
        self._client = resync.client
        self._tracker = resync.feed.tracker
        self._outbox = outbox
        self._redis = redis
        self.pbx_node = builder.pbx_node
        self._retry_s = retry_s
        self._flush_every_s = flush_every_s
        self._keys = outbox.keys
        self._swept_key = self._keys.swept_until(self.pbx_node)
        # By Linkedid, this process: each call's marker as text. A str is not tracked by the
        # garbage collector; tens of thousands of ``Recorded`` would lengthen every full collection.
        self._recorded: OrderedDict[str, str] = OrderedDict()
        self._pending: OrderedDict[str, tuple[str, Recorded]] = OrderedDict()  # record id -> (key, marker)
        self._flagged: set[str] = set()  # calls the tracker held live long after their logged end
        self._requested = asyncio.Event()
        self._retry_at: float | None = None
        self.stats = BackstopStats()
        resync.feed.add_output_listener(self._on_output)
        resync.add_sync_listener(self.request_sweep)
        builder.add_final_listener(self._on_final)

    def request_sweep(self) -> None:
        self._requested.set()

    # -- what this process records --------------------------------------------------------------
    def _remember(self, linkedid: str, recorded: Recorded) -> None:
        self._recorded[linkedid] = recorded.marker()
        self._recorded.move_to_end(linkedid)
        if len(self._recorded) > REMEMBER:
            self._recorded.popitem(last=False)

    def _on_output(self, output: Output) -> None:
        call = output.call if isinstance(output, CallEnded) else None
        if call is None or call.ended_at is None:
            return
        outage = call.disposition is not None and call.disposition.kind is DispositionKind.PBX_OUTAGE
        self._remember(call.call_id, Recorded(revision_for(call.ended_at, Stage.FINAL), outage))

    def _on_final(self, record: CallRecord) -> None:
        outage = record.disposition.kind is DispositionKind.PBX_OUTAGE
        self._mark_later(record, Recorded(record.revision, outage))

    def _mark_later(self, record: CallRecord, recorded: Recorded) -> None:
        self._pending[record.record_id] = (record.idempotency_key, recorded)
        if len(self._pending) > PENDING_MAX:
            self._pending.popitem(last=False)

    async def flush_markers(self) -> int:
        """Marker for every final record the outbox now holds; the rest wait (Redis down, spooled)."""
        pending = list(itertools.islice(self._pending.items(), CHUNK * 5))
        if not pending:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, (key, _) in pending:
                pipe.exists(self._outbox.keys.seen(key))
            held = await pipe.execute()
        done = [
            (record_id, recorded)
            for (record_id, (_, recorded)), there in zip(pending, held, strict=True)
            if there
        ]
        await self._set_markers(done)
        for record_id, _ in done:
            self._pending.pop(record_id, None)
        return len(done)

    async def _set_markers(self, markers: Sequence[tuple[str, Recorded]]) -> None:
        if not markers:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for record_id, recorded in markers:
                pipe.set(self._keys.final(record_id), recorded.marker(), ex=MARKER_TTL_S)
            await pipe.execute()

    # -- the sweep --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Flush markers continually; sweep when asked (after each resync) or to retry a failed sweep."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_every_s):
                    await self._requested.wait()
            with contextlib.suppress(*REDIS_FAILURES):
                await self.flush_markers()
            due = self._retry_at is not None and time.monotonic() >= self._retry_at
            if not (self._requested.is_set() or due):
                continue
            self._requested.clear()
            self._retry_at = None
            try:
                await self.sweep()
            except SWEEP_FAILURES as exc:
                log.warning(
                    "backstop.sweep_failed", node=self.pbx_node, error=repr(exc), retry_in_s=self._retry_s
                )
                self._retry_at = time.monotonic() + self._retry_s

    async def sweep(self) -> int:
        """Read the log since the last sweep and report every call nobody recorded; returns how many."""
        now = await self._pbx_time()
        raw = await self._redis.get(self._swept_key)
        last = float(raw) if raw is not None else now - KEEP_S
        since = max(last - MARGIN_S, now - KEEP_S)
        entries: list[LoggedCall] = []
        for family, hour in hours(since, now):
            entries += await self._read(family, hour)
        live = self._tracker.calls  # after the reads: a live call's Hangup is then on its way
        missed = [linkedid for linkedid in ghosts(entries, live, now) if linkedid not in self._flagged]
        if missed:  # once per call: a resync closes them, and the next sweep corrects them
            log.warning(
                "backstop.tracker_missed_ends", node=self.pbx_node, calls=missed[:20], count=len(missed)
            )
            self._flagged.update(missed)
            self._resync.request()
        records = await self._to_report(entries, live)
        for start in range(0, len(records), CHUNK):
            await self._append([record for record, _ in records[start : start + CHUNK]])
        await self._redis.set(self._swept_key, repr(now))
        corrected = sum(1 for _, upgrade in records if upgrade)
        self.stats.sweeps += 1
        self.stats.read += len(entries)
        self.stats.reported += len(records) - corrected
        self.stats.corrected += corrected
        self.stats.last_sweep_at = now
        if records:
            log.warning("backstop.reported", node=self.pbx_node, calls=len(records) - corrected,
                        corrected=corrected, read=len(entries), since=since)  # fmt: skip
        return len(records)

    async def _pbx_time(self) -> float:
        """The PBX's clock names the log's hours (Asterisk answers Ping with its Timestamp)."""
        answer = await self._client.send(safety.ping())
        try:
            return float(answer.get("Timestamp") or "")
        except ValueError:
            return time.time()

    async def _read(self, family: str, hour: str) -> list[LoggedCall]:
        try:
            answer = await self._client.send(safety.db_get_tree(family, hour))
        except ActionFailedError as exc:
            if NOT_FOUND.lower() in str(exc).lower():
                return []
            raise
        entries = (parse_entry(e.get("Key") or "", e.get("Val") or "") for e in answer.events)
        return [entry for entry in entries if entry is not None]

    async def _to_report(
        self, entries: Sequence[LoggedCall], live: Container[str]
    ) -> list[tuple[CallRecord, bool]]:
        unknown = [e for e in entries if e.linkedid not in live and e.linkedid not in self._recorded]
        markers = await self._markers([e.linkedid for e in unknown])
        found = []
        for entry in entries:
            known = self._recorded.get(entry.linkedid)
            recorded = Recorded.from_marker(known) if known else markers.get(entry.linkedid)
            as_of = report_as_of(entry, live=entry.linkedid in live, recorded=recorded)
            if as_of is None:
                continue
            try:
                record = build_record(entry, self.pbx_node, as_of)
            except RecordBuildError as exc:  # a bug: build_record takes only what the contract accepts
                log.error("backstop.unbuildable", linkedid=entry.linkedid, error=str(exc))
                continue
            found.append((record, recorded is not None))
        return found

    async def _markers(self, linkedids: Sequence[str]) -> dict[str, Recorded]:
        found: dict[str, Recorded] = {}
        for start in range(0, len(linkedids), CHUNK * 5):
            chunk = linkedids[start : start + CHUNK * 5]
            keys = [self._keys.final(record_id_for(self.pbx_node, linkedid)) for linkedid in chunk]
            for linkedid, raw in zip(chunk, await self._redis.mget(keys), strict=True):
                recorded = (
                    Recorded.from_marker(raw.decode() if isinstance(raw, bytes) else raw) if raw else None
                )
                if recorded is not None:
                    found[linkedid] = recorded
        return found

    async def _append(self, records: Sequence[CallRecord]) -> None:
        via = await self._outbox.append_many(records)
        for record in records:
            self._remember(record.linkedid, Recorded(record.revision))
            self._pending.pop(record.record_id, None)  # an outage marker must not overwrite this one
        if via is Via.REDIS:
            await self._set_markers([(r.record_id, Recorded(r.revision)) for r in records])
        else:
            for record in records:
                self._mark_later(record, Recorded(record.revision))
