"""The AMI server of the simulated PBX: sessions, login, permissions, event fan-out, faults.

Speaks AMI as Asterisk 22 does on the traces: the ``Asterisk Call Manager/11.0.0`` banner, CRLF
framing (bare LF accepted), plain and MD5-challenge Login, ``Authentication failed`` about a
second after a wrong secret or an unknown user and then the socket closed, ``Permission denied``
before login and outside a user's write classes, read classes and ``eventfilter`` deciding which
events a session gets, ``Events: off`` / the Events action, security events (SuccessfulAuth,
InvalidPassword, InvalidAccountID, RequestNotAllowed, RequestBadFormat) to sessions that read
``security``.

Input is parsed the way Asterisk parses it, not the way a careful client writes it: a blank line
ends a message wherever it appears (a CRLF CRLF smuggled inside a header value runs a second
action), a single CRLF starts another header, the first of two equal headers wins (trace 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.ami.protocol import FramingError, Message, MessageParser
from gateway.sim.events import CLASSES, Headers, encode_raw

if TYPE_CHECKING:
    from gateway.sim.actions import ActionTable
    from gateway.sim.clock import SimClock

log = logging.getLogger(__name__)

AMI_VERSION = "11.0.0"
BANNER = f"Asterisk Call Manager/{AMI_VERSION}\r\n".encode()
MAX_OUTPUT_BYTES = 8 << 20  # a client this far behind is dropped, as Asterisk's writetimeout does


def parse_classes(text: str) -> frozenset[str]:
    """manager.conf ``read`` / ``write``: comma-separated classes, ``all``, or ``none``."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    if "all" in names:
        return frozenset(CLASSES)
    return frozenset(names & set(CLASSES))


@dataclass
class ManagerUser:
    username: str
    secret: str
    read: frozenset[str] = frozenset(CLASSES)
    write: frozenset[str] = frozenset(CLASSES)
    eventfilters: list[str | Criterion] = field(default_factory=list)


def parse_manager_conf(text: str) -> list[ManagerUser]:
    """Users of a manager.conf (``[general]`` is skipped; permit/deny are loopback-only here)."""
    users: list[ManagerUser] = []
    current: ManagerUser | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line or line.startswith("#"):  # #include (secrets live outside the rendered file)
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip()
            current = None if name == "general" else ManagerUser(name, "")
            if current is not None:
                users.append(current)
            continue
        if current is None:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip().lower(), value.strip().lstrip(">").strip()
        if key == "secret":
            current.secret = value
        elif key == "read":
            current.read = parse_classes(value)
        elif key == "write":
            current.write = parse_classes(value)
        elif key == "eventfilter":
            current.eventfilters.append(value)
        elif key.startswith("eventfilter(") and key.endswith(")"):
            current.eventfilters.append(
                parse_criterion(raw.split("=", 1)[0].strip()[len("eventfilter(") : -1], value)
            )
    return users


_CRITERION = re.compile(r"(\w+)\(([^()]*)\)")
_METHODS: dict[str, Callable[[str, str], bool]] = {
    "regex": lambda value, pattern: re.search(pattern, value) is not None,
    "exact": lambda value, pattern: value == pattern,
    "starts_with": lambda value, pattern: value.startswith(pattern),
    "ends_with": lambda value, pattern: value.endswith(pattern),
    "contains": lambda value, pattern: pattern in value,
    "none": lambda value, pattern: True,
}


@dataclass(frozen=True)
class Criterion:
    """One Asterisk 22 advanced filter: ``eventfilter(action(..),name(..),header(..),method(..))=value``."""

    include: bool
    name: str | None
    header: str | None
    method: str
    value: str

    def matches(self, name: str, headers: Headers, text: str) -> bool:
        if self.name is not None and name.lower() != self.name.lower():
            return False
        if self.header is None:
            return not self.value or _METHODS[self.method](text, self.value)
        values = [v for k, v in headers if k.lower() == self.header.lower()]
        return bool(values) and (not self.value or any(_METHODS[self.method](v, self.value) for v in values))


def parse_criterion(spec: str, value: str) -> Criterion:
    """``action(exclude),name(Newexten)`` (the part inside ``eventfilter(...)``) and its value."""
    params = {key.lower(): arg.strip() for key, arg in _CRITERION.findall(spec)}
    method = params.get("method", "regex" if value else "none").lower()
    if method not in _METHODS:
        raise ValueError(f"eventfilter: unknown method {method!r}")
    return Criterion(params.get("action", "include").lower() != "exclude", params.get("name"),
                     params.get("header"), method, value)  # fmt: skip


class EventFilter:
    """manager.conf / Filter-action filters: classic regexes (``!`` excludes) and advanced criteria.

    With any include filter an event must match one; it must match no exclude filter.
    """

    def __init__(self, filters: Iterable[str | Criterion] = ()) -> None:
        self.include: list[Criterion] = []
        self.exclude: list[Criterion] = []
        self.include_names: set[str] = set()  # plain name(X) includes, checked in O(1)
        for item in filters:
            self.add(item)

    def add(self, item: str | Criterion) -> None:
        if isinstance(item, str):
            exclude = item.startswith("!")
            item = Criterion(not exclude, None, None, "regex", item[1:] if exclude else item)
            re.compile(item.value)
        if item.include and item.header is None and not item.value and item.name is not None:
            self.include_names.add(item.name.lower())
        elif item.include:
            self.include.append(item)
        else:
            self.exclude.append(item)

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude or self.include_names)

    def accepts(self, name: str, headers: Headers, text: str) -> bool:
        included = name.lower() in self.include_names or any(
            c.matches(name, headers, text) for c in self.include
        )
        if (self.include_names or self.include) and not included:
            return False
        return not any(c.matches(name, headers, text) for c in self.exclude)


class Session(asyncio.Protocol):
    """One AMI connection."""

    def __init__(self, server: AmiServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = MessageParser()
        self.user: ManagerUser | None = None
        self.events_on = True
        self.event_mask: frozenset[str] = frozenset(CLASSES)
        self.filters = EventFilter()
        self.challenge: str | None = None
        self.remote = ("127.0.0.1", 0)
        self.session_id = ""
        self.connected_wall = 0.0
        self.closing = False
        self.failing_login = False
        self.actions_handled = 0
        self.stalled: list[bytes] | None = None  # output held back while the PBX stalls
        self._held_input: list[bytes] = []

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("127.0.0.1", 0)
        self.remote = (str(peer[0]), int(peer[1]))
        self.session_id = f"0x{id(self):012x}"
        self.connected_wall = self.server.clock.wall()
        self.server.sessions.add(self)
        self.server.connected.add(self)
        self.server.all_closed.clear()
        transport.write(BANNER)
        if self.server.stall_until is not None:
            self.stalled = []

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.sessions.discard(self)
        self.server.connected.discard(self)
        if not self.server.connected:
            self.server.all_closed.set()
        self.server.refresh_interest()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.stalled is not None:
            self._held_input.append(data)
            return
        self.server.clock.catch_up()  # events due before these actions are written before their answers
        try:
            messages = list(self.parser.feed(data))
        except FramingError:
            self.close()
            return
        for message in messages:
            if self.closing or self.failing_login:
                return
            self.actions_handled += 1
            self.server.handle(self, message)

    # -- output ------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.closing or self.transport is None:
            return
        if self.stalled is not None:
            self.stalled.append(data)
            return
        if self.transport.get_write_buffer_size() > MAX_OUTPUT_BYTES:
            log.warning("sim: AMI client %s too slow, dropping it", self.remote)
            self.abort()
            return
        self.transport.write(data)

    def send(self, headers: Headers) -> None:
        self.write(encode_raw(headers))

    def respond(self, message: Message, response: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        out: Headers = [("Response", response)]
        action_id = message.action_id
        if action_id is not None:
            out.append(("ActionID", action_id))
        out.extend(headers)
        self.send(out)

    def close(self) -> None:
        """Close after what was written (Logoff, failed login, shutdown)."""
        if self.closing:
            return
        self.closing = True
        self.server.sessions.discard(self)
        self.server.refresh_interest()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        self.server.sessions.discard(self)
        self.server.refresh_interest()
        if self.transport is not None:
            self.transport.abort()

    def unstall(self) -> None:
        held, self.stalled = self.stalled or [], None
        for data in held:
            self.write(data)
        pending, self._held_input = self._held_input, []
        for data in pending:
            self.data_received(data)

    # -- event routing ------------------------------------------------------------------------------
    def reads(self, category: str) -> bool:
        return (
            self.user is not None
            and self.events_on
            and category in self.user.read
            and category in self.event_mask
        )

    @property
    def local_address(self) -> str:
        return f"IPV4/TCP/{self.server.host}/{self.server.port}"

    @property
    def remote_address(self) -> str:
        return f"IPV4/TCP/{self.remote[0]}/{self.remote[1]}"


class AmiServer:
    """Listens on TCP and implements ``EventSink`` for the PBX."""

    def __init__(self, clock: SimClock, users: Iterable[ManagerUser], actions: ActionTable, *, host: str = "127.0.0.1",
                 port: int = 0, auth_fail_delay: float = 1.0) -> None:  # fmt: skip
        self.clock = clock
        self.users = {user.username: user for user in users}
        self.actions = actions
        self.host = host
        self.port = port
        self.auth_fail_delay = auth_fail_delay
        self.sessions: set[Session] = set()  # sessions that still take part (not closing)
        self.connected: set[Session] = set()  # sockets not yet closed
        self.all_closed = asyncio.Event()  # set while no socket is open
        self.interest: frozenset[str] = frozenset()
        self.refuse_logins = False
        self.stall_until: float | None = None
        self.booted = True
        self.uptime_headers: Callable[[], Headers] = lambda: [("Uptime", "0"), ("LastReload", "0")]
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Session(self), self.host, self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        # Let the closing sockets go: a restart or a stop leaves nothing half-open behind.
        if self.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_closed.wait(), 1.0)

    # -- EventSink ------------------------------------------------------------------------------------
    def wants(self, category: str) -> bool:
        return category in self.interest

    def refresh_interest(self) -> None:
        wanted: set[str] = set()
        for session in self.sessions:
            if session.user is not None and session.events_on:
                wanted |= session.user.read & session.event_mask
        self.interest = frozenset(wanted)

    def emit(self, category: str, name: str, headers: Headers) -> None:
        if category not in self.interest:
            return
        data: bytes | None = None
        text: str | None = None
        for session in list(self.sessions):
            if not session.reads(category):
                continue
            if data is None:
                data = encode_raw([("Event", name), ("Privilege", f"{category},all"), *headers])
            if session.filters:
                if text is None:
                    text = data.decode("utf-8", "replace")
                if not session.filters.accepts(name, headers, text):
                    continue
            session.write(data)

    def security_event(self, session: Session, name: str, severity: str, version: int, account: str,
                       extra: Iterable[tuple[str, str]] = ()) -> None:  # fmt: skip
        """Security events carry the session that caused them, seen by whoever reads ``security``."""
        headers: Headers = [
            ("EventTV", _event_tv(self.clock.wall())), ("Severity", severity), ("Service", "AMI"),
            ("EventVersion", str(version)),
        ]  # fmt: skip
        if name != "RequestBadFormat":
            headers.append(("AccountID", account))
        headers += [("SessionID", session.session_id), ("LocalAddress", session.local_address),
                    ("RemoteAddress", session.remote_address)]  # fmt: skip
        headers += list(extra)
        session_tv = _event_tv(session.connected_wall if session.user else 0.0)
        headers.append(("SessionTV", session_tv))
        if name == "RequestBadFormat":
            headers.append(("AccountID", account))
        self.emit("security", name, headers)

    # -- actions --------------------------------------------------------------------------------------
    def handle(self, session: Session, message: Message) -> None:
        action = message.action
        if action is None:
            session.respond(message, "Error", [("Message", "Missing action in request")])
            self.security_event(session, "RequestBadFormat", "Error", 1, _account(session),
                                [("RequestType", "Action: NONE")])  # fmt: skip
            return
        name = action.strip().lower()
        if session.user is None and name not in ("login", "challenge", "logoff"):
            session.respond(message, "Error", [("Message", "Permission denied")])
            self.security_event(session, "RequestNotAllowed", "Error", 1, "",
                                [("RequestType", f"Action: {action}")])  # fmt: skip
            return
        spec = self.actions.find(name, booted=self.booted)
        if spec is None:
            session.respond(message, "Error", [("Message", f"Invalid/unknown command: {action}. "
                                                           "Use Action: ListCommands to show available commands.")])  # fmt: skip
            self.security_event(session, "RequestBadFormat", "Error", 1, _account(session),
                                [("RequestType", f"Action: {action}")])  # fmt: skip
            return
        if spec.privilege and session.user is not None and not (set(spec.privilege) & session.user.write):
            session.respond(message, "Error", [("Message", "Permission denied")])
            self.security_event(session, "RequestNotAllowed", "Error", 1, _account(session),
                                [("RequestType", f"Action: {action}")])  # fmt: skip
            return
        spec.handler(session, message)

    # -- login ------------------------------------------------------------------------------------------
    def login(self, session: Session, message: Message) -> None:
        username = message.get("Username", "") or ""
        user = self.users.get(username)
        if user is None or self.refuse_logins:
            if user is None:
                self.security_event(session, "InvalidAccountID", "Error", 1, username)
            self._fail_login(session, message)
            return
        if (message.get("AuthType") or "").lower() == "md5":
            expected = hashlib.md5(((session.challenge or "") + user.secret).encode()).hexdigest()
            good = session.challenge is not None and (message.get("Key") or "").lower() == expected
        else:
            good = (message.get("Secret") or "") == user.secret
        if not good:
            self.security_event(session, "InvalidPassword", "Error", 2, username)
            self._fail_login(session, message)
            return
        session.user = user
        session.filters = EventFilter(user.eventfilters)
        events = (message.get("Events") or "on").strip().lower()
        if events in ("off", "no", "false", "0"):
            session.events_on = False
        elif events not in ("on", "yes", "true", "1", ""):
            session.event_mask = parse_classes(events)
        self.refresh_interest()
        session.respond(message, "Success", [("Message", "Authentication accepted")])
        if self.booted and session.reads("system"):
            session.send([("Event", "FullyBooted"), ("Privilege", "system,all"), *self.uptime_headers(),
                          ("Status", "Fully Booted")])  # fmt: skip
        self.security_event(
            session, "SuccessfulAuth", "Informational", 1, user.username, [("UsingPassword", "0")]
        )

    def _fail_login(self, session: Session, message: Message) -> None:
        session.failing_login = True

        def answer() -> None:
            session.respond(message, "Error", [("Message", "Authentication failed")])
            session.close()

        self.clock.call_later(self.auth_fail_delay, answer)

    def broadcast(self, category: str, headers: Headers) -> None:
        """An event written straight to every session reading ``category`` (FullyBooted, Shutdown)."""
        for session in list(self.sessions):
            if session.reads(category):
                session.send(headers)

    def drop_all(self) -> None:
        for session in list(self.sessions):
            session.abort()

    def close_all(self) -> None:
        for session in list(self.sessions):
            session.close()

    def stall(self, seconds: float) -> None:
        self.stall_until = self.clock.now() + seconds
        for session in self.sessions:
            if session.stalled is None:
                session.stalled = []
        self.clock.call_later(seconds, self._unstall)

    def _unstall(self) -> None:
        if self.stall_until is not None and self.clock.now() + 1e-9 >= self.stall_until:
            self.stall_until = None
            for session in list(self.sessions):
                session.unstall()


def _account(session: Session) -> str:
    return session.user.username if session.user else ""


def _event_tv(wall: float) -> str:
    seconds = int(wall)
    millis = int((wall - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}+0000"
