"""Session actions: login, logoff, challenge, keep-alive, event flow and filters, the command list."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING

from gateway.ami.protocol import Message
from gateway.sim.actions.base import ActionGroup
from gateway.sim.manager import parse_classes

if TYPE_CHECKING:
    from gateway.sim.manager import Session


class SessionActions(ActionGroup):
    """The manager session's own actions."""

    def login(self, session: Session, message: Message) -> None:
        self.sim.server.login(session, message)

    def logoff(self, session: Session, message: Message) -> None:
        session.respond(message, "Goodbye", [("Message", "Thanks for all the fish.")])
        session.close()

    def challenge(self, session: Session, message: Message) -> None:
        if (message.get("AuthType") or "").lower() != "md5":
            self.error(session, message, "Must specify AuthType")
            return
        session.challenge = str(secrets.randbelow(900_000_000) + 100_000_000)
        session.respond(message, "Success", [("Challenge", session.challenge)])

    def ping(self, session: Session, message: Message) -> None:
        session.respond(message, "Success", [("Ping", "Pong"), ("Timestamp", f"{self.pbx.clock.wall():.6f}")])

    def events(self, session: Session, message: Message) -> None:
        mask = (message.get("EventMask") or "").strip().lower()
        if mask in ("off", "no", "false", "0", "none"):
            session.events_on = False
        else:
            session.events_on = True
            session.event_mask = parse_classes("all" if mask in ("on", "yes", "true", "1", "") else mask)
        self.sim.server.refresh_interest()
        session.respond(message, "Success", [("Events", "On" if session.events_on else "Off")])

    def filter(self, session: Session, message: Message) -> None:
        pattern = message.get("Filter")
        if (message.get("Operation") or "Add").lower() != "add" or not pattern:
            self.error(session, message, "Unknown operation")
            return
        try:
            session.filters.add(pattern)
        except (re.error, ValueError):
            self.error(session, message, "Filter Not Added")
            return
        self.ok(session, message, "Success")

    def list_commands(self, session: Session, message: Message) -> None:
        specs = self.sim.server.actions.available(booted=self.sim.server.booted)
        session.respond(message, "Success", [(spec.name, spec.listing()) for spec in specs])
