"""The live path from the AMI client into the tracker, and the resync that keeps it honest.

``TrackerFeed`` is the AMI event listener: it stamps each event with its arrival time (monotonic
and UTC), applies it to the tracker and hands every output to a sink without awaiting (the app's
sink is e.g. ``asyncio.Queue.put_nowait``; records and the live hub read from there). Listeners
see each output first, synchronously (the records backstop learns which calls ended here).

``Resync`` marks the tracker stale as soon as the session is lost, and once a session is READY
(after every reconnect, and every ``interval_s``) takes a snapshot with Status and
QueueStatus, applies it, closes what vanished as "ended during PBX outage" and tells its sync
listeners (the records backstop then reads the PBX's log of ended calls). It asks Status
(rather than CoreShowChannels) for the channels, with the call variables, so a call that began
while the gateway was away still gets its legacy line.

Live events are not buffered during a snapshot. Asterisk writes a list answer in one piece, so on
the wire every event is either older than the snapshot (it arrived before the answer: applying it
at once is right) or newer (the tracker treats anything a live event touched as seen, and never
lets a snapshot row bring back a leg that has hung up since). The result is what "buffer, rebuild,
replay the buffer" gives, without replaying anything twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

import structlog

from gateway.ami import safety
from gateway.ami.client import AmiClient, ConnectionState
from gateway.ami.errors import AmiError
from gateway.ami.protocol import Message
from gateway.calls.tracker import Output, Tracker
from gateway.contract import CALL_VARIABLES

log = structlog.get_logger(__name__)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TrackerFeed:
    """Register with ``AmiClient.add_event_listener``; outputs go to ``sink`` as they happen."""

    def __init__(
        self,
        tracker: Tracker,
        sink: Callable[[Output], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.tracker = tracker
        self.sink = sink
        self.clock = clock
        self.wallclock = wallclock
        self._listeners: list[Callable[[Output], None]] = []

    def add_output_listener(self, listener: Callable[[Output], None]) -> None:
        """``listener(output)`` for every output, before the sink gets it (it must not block)."""
        self._listeners.append(listener)

    def emit(self, output: Output) -> None:
        for listener in self._listeners:
            listener(output)
        self.sink(output)

    def __call__(self, event: Message) -> None:
        for output in self.tracker.apply(event, self.clock(), self.wallclock()):
            self.emit(output)


class Resync:
    def __init__(
        self,
        client: AmiClient,
        feed: TrackerFeed,
        *,
        interval_s: float = 300.0,
        retry_s: float = 5.0,
    ) -> None:
        self.client = client
        self.feed = feed
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.completed = 0  # snapshots applied; the API may show when the last one was
        self.last_completed_at: dt.datetime | None = None
        self._wake = asyncio.Event()
        self._was_ready = False
        self._synced: list[Callable[[], None]] = []
        client.add_state_listener(self._on_state)

    def add_sync_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` after every snapshot applied (each new session, and periodically)."""
        self._synced.append(listener)

    def request(self) -> None:
        """Snapshot again now rather than at the next interval (someone found the tracker wrong)."""
        self._wake.set()

    def _on_state(self, state: ConnectionState) -> None:
        if state.ready and not self._was_ready:
            self._wake.set()
        elif not state.ready and self._was_ready:
            # Nothing is known while the link is down: the API says so until the next snapshot.
            self.feed.tracker.begin_resync()
        self._was_ready = state.ready

    async def run_once(self) -> None:
        """Snapshot now; on failure the tracker stays stale and the error propagates."""
        tracker = self.feed.tracker
        tracker.begin_resync()
        channels = await self.client.send(safety.status(variables=CALL_VARIABLES))
        queues = await self.client.send(safety.queue_status())
        now, wall = self.feed.clock(), self.feed.wallclock()
        outputs = tracker.apply_snapshot((*channels.events, *queues.events), now, wall)
        for output in [*outputs, *tracker.end_resync(now, wall)]:
            self.feed.emit(output)
        self.completed += 1
        self.last_completed_at = wall
        log.info("calls.resync", calls=len(tracker.calls), seats=len(tracker.seats), legs=tracker.live_legs)
        for listener in self._synced:
            listener()

    async def run(self) -> None:
        """Background task for the app's cleanup context: resync on every new session and periodically."""
        if self.client.state.ready:
            self._was_ready = True
            self._wake.set()
        while True:
            try:
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if not self.client.state.ready:
                continue
            try:
                await self.run_once()
            except AmiError as exc:
                log.warning("calls.resync_failed", code=exc.code, error=exc.message)
                await asyncio.sleep(self.retry_s)
                self._wake.set()
