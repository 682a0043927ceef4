"""The live hub: the latest dashboard snapshot, pushed to browsers over Server-Sent Events.

``publish`` is called by the gateway whenever the live state changes, possibly thousands of times a
second; it only stores the snapshot and raises a flag. One delivery task takes the latest snapshot
in at most ``max_per_second`` times a second, numbering each (the events' ``id``), and wakes every
subscriber. A subscriber gets the *deltas* from the number it has to the latest (``event: delta``:
what changed, ``gateway.web.snapshot.Wire``; the hub keeps the last ``DELTAS_KEPT``), or, new or
further behind, the whole snapshot (``event: snapshot``), encoded once per number for all of them.
Each subscriber holds no queue, only the number it has: a slow browser catches up with the same
bytes a fast one got, and a stalled one costs the socket's bounded write buffer and one whole
snapshot when it reads again.

Besides the snapshot every subscriber gets, the hub carries *topics*: a stream opened with
``topic="seat:1001"`` receives only what is published to that topic (``publish_to``), latest wins.
The seats' workbench streams each seat its own view this way, and nothing else.

The hub owns delivery and pacing, not what a snapshot contains (``gateway.web.snapshot``) nor who
may subscribe (the routes in ``gateway.web.dashboard`` and ``gateway.web.seat`` check identities
before calling ``stream``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.web.snapshot import Snapshot, Wire

Pace = Callable[[], Awaitable[object]]

RETRY_MS = 2000  # how soon a browser's EventSource reconnects after the stream ends
DELTAS_KEPT = 16  # 4 s of pushes: a stream further behind than that starts again from a whole snapshot


@dataclass(frozen=True)
class SubscriberStats:
    sent: int  # messages written to this client (snapshots, deltas, topic data and heartbeats)
    superseded: int  # pushes that found this client still busy with an earlier one
    held_bytes: int  # undelivered topic data plus the socket's write buffer: what it costs us now


class _Subscriber:
    def __init__(self, request: web.Request, topic: str | None) -> None:
        self.request = request
        self.topic = topic
        self.message: bytes | None = None  # a topic's undelivered data
        self.have = 0  # the number of the last snapshot (or delta) taken; 0: none yet
        self.wake = asyncio.Event()
        self.writing = False
        self.sent = 0
        self.superseded = 0

    def offer(self, message: bytes | None = None) -> None:
        """Wake the stream: with a topic's ``message``, or for the latest snapshot (None)."""
        if self.wake.is_set():
            self.superseded += 1
        self.message = message
        self.wake.set()

    def stats(self) -> SubscriberStats:
        transport = self.request.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return SubscriberStats(self.sent, self.superseded, len(self.message or b"") + buffered)


class LiveHub:
    """Coalesces published snapshots and streams the latest one to every subscriber.

    ``pace`` is awaited between two deliveries; by default it sleeps ``1 / max_per_second``.
    Tests pass a gate they open by hand, so coalescing is checked by counting, not by timing.
    """

    def __init__(
        self, max_per_second: float = 4.0, *, heartbeat_s: float = 15.0, pace: Pace | None = None
    ) -> None:
        if max_per_second <= 0:
            raise ValueError("max_per_second must be positive")
        self.heartbeat_s = heartbeat_s
        self._pace = pace or (lambda: asyncio.sleep(1 / max_per_second))
        self._latest: Snapshot | None = None
        self._snapshot_due = False
        self._wire = Wire()
        self._number = 0  # of the snapshot last taken in by the delivery task
        self._deltas: deque[bytes] = deque(maxlen=DELTAS_KEPT)  # the last one: to ``_number``
        self._whole: bytes | None = None  # snapshot ``_number`` whole, encoded when a stream first needs it
        self._version = 0  # of the topics' data
        self._topics: dict[str, str] = {}  # topic -> its latest data (JSON text)
        self._topics_due: set[str] = set()
        self._topic_delivered: dict[str, bytes] = {}
        self._changed = asyncio.Event()
        self._subscribers: set[_Subscriber] = set()
        self._closed = False

    def publish(self, snapshot: Snapshot) -> None:
        self._latest = snapshot
        self._snapshot_due = True
        self._changed.set()

    def publish_to(self, topic: str, data: str) -> None:
        """``data`` (one line of JSON) for the streams of ``topic`` only; unchanged data is not sent."""
        if self._topics.get(topic) == data:
            return
        self._topics[topic] = data
        self._version += 1
        self._topics_due.add(topic)
        self._changed.set()

    def topics(self) -> set[str]:
        """The topics some stream listens to now."""
        return {sub.topic for sub in self._subscribers if sub.topic is not None}

    def subscribers(self) -> list[SubscriberStats]:
        return [sub.stats() for sub in self._subscribers]

    def whole(self) -> str | None:
        """The snapshot last delivered, whole (JSON), or None before the first."""
        return self._wire.whole() if self._number else None

    async def run(self) -> None:
        """Deliver until cancelled: wait for a change, push the latest snapshot, then pace."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            latest = self._latest if self._snapshot_due else None
            if latest is not None:
                self._snapshot_due = False
                self._number += 1
                delta = self._wire.advance(latest, base=self._number - 1)
                self._deltas.append(_event("delta", delta, self._number))
                self._whole = None
            due, self._topics_due = self._topics_due, set()
            for topic in due:  # the event's name is the topic's kind: "seat:1001" -> "seat"
                name = topic.partition(":")[0]
                self._topic_delivered[topic] = _event(name, self._topics[topic], self._version)
            for sub in self._subscribers:
                if sub.topic is None and latest is not None:
                    sub.offer()
                elif sub.topic in due:
                    sub.offer(self._topic_delivered[sub.topic])
            await self._pace()

    async def close(self) -> None:
        """End every stream, so a server shutdown does not wait for browsers to hang up."""
        self._closed = True
        for sub in self._subscribers:
            sub.wake.set()
            # A write stalled on a client that stopped reading would never return: cut it.
            if sub.writing and sub.request.transport is not None:
                sub.request.transport.abort()
        await asyncio.sleep(0)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: the delivery task lives as long as the application."""
        task = asyncio.create_task(self.run(), name="live-hub")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stream(self, request: web.Request, topic: str | None = None) -> web.StreamResponse:
        """Serve ``text/event-stream``: the latest snapshot (or ``topic``'s data) now, then each change."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx would otherwise hold events back
            }
        )
        await response.prepare(request)
        sub = _Subscriber(request, topic)
        if topic is None and self._number:
            sub.offer()
        elif topic is not None and topic in self._topic_delivered:
            sub.offer(self._topic_delivered[topic])
        self._subscribers.add(sub)
        try:
            await response.write(f"retry: {RETRY_MS}\n\n".encode())
            while not self._closed:
                message = await self._next_message(sub)
                if message is None:
                    continue
                sub.writing = True
                await response.write(message)
                sub.writing = False
                sub.sent += 1
        except ConnectionError:
            pass  # the browser went away (or close() cut a stalled write); nothing to tell it
        finally:
            self._subscribers.discard(sub)
        return response

    async def _next_message(self, sub: _Subscriber) -> bytes | None:
        if sub.topic is None and sub.have and sub.have != self._number:
            sub.wake.clear()  # behind: catch up at once, one message at a time
            return self._catch_up(sub)
        try:
            async with asyncio.timeout(self.heartbeat_s):
                await sub.wake.wait()
        except TimeoutError:
            # A named event, not an SSE comment: the page must see it to tell a quiet hotline
            # from a dead stream; proxies see traffic either way.
            return _event("ping", str(self._number), None)
        sub.wake.clear()
        if sub.topic is not None:
            message, sub.message = sub.message, None
            return message
        return self._catch_up(sub)

    def _catch_up(self, sub: _Subscriber) -> bytes | None:
        """The next step to the latest snapshot for ``sub``: the delta from the one it has, or the whole
        snapshot when it has none or the delta is no longer kept. One message at a time: a slow
        stream never holds more than one in hand."""
        behind = self._number - sub.have
        if not behind:
            return None
        if sub.have and behind <= len(self._deltas):
            sub.have += 1
            return self._deltas[-behind]
        if self._whole is None:
            self._whole = _event("snapshot", self._wire.whole(), self._number)
        sub.have = self._number
        return self._whole


LIVE_HUB = web.AppKey("live_hub", LiveHub)


def _event(name: str, data: str, event_id: int | None) -> bytes:
    # ``data`` is one line of JSON (json.dumps escapes newlines), so one data field carries it.
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {data}\n\n".encode()
