"""A small AMI client for the real tier: drives the phones, asks the PBX what it knows, and records
the raw bytes of a session (``tests/fixtures/ami-traces-real/``).

Deliberately independent of ``gateway/ami``: this is the test's own view of Asterisk, so a fault
in the gateway's client cannot hide itself here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from pathlib import Path

Message = dict[str, str]


def parse(block: bytes) -> Message:
    message: Message = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            # Command output repeats Output:; keep every line.
            message[key] = f"{message[key]}\n{value.strip()}" if key in message else value.strip()
    return message


class Ami:
    """One logged-in AMI session on 127.0.0.1; keeps every event and every byte both ways."""

    def __init__(self, port: int, username: str, secret: str, *, events: bool = True) -> None:
        self.port = port
        self.username = username
        self.secret = secret
        self.events_on = events
        self.events: list[Message] = []
        self.received = bytearray()
        self.sent = bytearray()
        self.notes: list[str] = []
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[asyncio.Future[list[Message]], list[Message]]] = {}
        self._reader_task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._changed = asyncio.Condition()
        self.started = time.monotonic()

    async def __aenter__(self) -> Ami:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        banner = await reader.readuntil(b"\r\n")
        self.received += banner
        self._reader_task = asyncio.create_task(self._read(reader))
        reply = await self.action(
            "Login", Username=self.username, Secret=self.secret, Events="on" if self.events_on else "off"
        )
        if reply[0].get("Response") != "Success":
            raise RuntimeError(f"AMI login as {self.username} refused: {reply[0]}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.action("Logoff"), 2)
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                block = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            self.received += block
            message = parse(block[:-4])
            pending = self._pending.get(message.get("ActionID", ""))
            if pending is None:
                async with self._changed:
                    self.events.append(message)
                    self._changed.notify_all()
                continue
            future, parts = pending
            parts.append(message)
            in_list = message.get("EventList") == "start" or (
                "Event" in message and message.get("EventList") != "Complete"
            )
            if not in_list and not future.done():
                future.set_result(parts)
                del self._pending[message["ActionID"]]

    async def action(self, name: str, **headers: str) -> list[Message]:
        """Send an action; its response (and, for lists, every item up to Complete)."""
        assert self._writer is not None
        action_id = f"{name.lower()}-{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        for key, value in headers.items():
            if key == "Variable":
                lines += [f"Variable: {v}" for v in value.split("\n")]
            else:
                lines.append(f"{key}: {value}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        future: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = (future, [])
        self.sent += data
        self._writer.write(data)
        await self._writer.drain()
        return await asyncio.wait_for(future, 15)

    def note(self, text: str) -> None:
        self.notes.append(f"{time.monotonic() - self.started:8.3f}  {text}")

    async def wait_event(
        self, check: Callable[[Message], bool], *, within: float = 30, what: str = "event", since: int = 0
    ) -> Message:
        """The first event (from index ``since``) that passes ``check``."""
        async with self._changed:
            deadline = asyncio.get_running_loop().time() + within
            while True:
                for event in self.events[since:]:
                    if check(event):
                        return event
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise AssertionError(f"{what}: no such AMI event within {within:g} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    def save(self, folder: Path, name: str) -> None:
        """``name.ami`` (bytes received), ``name.sent.ami`` (bytes sent)."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.ami").write_bytes(bytes(self.received))
        (folder / f"{name}.sent.ami").write_bytes(bytes(self.sent))
