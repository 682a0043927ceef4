"""Helpers for the simulator's tests: a minimal AMI client over TCP and an in-memory event sink."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.ami.protocol import Message, MessageParser
from gateway.calls.model import Call
from gateway.calls.tracker import CallEnded, QueueRules, Tracker
from gateway.contract import CONTROLLER_USER_READ, TRACKED_EVENTS
from gateway.sim.clock import SimClock
from gateway.sim.events import CLASSES, Headers

Predicate = Callable[[Message], bool]


class AmiTestClient:
    """Reads everything the server sends; ``action`` waits for the response with its ActionID."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = MessageParser(expect_banner=True)
        self.messages: list[Message] = []
        self.eof = asyncio.Event()
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, port: int) -> AmiTestClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def _read(self) -> None:
        while data := await self.reader.read(65536):
            self.messages.extend(self.parser.feed(data))
            self._changed.set()
        self.eof.set()
        self._changed.set()

    @property
    def banner(self) -> str | None:
        return self.parser.banner

    def events(self, name: str | None = None) -> list[Message]:
        return [m for m in self.messages if m.event is not None and (name is None or m.event == name)]

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def action(self, name: str, *, clock: SimClock | None = None, **headers: str) -> Message:
        action_id = f"t-{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in headers.items())]
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        return await self.wait_for(lambda m: m.event is None and m.action_id == action_id, clock=clock)

    async def login(
        self, username: str = "gateway", secret: str = "gateway-secret", *, events: str = "on"
    ) -> Message:
        return await self.action("Login", Username=username, Secret=secret, Events=events)

    async def wait_for(self, predicate: Predicate, *, within: float = 5.0, clock: SimClock | None = None,
                       step: float = 0.25, limit: float = 600.0) -> Message:  # fmt: skip
        """The first message (old or new) matching; with a manual ``clock``, time advances until it comes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        advanced = 0.0
        while True:
            for message in self.messages:
                if predicate(message):
                    return message
            if self.eof.is_set():
                raise AssertionError("the server closed the connection before the awaited message")
            if clock is not None and advanced < limit:
                clock.advance(step)
                advanced += step
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                continue
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError("timed out waiting for an AMI message")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
        await self._task


@dataclass
class RecordingSink:
    """EventSink that keeps every event (every class) as (name, headers)."""

    events: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    raw: list[tuple[str, Headers]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # each event's class

    def wants(self, category: str) -> bool:
        return category in CLASSES

    def emit(self, category: str, name: str, headers: Headers) -> None:
        self.categories.append(category)
        self.raw.append((name, headers))
        self.events.append((name, dict(headers)))

    def named(self, name: str) -> list[dict[str, str]]:
        return [h for n, h in self.events if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    def tracked(self, rules: dict[str, QueueRules] | None = None) -> tuple[Tracker, list[Call]]:
        """What the gateway's tracker makes of these events, as its manager user receives them
        (read classes and eventfilter); one event per simulated millisecond (no times are kept)."""
        tracker = Tracker(queue_rules=rules)
        classes = set(CONTROLLER_USER_READ.split(","))
        ended: list[Call] = []
        epoch = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
        delivered = [(n, h) for (n, h), category in zip(self.raw, self.categories, strict=True)
                     if n in TRACKED_EVENTS and category in classes]  # fmt: skip
        for i, (name, headers) in enumerate(delivered):
            now = i / 1000
            outputs = tracker.apply(
                Message([("Event", name), *headers]), now, epoch + dt.timedelta(seconds=now)
            )
            ended += [o.call for o in outputs if isinstance(o, CallEnded)]
        return tracker, ended
