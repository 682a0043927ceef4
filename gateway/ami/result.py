"""The one shape every AMI answer is given, and the collector that builds it.

Asterisk answers in three shapes (trace 08): a single ``Response``; a list (``Response`` with
``EventList: start``, events carrying the same ActionID, then ``...Complete`` with
``EventList: Complete``); and ``Command``, whose output is one ``Output:`` header per line (old
versions sent a raw body instead). Callers always get an ``ActionResult`` with the first response,
the list events and the Complete event, and ``output`` is always a list of lines.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.ami.protocol import Message

_OK = frozenset({"Success", "Goodbye", "Follows"})
_LEGACY_END = "--END COMMAND--"


@dataclass(frozen=True, slots=True)
class ActionResult:
    action: str
    action_id: str
    response: Message
    events: tuple[Message, ...] = ()
    complete: Message | None = None

    @property
    def ok(self) -> bool:
        return self.response.response in _OK

    @property
    def message(self) -> str:
        return self.response.get("Message") or ""

    def get(self, name: str) -> str | None:
        return self.response.get(name)

    @property
    def output(self) -> list[str]:
        """Command output as lines, from ``Output:`` headers or a legacy raw body."""
        lines = self.response.getall("Output")
        if lines:
            return lines
        return [value for key, value in self.response.headers if key == "" and value != _LEGACY_END]


class PendingAction:
    """Collects the messages answering one ActionID and resolves ``future`` when complete."""

    __slots__ = ("action", "action_id", "events", "future", "response")

    def __init__(self, action: str, action_id: str, future: asyncio.Future[ActionResult]) -> None:
        self.action = action
        self.action_id = action_id
        self.future = future
        self.response: Message | None = None
        self.events: list[Message] = []

    def feed(self, message: Message) -> bool:
        """Take ``message`` if it belongs to this answer; False means it is an ordinary event.

        A response without ``EventList: start`` completes the action, whatever its text says:
        "Originate successfully queued" or "Atxfer successfully queued" are final answers.
        """
        if message.event is None:
            if self.response is None:
                self.response = message
                if (message.get("EventList") or "").lower() != "start":
                    self._resolve(None)
            return True
        if self.response is None or (self.response.get("EventList") or "").lower() != "start":
            # e.g. OriginateResponse or the UserEvent echo: they carry our ActionID but are events.
            return False
        if (message.get("EventList") or "").lower() == "complete" or message.event.endswith("Complete"):
            self._resolve(message)
        else:
            self.events.append(message)
        return True

    def _resolve(self, complete: Message | None) -> None:
        assert self.response is not None
        if not self.future.done():
            result = ActionResult(self.action, self.action_id, self.response, tuple(self.events), complete)
            self.future.set_result(result)
