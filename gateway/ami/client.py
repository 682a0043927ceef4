"""The gateway's asyncio AMI client: one resilient, observable session with Asterisk.

Owns the TCP session (banner, login, readiness), sending checked actions with a deadline and
collecting their answers, the Ping watchdog, reconnecting, and handing events to synchronous
listeners. It does not interpret events (``gateway.calls.tracker``), decide what to send
(``safety`` builds every action) or resynchronise state after a reconnect (``gateway.calls.resync``).

Why not panoramisk: panoramisk 1.4 (its last release, 2021) has gaps that sit in its protocol
layer, so closing them meant replacing that layer; this client replaces it cleanly on top of
``protocol`` (panoramisk stays a dependency only as the baseline of ``bench/ingest.py``):

- it decodes every TCP chunk on its own with errors ignored, so a character split across two
  reads is dropped ("张三李四" arrives as "三李四"): ``MessageParser`` decodes complete lines;
- actions have no timeout: every action here has a deadline (``ActionTimeoutError``) and its
  pending entry is removed whatever happens; a late answer to it is dropped;
- Ping never checks the reply: the watchdog sends Ping every ``ping_interval`` and drops the
  connection when no answer comes within ``ping_timeout`` (hung or half-open peer);
- reconnect waits a fixed 2 s and retries a refused login forever in silence: ``Backoff``
  (exponential, jitter) and a refused login becomes ``LoginFailedError`` in ``state`` and in
  ``wait_ready`` so /readyz fails with a reason;
- actions in flight at a disconnect hang (or are silently re-sent after reconnect): they fail at
  once with ``ConnectionLostError``; nothing is ever re-sent, a late Redirect is worse than none;
- response shapes vary (lists with or without the first Response, Command output as a list or a
  string): every answer is one ``ActionResult``;
- a response "... successfully queued" to an action without ``Async`` breaks its parser: any
  response without ``EventList: start`` completes its action here.

Listeners are plain functions called in the read path: they must not await I/O (hand work to a
queue). An exception in a listener is logged and never breaks the session. Messages are handled
in the order read, so every event Asterisk wrote before an action's answer has reached the
listeners when that action completes: an answered Ping is a barrier (the transfer deadlines).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import structlog

from gateway.ami import safety
from gateway.ami.backoff import Backoff
from gateway.ami.errors import (
    ActionFailedError,
    ActionNotAllowedError,
    ActionTimeoutError,
    AmiError,
    ConnectionLostError,
    LoginFailedError,
    NotConnectedError,
)
from gateway.ami.protocol import BANNER_PREFIX, FramingError, Message, MessageParser, encode
from gateway.ami.result import ActionResult, PendingAction
from gateway.errors import GatewayError

log = structlog.get_logger(__name__)

EventListener = Callable[[Message], None]
StateListener = Callable[["ConnectionState"], None]

# A queue nobody configures: QueueSummary on it answers Success once app_queue is loaded.
_BOOT_PROBE_QUEUE = "gateway-boot-probe"
_EXPIRED_IDS_KEPT = 256


@dataclass(frozen=True, slots=True)
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "gateway"
    secret: str = field(default="", repr=False)
    # The secret never crosses the wire: Challenge, then Login with MD5(challenge + secret). Only
    # if this is set does a server that offers no challenge get the secret in clear.
    plain_login_fallback: bool = False
    action_timeout: float = 5.0
    connect_timeout: float = 5.0
    login_timeout: float = 5.0  # Asterisk answers a refused login only after about 1 s
    ping_interval: float = 5.0
    ping_timeout: float = 3.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.25
    boot_probe_interval: float = 0.2
    # Write classes of the manager.conf user; actions needing none of them are refused locally.
    write_classes: frozenset[str] | None = None


class Phase(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    LOGGING_IN = "logging_in"
    BOOTING = "booting"  # logged in, waiting until Asterisk has loaded its modules (trace 11d)
    READY = "ready"
    BACKOFF = "backoff"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectionState:
    phase: Phase = Phase.IDLE
    since: float = 0.0  # monotonic time of the last phase change
    session: int = 0  # number of sessions that reached READY; a new value means resync
    reconnects: int = 0
    banner: str | None = None
    last_error_code: str | None = None
    last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self.phase in (Phase.LOGGING_IN, Phase.BOOTING, Phase.READY)

    @property
    def logged_in(self) -> bool:
        return self.phase in (Phase.BOOTING, Phase.READY)

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    @property
    def login_refused(self) -> bool:
        return self.last_error_code == LoginFailedError.code and not self.ready


class _AmiProtocol(asyncio.Protocol):
    """One TCP connection: bytes in, messages out to the client; knows when it ended and why."""

    def __init__(self, client: AmiClient) -> None:
        loop = asyncio.get_running_loop()
        self._client = client
        self._parser = MessageParser(expect_banner=True)
        self.banner: asyncio.Future[str] = loop.create_future()
        self.closed: asyncio.Future[str] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._abort_reason: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            for message in self._parser.feed(data):
                self._client._on_message(self, message)
        except FramingError as exc:
            self.abort(f"AMI framing error: {exc.message}")
        if not self.banner.done() and self._parser.banner is not None:
            self.banner.set_result(self._parser.banner)

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionLostError("AMI connection is closing")
        self.transport.write(data)

    def abort(self, reason: str) -> None:
        if self._abort_reason is None:
            self._abort_reason = reason
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self._abort_reason or (
            f"connection lost: {exc}" if exc else "Asterisk closed the connection"
        )
        if not self.banner.done():
            self.banner.set_exception(ConnectionLostError(f"no AMI banner: {reason}"))
            self.banner.exception()  # retrieved here: nobody may be waiting any more
        if not self.closed.done():
            self.closed.set_result(reason)
        self._client._on_connection_lost(self, reason)


class AmiClient:
    """``start()`` keeps a session up until ``close()``; ``send()`` needs a READY session."""

    def __init__(
        self,
        settings: AmiSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._backoff = Backoff(
            settings.backoff_initial, settings.backoff_max, jitter=settings.backoff_jitter, rng=rng
        )
        self._state = ConnectionState(since=clock())
        self._listeners: list[EventListener] = []
        self._state_listeners: list[StateListener] = []
        self._pending: dict[str, PendingAction] = {}
        self._expired: deque[str] = deque(maxlen=_EXPIRED_IDS_KEPT)
        self._ids = itertools.count(1)
        self._proto: _AmiProtocol | None = None
        self._fully_booted = False
        self._task: asyncio.Task[None] | None = None
        self._ready_waiters: list[asyncio.Future[None]] = []
        self._closing = False
        self.events_received = 0

    # --- public API ----------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def pending_actions(self) -> list[str]:
        """``"<Action> <ActionID>"`` of every action still waiting for its answer."""
        return [f"{p.action} {p.action_id}" for p in self._pending.values()]

    def add_event_listener(self, listener: EventListener) -> None:
        if inspect.iscoroutinefunction(listener):
            raise TypeError("AMI event listeners must not await I/O: hand the event to a queue instead")
        self._listeners.append(listener)

    def add_state_listener(self, listener: StateListener) -> None:
        self._state_listeners.append(listener)

    def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ami-session")

    async def wait_ready(self, within: float | None = None) -> None:
        """Return once a session is READY (within ``within`` seconds); raise at once if the login is refused."""
        if self._state.ready:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ready_waiters.append(waiter)
        try:
            async with asyncio.timeout(within):
                await waiter
        except TimeoutError:
            raise NotConnectedError(
                f"AMI at {self._where} not ready after {within:g}s ({self._why})"
            ) from None
        finally:
            self._ready_waiters.remove(waiter)

    async def send(
        self, action: safety.Action, *, deadline: float | None = None, check: bool = True
    ) -> ActionResult:
        """Send ``action`` and return its whole answer within ``deadline`` seconds (default: settings).

        ``check`` turns ``Response: Error`` into ``ActionFailedError``.
        """
        allowed = self.settings.write_classes
        if allowed is not None and action.privileges and not action.privileges & allowed:
            needed = " or ".join(sorted(action.privileges))
            raise ActionNotAllowedError(
                f"{action.name} needs write class {needed}, which this AMI user ({self.settings.username}) "
                "is not meant to have; send it over the admin session"
            )
        if not self._state.ready:
            raise NotConnectedError(f"{action.name}: no AMI session to {self._where} ({self._why})")
        result = await self._request(action, self.settings.action_timeout if deadline is None else deadline)
        if check and not result.ok:
            raise ActionFailedError(
                f"{action.name} (ActionID {result.action_id}) failed: Asterisk says {result.message!r}",
                result,
            )
        return result

    async def close(self) -> None:
        self._closing = True
        if self._state.ready:
            with contextlib.suppress(AmiError):
                await self._request(safety.logoff(), 1.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._set_phase(Phase.CLOSED)

    async def __aenter__(self) -> AmiClient:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- the session loop ----------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def _why(self) -> str:
        state = self._state
        detail = f"; last error [{state.last_error_code}] {state.last_error}" if state.last_error else ""
        return f"{state.phase.value}{detail}"

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._session()
            except (GatewayError, OSError) as exc:
                self._record_error(exc)
            if self._closing:
                break
            delay = self._backoff.next()
            self._set_phase(Phase.BACKOFF, reconnects=self._state.reconnects + 1)
            log.warning("ami.reconnect", after_s=round(delay, 3), reason=self._state.last_error)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        settings = self.settings
        self._set_phase(Phase.CONNECTING)
        self._fully_booted = False
        proto = _AmiProtocol(self)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(settings.connect_timeout):
                await loop.create_connection(lambda: proto, settings.host, settings.port)
                banner = await proto.banner
        except TimeoutError:
            proto.abort("no banner")
            raise ConnectionLostError(
                f"AMI at {self._where}: no connection or banner within {settings.connect_timeout:g}s"
            ) from None
        try:
            if not banner.startswith(BANNER_PREFIX):
                raise FramingError(f"{self._where} is not Asterisk AMI: it greeted with {banner[:60]!r}")
            self._proto = proto
            self._set_phase(Phase.LOGGING_IN, banner=banner)
            await self._login()
            self._set_phase(Phase.BOOTING)
            await self._wait_booted()
            self._backoff.reset()
            self._set_phase(
                Phase.READY, session=self._state.session + 1, last_error_code=None, last_error=None
            )
            log.info("ami.ready", where=self._where, session=self._state.session)
            async with asyncio.TaskGroup() as group:
                watchdog = group.create_task(self._watchdog(proto))
                reason = await proto.closed
                watchdog.cancel()
            raise ConnectionLostError(f"AMI session to {self._where} ended: {reason}")
        finally:
            self._fail_pending("the session ended")
            proto.abort("session over")
            self._proto = None

    async def _login(self) -> None:
        settings = self.settings
        challenge = await self._request(safety.challenge(), settings.login_timeout)
        nonce = challenge.get("Challenge") if challenge.ok else None
        if nonce:
            key = hashlib.md5((nonce + settings.secret).encode()).hexdigest()
            login = safety.login_md5(settings.username, key)
        elif settings.plain_login_fallback:
            log.warning("ami_plain_login", where=self._where, reason=challenge.message or "no challenge")
            login = safety.login(settings.username, settings.secret)
        else:
            raise LoginFailedError(
                f"AMI at {self._where} offers no MD5 challenge ({challenge.message or 'no Challenge header'}); "
                "the secret is not sent in clear unless ami.plain_login is true in hotline_merge.yaml"
            )
        result = await self._request(login, settings.login_timeout)
        if not result.ok:
            raise LoginFailedError(
                f"AMI login as {settings.username!r} at {self._where} refused: {result.message or 'no reason'}; "
                "check the AMI user name and secret (and permit= in manager.conf)"
            )

    async def _wait_booted(self) -> None:
        # FullyBooted has Privilege: system, which a least-privilege user never sees: ask app_queue.
        while not self._fully_booted:
            probe = await self._request(
                safety.queue_summary(queue=_BOOT_PROBE_QUEUE), self.settings.action_timeout
            )
            if probe.ok:
                return
            await asyncio.sleep(self.settings.boot_probe_interval)

    async def _watchdog(self, proto: _AmiProtocol) -> None:
        settings = self.settings
        while True:
            await asyncio.sleep(settings.ping_interval)
            try:
                await self._request(safety.ping(), settings.ping_timeout)
            except ActionTimeoutError:
                proto.abort(
                    f"watchdog: no answer to Ping within {settings.ping_timeout:g}s (hung or half-open)"
                )
                return
            except AmiError:
                return

    async def _request(self, action: safety.Action, deadline: float) -> ActionResult:
        proto = self._proto
        if proto is None:
            raise NotConnectedError(f"{action.name}: not connected to {self._where}")
        action_id = f"gw-{next(self._ids)}"
        future: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = PendingAction(action.name, action_id, future)
        try:
            proto.write(encode((("Action", action.name), ("ActionID", action_id), *action.headers)))
            async with asyncio.timeout(deadline):
                return await future
        except TimeoutError:
            self._expired.append(action_id)
            raise ActionTimeoutError(
                f"{action.name} (ActionID {action_id}): no complete answer from Asterisk within {deadline:g}s"
            ) from None
        finally:
            self._pending.pop(action_id, None)

    # --- called from the protocol ----------------------------------------------------------------

    def _on_message(self, proto: _AmiProtocol, message: Message) -> None:
        action_id = message.action_id
        if action_id is not None:
            pending = self._pending.get(action_id)
            if pending is not None and pending.feed(message):
                return
            if action_id in self._expired:
                return  # the rest of an answer that already timed out
        name = message.event
        if name is None:
            return  # a response nobody waits for (its action timed out or was never ours)
        self.events_received += 1
        if name == "FullyBooted":
            self._fully_booted = True
        for listener in self._listeners:
            try:
                listener(message)
            except Exception:
                log.exception(
                    "ami.listener_failed", listener=getattr(listener, "__qualname__", repr(listener))
                )
        if name == "Shutdown":
            # Asterisk closes within ~0.3 s anyway; failing now lets waiting actions fail promptly.
            proto.abort(f"Asterisk is shutting down (Restart: {message.get('Restart') or '?'})")

    def _on_connection_lost(self, proto: _AmiProtocol, reason: str) -> None:
        if proto is self._proto:
            # Leave READY now, not when the session loop next runs: nobody may send meanwhile.
            if self._state.connected:
                self._set_phase(Phase.BACKOFF, last_error_code=ConnectionLostError.code, last_error=reason)
            self._fail_pending(reason)

    def _fail_pending(self, reason: str) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(
                    ConnectionLostError(
                        f"{pending.action} (ActionID {pending.action_id}): AMI connection to {self._where} "
                        f"lost before the answer: {reason}"
                    )
                )
        self._pending.clear()

    # --- state ---------------------------------------------------------------------------------

    def _record_error(self, exc: Exception) -> None:
        code = exc.code if isinstance(exc, GatewayError) else "ami.connect_failed"
        message = exc.message if isinstance(exc, GatewayError) else f"cannot connect to {self._where}: {exc}"
        self._state = replace(self._state, last_error_code=code, last_error=message)
        log.warning("ami.session_failed", code=code, error=message)
        if isinstance(exc, LoginFailedError):
            for waiter in self._ready_waiters:
                if not waiter.done():
                    waiter.set_exception(LoginFailedError(message))

    def _set_phase(self, phase: Phase, **changes: Any) -> None:
        self._state = replace(self._state, phase=phase, since=self._clock(), **changes)
        if phase is Phase.READY:
            for waiter in self._ready_waiters:
                if not waiter.done():
                    waiter.set_result(None)
        for listener in self._state_listeners:
            try:
                listener(self._state)
            except Exception:
                log.exception("ami.state_listener_failed")
