"""How the simulated PBX publishes AMI events, and how they are written on the wire.

The PBX calls ``EventSink.emit(category, name, headers)``; the AMI server fans the event out to the
sessions whose read classes and filters accept it. ``wants(category)`` lets the PBX skip building
events nobody reads (the dialplan class alone is most of the volume).

Writing is done as Asterisk does it, not as a careful client would: values go out verbatim, so a
CR/LF that dialplan data carries into ``Newexten.AppData`` or a UserEvent body reaches the stream
(trace 10). Only VarSet values are C-escaped, as Asterisk escapes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

Headers = list[tuple[str, str]]

# Event privilege classes (manager.conf read/write names) and the ones "all" stands for.
CLASSES = (
    "system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf", "reporting",
    "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test", "security", "message",
)  # fmt: skip


class EventSink(Protocol):
    def wants(self, category: str) -> bool: ...

    def emit(self, category: str, name: str, headers: Headers) -> None: ...


def encode_raw(headers: Iterable[tuple[str, str]]) -> bytes:
    """Asterisk's framing: ``Name: value`` CRLF per header, a blank line at the end, no checks."""
    return ("".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n").encode("utf-8")


def escape_value(value: str) -> str:
    """The C escaping Asterisk applies to VarSet values (and only to them)."""
    if "\r" not in value and "\n" not in value and "\\" not in value:
        return value
    return value.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
