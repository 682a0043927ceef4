"""AMI wire format, shared by the gateway's client and the embedded PBX simulator.

Owns framing only: bytes <-> ``Message`` (ordered headers), and the rule that no CR, LF or NUL
ever reaches the wire inside a header. It knows nothing of sockets, actions or login.

Decoding happens per complete line, from bytes: a UTF-8 character split across two TCP reads is
never lost (panoramisk 1.4 decodes each chunk on its own and drops such characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from gateway.errors import GatewayError

BANNER_PREFIX = "Asterisk Call Manager/"
MAX_MESSAGE_BYTES = 1 << 20  # a peer that never ends a message must not grow our memory forever

_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_FORBIDDEN = ("\r", "\n", "\x00")


class UnsafeHeaderError(GatewayError):
    """A header name or value would change the framing of an AMI message (injection)."""

    code = "ami.unsafe_header"


class FramingError(GatewayError):
    """The peer sent something that is not AMI (oversized message, missing banner)."""

    code = "ami.framing"


class Message:
    """One AMI message: an ordered list of headers, some of which repeat (Output, Variable)."""

    __slots__ = ("headers",)

    def __init__(self, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.headers: list[tuple[str, str]] = list(headers)

    @classmethod
    def of(cls, first: tuple[str, str], **fields: str | int) -> Message:
        """``Message.of(("Event", "Hangup"), Channel=...)``: first header, then keywords in order."""
        return cls([first, *((k.replace("_", "-"), str(v)) for k, v in fields.items())])

    def get(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def getall(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    def add(self, name: str, value: str | int) -> None:
        self.headers.append((name, str(value)))

    @property
    def event(self) -> str | None:
        """The event name. Checked before ``response``: OriginateResponse events carry Response."""
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return None if self.event is not None else self.get("Response")

    @property
    def action(self) -> str | None:
        return self.get("Action")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def as_dict(self) -> dict[str, str]:
        """First value of each header; repeated headers are reached through ``getall``."""
        out: dict[str, str] = {}
        for key, value in self.headers:
            out.setdefault(key, value)
        return out

    def encode(self) -> bytes:
        return encode(self.headers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other.headers == self.headers

    def __repr__(self) -> str:
        return f"Message({self.headers!r})"


def check_header(name: str, value: str) -> None:
    """Refuse (never strip) anything that could end a header or a message early."""
    if not _HEADER_NAME.match(name):
        raise UnsafeHeaderError(f"AMI header name {name!r} is not a plain token")
    for bad in _FORBIDDEN:
        if bad in value:
            raise UnsafeHeaderError(
                f"AMI header {name}: value contains {bad!r}; CR, LF and NUL are never sent to Asterisk"
            )


def encode(headers: Iterable[tuple[str, str]]) -> bytes:
    lines = []
    for name, value in headers:
        check_header(name, value)
        lines.append(f"{name}: {value}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


class MessageParser:
    """Incremental parser: ``feed(bytes)`` yields every message completed by those bytes.

    With ``expect_banner`` the first line is the greeting (``Asterisk Call Manager/11.0.0``),
    available as ``banner``. A message ends at an empty line; LF alone is accepted as well as CRLF.
    """

    def __init__(self, *, expect_banner: bool = False) -> None:
        self._buffer = bytearray()
        self._lines: list[str] = []  # decoded complete lines not yet consumed
        self._at = 0
        self._pending: list[tuple[str, str]] = []
        self._pending_bytes = 0
        self._expect_banner = expect_banner
        self.banner: str | None = None

    def feed(self, data: bytes) -> Iterator[Message]:
        self._buffer += data
        end = self._buffer.rfind(b"\n")
        if end >= 0:
            # Only complete lines are decoded, all at once: no UTF-8 character contains b"\n", so
            # none is ever cut here, and one decode per read is much cheaper than one per line.
            text = self._buffer[:end].decode("utf-8", errors="replace")
            del self._buffer[: end + 1]
            self._lines = [*self._lines[self._at :], *text.split("\n")]
            self._at = 0
        lines, pending, size = self._lines, self._pending, self._pending_bytes
        for at in range(self._at, len(lines)):
            line = lines[at]
            if line.endswith("\r"):
                line = line[:-1]
            if self._expect_banner:
                self._expect_banner = False
                self.banner = line
                continue
            if not line:
                if pending:
                    # State is saved before yielding: a consumer may stop here and feed again later.
                    self._pending, self._pending_bytes, self._at = [], 0, at + 1
                    yield Message(pending)
                    pending, size = self._pending, 0
                continue
            size += 1 + (len(line) if line.isascii() else len(line.encode("utf-8", errors="replace")))
            if size > MAX_MESSAGE_BYTES:
                raise FramingError("AMI message larger than 1 MiB")
            name, sep, value = line.partition(":")
            if not sep:  # not a header: keep the text rather than lose it
                pending.append(("", line))
                continue
            pending.append((name.strip(), value[1:] if value.startswith(" ") else value))
        self._lines, self._at, self._pending, self._pending_bytes = [], 0, pending, size
        if len(self._buffer) + size > MAX_MESSAGE_BYTES:
            raise FramingError("AMI message larger than 1 MiB without an end")
