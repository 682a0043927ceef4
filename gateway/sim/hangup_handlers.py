"""Hangup handlers (``CHANNEL(hangup_handler_push)``): pushed by the dialplan, run as a channel ends."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gateway.sim.apps import DialplanRun
from gateway.sim.channel import Channel

if TYPE_CHECKING:
    from gateway.sim.pbx import Pbx

log = logging.getLogger(__name__)


class HangupHandlers:
    """The handlers of each channel, kept in its tags."""

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx

    def push_hangup_handler(self, channel: Channel, location: str) -> None:
        """``CHANNEL(hangup_handler_push)=[[context,]exten,]priority[(args)]``, as Gosub reads it."""
        parts = [part.strip() for part in location.split("(", 1)[0].split(",")]
        context, exten = channel.context, channel.exten
        if len(parts) == 3:
            context, exten, label = parts
        elif len(parts) == 2:
            exten, label = parts
        else:
            label = parts[0]
        channel.tags.setdefault("hangup_handlers", []).append((context, exten, label))

    def run_hangup_handlers(self, channel: Channel) -> None:
        """As ast_hangup does: last pushed first, on the hung-up channel, before its Hangup event.

        Each runs until Return() or the end of its extension; an application that would wait
        ends it, as such an application fails at once on a hung-up channel in Asterisk.
        """
        handlers: list[tuple[str, str, str]] = channel.tags.pop("hangup_handlers", [])
        if handlers:
            channel.tags["hanging"] = True  # a Hangup() or the end of a handler changes nothing
        for context, exten, label in reversed(handlers):
            extension = self.pbx.dialplan.find(context, exten)
            if extension is None:
                priority = None
            else:
                priority = int(label) if label.isdigit() else extension.priority_of(label)
            if priority is None:
                log.warning("sim: hangup handler %s,%s,%s does not exist", context, exten, label)
                continue
            channel.context, channel.exten, channel.priority = context, exten, priority
            channel.activity = DialplanRun(self.pbx, channel)
            self.pbx.execute(channel)
