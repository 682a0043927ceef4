"""AMI wire format, shared by the gateway's client and the embedded PBX simulator.

Owns framing only: bytes <-> ``Message`` (ordered headers), and the rule that no CR, LF or NUL
ever reaches the wire inside a header. It knows nothing of sockets, actions or login.

Decoding happens per complete message, from bytes: a UTF-8 character split across two TCP reads
is never lost (panoramisk 1.4 decodes each chunk on its own and drops such characters).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator

from gateway.errors import GatewayError

BANNER_PREFIX = "Asterisk Call Manager/"
MAX_MESSAGE_BYTES = 1 << 20  # a peer that never ends a message must not grow our memory forever

_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_FORBIDDEN = ("\r", "\n", "\x00")
# One header line: the name stripped, the value after the colon and at most one space. A line
# without a colon is kept whole, with an empty name, rather than lost.
_HEADER = re.compile(r"^(?:[^\S\n]*((?:[^:\n]*[^\s:])?)[^\S\n]*:[ ]?)?(.*)$", re.MULTILINE)
# What Asterisk sends: a plain token, a colon and a space. Parsed the same as by _HEADER but a
# third faster; a message with any other line (it skips such lines) is parsed again with _HEADER.
_PLAIN_HEADER = re.compile(r"^([A-Za-z0-9_-]+): ?(.*)$", re.MULTILINE)


class UnsafeHeaderError(GatewayError):
    """A header name or value would change the framing of an AMI message (injection)."""

    code = "ami.unsafe_header"


class FramingError(GatewayError):
    """The peer sent something that is not AMI (oversized message, missing banner)."""

    code = "ami.framing"


class Message:
    """One AMI message: an ordered list of headers, some of which repeat (Output, Variable).

    A received message keeps its text and splits it into headers only when a header other than
    ``Event`` is asked for: most events are dropped unread by every listener. Lookups go through
    a dict of each header's first value, built at the first lookup: names are looked up as spelt
    (as Asterisk sends them) and only a miss compares names without case.
    """

    __slots__ = ("_first", "_headers", "_text")

    def __init__(self, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._headers: list[tuple[str, str]] | None = list(headers)
        self._first: dict[str, str] | None = None
        self._text: str | None = None

    @classmethod
    def of(cls, first: tuple[str, str], **fields: str | int) -> Message:
        """``Message.of(("Event", "Hangup"), Channel=...)``: first header, then keywords in order."""
        return cls([first, *((k.replace("_", "-"), str(v)) for k, v in fields.items())])

    @classmethod
    def _received(cls, text: str) -> Message:
        """A message as the parser found it: its lines, LF-separated, not yet split into headers."""
        message = cls.__new__(cls)
        message._headers = message._first = None
        message._text = text
        return message

    @property
    def headers(self) -> list[tuple[str, str]]:
        headers = self._headers
        if headers is None:
            headers = self._headers = _split_headers(self._text or "")
        return headers

    def _fields(self) -> dict[str, str]:
        first = self._first
        if first is None:
            first = self._first = dict(reversed(self.headers))
        return first

    def get(self, name: str, default: str | None = None) -> str | None:
        fields = self._first or self._fields()
        value = fields.get(name)
        if value is not None:
            return value
        lname = name.lower()
        if lname in map(str.lower, fields):  # spelt differently: the first header of any spelling
            return next(value for key, value in self.headers if key.lower() == lname)
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
        self._first = None

    @property
    def event(self) -> str | None:
        """The event name. Checked before ``response``: OriginateResponse events carry Response."""
        text = self._text
        if text is not None and text.startswith("Event: "):  # where Asterisk puts it: read in place
            end = text.find("\n")
            return text[7:] if end < 0 else text[7:end]
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
        """First value of each header (repeated headers are reached through ``getall``); read only,
        it is the message's own."""
        return self._fields()

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

    Each read is cut after its last empty line: everything before is decoded at once and split
    into messages, each message's headers in one regex pass; the bytes after wait for the next
    read (no UTF-8 character contains an LF byte, so none is ever cut).
    """

    def __init__(self, *, expect_banner: bool = False) -> None:
        self._buffer = b""  # the bytes of the message not yet ended
        self._ready: deque[str] = deque()  # messages found, not yet taken by a consumer
        self._expect_banner = expect_banner
        self.banner: str | None = None

    def feed(self, data: bytes) -> Iterator[Message]:
        failure = self._take(data)
        ready, received = self._ready, Message._received
        # One message at a time, each gone before the next exists (the cyclic GC never sees a
        # whole read's worth); a consumer may stop after any message, the rest waits.
        while ready:
            yield received(ready.popleft())
        if failure is not None:
            raise failure

    def _take(self, data: bytes) -> FramingError | None:
        buffer = self._buffer + data if self._buffer else data
        if self._expect_banner:
            line_end = buffer.find(b"\n")
            if line_end < 0:
                self._buffer = buffer
                return _unended(buffer)
            self._expect_banner = False
            self.banner = buffer[:line_end].decode("utf-8", errors="replace").removesuffix("\r")
            buffer = buffer[line_end + 1 :]
        lf, crlf = buffer.rfind(b"\n\n"), buffer.rfind(b"\n\r\n")
        end = max(lf + 2 if lf >= 0 else 0, crlf + 3 if crlf >= 0 else 0)  # after the last empty line
        if not end:
            self._buffer = buffer
            return _unended(buffer)
        self._buffer = buffer[end:]
        text = str(memoryview(buffer)[:end], "utf-8", "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        oversized = end > MAX_MESSAGE_BYTES
        append = self._ready.append
        for block in text.split("\n\n"):
            if block.startswith("\n"):  # more than one empty line
                block = block.lstrip("\n")
            if not block:
                continue
            if oversized and len(block.encode("utf-8", errors="replace")) > MAX_MESSAGE_BYTES:
                return FramingError("AMI message larger than 1 MiB")
            append(block)
        return _unended(self._buffer)


def _split_headers(text: str) -> list[tuple[str, str]]:
    headers = _PLAIN_HEADER.findall(text)
    if len(headers) != text.count("\n") + 1:  # some line is not plain
        headers = _HEADER.findall(text)
    return headers


def _unended(buffer: bytes) -> FramingError | None:
    if len(buffer) > MAX_MESSAGE_BYTES:
        return FramingError("AMI message larger than 1 MiB without an end")
    return None
