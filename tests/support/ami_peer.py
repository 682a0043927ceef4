"""A scriptable AMI peer for tests: a real asyncio TCP server on 127.0.0.1 speaking AMI bytes.

It greets, checks Login (plain or MD5), answers Ping and Logoff like Asterisk 22 (trace 08, 09,
09c), and otherwise answers what a test scripts with ``on(action, handler)``. It can also replay
the exact bytes of a recorded trace, split a write anywhere (even inside a UTF-8 character),
stall (keep the socket open and never answer: a hung or half-open Asterisk), drop every
connection, refuse logins, and stop listening and come back on the same port.

This is a test double for the AMI *client*; the PBX simulator in ``gateway/sim`` models Asterisk
itself and is what integration tests of the whole gateway use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

from gateway.ami.protocol import Message, MessageParser, encode

TRACES = Path(__file__).resolve().parent.parent / "fixtures" / "ami-traces"
BANNER = "Asterisk Call Manager/11.0.0"
FULLY_BOOTED = Message.of(("Event", "FullyBooted"), Privilege="system,all", Status="Fully Booted")

Handler = Callable[["PeerSession", Message], Awaitable[None] | None]


def message_blocks(raw: bytes) -> tuple[bytes, list[bytes]]:
    """Split a recorded stream into its banner line and each message's exact bytes."""
    banner, _, rest = raw.partition(b"\r\n")
    blocks = [block + b"\r\n\r\n" for block in rest.split(b"\r\n\r\n") if block]
    return banner, blocks


class PeerSession:
    """One client connection as the peer sees it."""

    def __init__(self, peer: AmiPeer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peer = peer
        self.reader = reader
        self.writer = writer
        self.logged_in = False
        self.challenge: str | None = None
        self.received: list[Message] = []

    # --- writing ---------------------------------------------------------------------------------

    def send(self, *messages: Message) -> None:
        if not self.writer.is_closing():
            self.writer.write(b"".join(m.encode() for m in messages))

    def respond(self, request: Message, response: str = "Success", **headers: str | int) -> None:
        message = Message([("Response", response), ("ActionID", request.action_id or "")])
        for key, value in headers.items():
            message.add(key.replace("_", "-"), value)
        self.send(message)

    async def write(self, data: bytes, *, split: Iterable[int] = (), pause: float = 0.02) -> None:
        """Write ``data`` in pieces cut at the ``split`` offsets, pausing so each is its own read."""
        start = 0
        for cut in [*sorted(split), len(data)]:
            if self.writer.is_closing():
                return
            self.writer.write(data[start:cut])
            await self.writer.drain()
            if cut < len(data) and pause:
                await asyncio.sleep(pause)
            start = cut

    async def replay(self, path: Path, *, skip: int = 1, responses: bool = False, chunk: int = 0) -> int:
        """Send a recorded trace's messages verbatim (its login answer skipped); returns messages sent.

        Responses carry the recording's ActionIDs, which mean nothing to this client: left out
        unless asked for. ``chunk`` cuts the stream into writes of that many bytes, wherever
        they fall (mid-line, mid-character), each flushed before the next.
        """
        _, blocks = message_blocks(await asyncio.to_thread(path.read_bytes))
        chosen = [b for b in blocks[skip:] if responses or not b.startswith(b"Response:")]
        data = b"".join(chosen)
        await self.write(data, split=range(chunk, len(data), chunk) if chunk else (), pause=0.0)
        return len(chosen)

    def abort(self) -> None:
        self.writer.transport.abort()

    # --- reading ---------------------------------------------------------------------------------

    async def serve(self) -> None:
        self.writer.write(f"{self.peer.banner}\r\n".encode())
        parser = MessageParser()
        with contextlib.suppress(ConnectionError):
            while data := await self.reader.read(65536):
                for request in parser.feed(data):
                    self.received.append(request)
                    self.peer.received.append(request)
                    if not self.peer.stalled:
                        await self._answer(request)

    async def _answer(self, request: Message) -> None:
        name = (request.action or "").lower()
        handler = self.peer.handlers.get(name)
        if name == "login":
            await self._login(request)
        elif name == "challenge" and not self.peer.offers_challenge:
            self.respond(request, "Error", Message="Invalid/unknown command: Challenge.")
        elif name == "challenge":
            self.challenge = secrets.token_hex(8)
            self.respond(request, Challenge=self.challenge)
        elif not self.logged_in:
            self.respond(request, "Error", Message="Permission denied")
        elif handler is not None:
            outcome = handler(self, request)
            if outcome is not None:
                self.peer.spawn(outcome)
        elif name == "ping":
            self.respond(request, Ping="Pong", Timestamp=f"{time.time():.6f}")
        elif name == "logoff":
            self.respond(request, "Goodbye", Message="Thanks for all the fish.")
            self.writer.close()
        else:
            self.respond(
                request,
                "Error",
                Message=f"Invalid/unknown command: {request.action}. Use Action: ListCommands to show available commands.",
            )

    async def _login(self, request: Message) -> None:
        peer = self.peer
        if (request.get("AuthType") or "").lower() == "md5" and self.challenge is not None:
            expected = hashlib.md5((self.challenge + peer.secret).encode()).hexdigest()
            good = request.get("Key") == expected
        else:
            good = request.get("Secret") == peer.secret
        if good and request.get("Username") == peer.username and not peer.refuse_logins:
            self.logged_in = True
            self.respond(request, Message="Authentication accepted")
            self.send(*peer.after_login)
            if peer.on_login is not None:
                peer.spawn(peer.on_login(self))
            return
        await asyncio.sleep(peer.refuse_delay)  # Asterisk waits ~1 s before saying no
        self.respond(request, "Error", Message="Authentication failed")
        self.writer.close()


class AmiPeer:
    def __init__(
        self,
        *,
        username: str = "gateway",
        secret: str = "gateway-secret",
        banner: str = BANNER,
        after_login: Sequence[Message] = (FULLY_BOOTED,),
        refuse_delay: float = 0.05,
        port: int = 0,
    ) -> None:
        self.username = username
        self.secret = secret
        self.banner = banner
        self.after_login = after_login
        self.refuse_delay = refuse_delay
        self.port = port
        self.handlers: dict[str, Handler] = {}
        self.on_login: Callable[[PeerSession], Awaitable[None]] | None = None
        self.stalled = False
        self.refuse_logins = False
        self.offers_challenge = True  # False: an AMI that answers Challenge with an error
        self.sessions: list[PeerSession] = []
        self.received: list[Message] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._serving: set[asyncio.Task[None]] = set()

    def on(self, action: str, handler: Handler) -> None:
        self.handlers[action.lower()] = handler

    def spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def actions(self, name: str) -> list[Message]:
        return [m for m in self.received if (m.action or "").lower() == name.lower()]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Poll ``predicate`` (state spread over client and peer has no single event to wait on)."""
        async with asyncio.timeout(within):
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    async def start(self) -> AmiPeer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        session = PeerSession(self, reader, writer)
        self.sessions.append(session)
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        try:
            await session.serve()
        finally:
            self._serving.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def drop_all(self) -> None:
        """Reset every open connection (what a crashed Asterisk looks like)."""
        for session in self.sessions:
            session.abort()
        await asyncio.sleep(0)

    async def stop(self) -> None:
        """Stop listening and close every connection; ``start()`` again reuses the same port."""
        if self._server is not None:
            self._server.close()
        for session in self.sessions:
            session.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._serving, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self.sessions.clear()

    async def __aenter__(self) -> AmiPeer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def raw(*headers: tuple[str, str]) -> bytes:
    """Encode a message as bytes (for split writes)."""
    return encode(headers)
