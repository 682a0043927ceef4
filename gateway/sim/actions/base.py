"""What every group of simulated AMI actions shares: the simulator it acts on and the answer shapes.

Answers follow Asterisk 22 (trace 08): lists are ``Response: Success`` with ``EventList: start``,
the items carrying the ActionID, then ``...Complete`` with ``EventList: Complete`` and ``ListItems``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from gateway.ami.protocol import Message
from gateway.sim.channel import Channel
from gateway.sim.events import Headers
from gateway.sim.pbx import Pbx

if TYPE_CHECKING:
    from gateway.sim.manager import AmiServer, Session


class SimContext(Protocol):
    """What actions need from the running simulator (a restart replaces ``pbx``)."""

    @property
    def pbx(self) -> Pbx: ...

    @property
    def server(self) -> AmiServer: ...

    def reload(self, module: str | None) -> bool: ...

    def request_shutdown(self, *, restart: bool) -> None: ...


def flag(value: str | None, default: bool = False) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "yes", "true", "on", "y")


def parse_callerid(text: str) -> tuple[str | None, str | None]:
    """``"PSTN caller" <13800000001>`` -> (name, number); a bare number is a number."""
    match = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', text)
    if match:
        return match.group(1).strip() or None, match.group(2).strip() or None
    text = text.strip()
    return (None, text) if text else (None, None)


def duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ActionGroup:
    """A group of handlers; each gets the session and the parsed action and writes the whole answer."""

    def __init__(self, sim: SimContext) -> None:
        self.sim = sim

    @property
    def pbx(self) -> Pbx:
        return self.sim.pbx

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def error(session: Session, message: Message, text: str) -> None:
        session.respond(message, "Error", [("Message", text)])

    @staticmethod
    def ok(session: Session, message: Message, text: str) -> None:
        session.respond(message, "Success", [("Message", text)])

    @staticmethod
    def send_list(session: Session, message: Message, intro: str, items: list[tuple[str, Headers]],
                  complete: str, *, items_header: bool = False) -> None:  # fmt: skip
        """``items`` carry their own ActionID position (it differs per event, as in Asterisk)."""
        session.respond(message, "Success", [("EventList", "start"), ("Message", intro)])
        for name, headers in items:
            session.send([("Event", name), *headers])
        done: Headers = [("Event", complete)]
        if message.action_id is not None:
            done.append(("ActionID", message.action_id))
        done += [("EventList", "Complete"), ("ListItems", str(len(items)))]
        if items_header:
            done.append(("Items", str(len(items))))
        session.send(done)

    @staticmethod
    def _aid(message: Message) -> Headers:
        return [("ActionID", message.action_id)] if message.action_id is not None else []

    def channel(self, message: Message, header: str = "Channel") -> Channel | None:
        name = message.get(header)
        return self.pbx.find(name) if name else None
