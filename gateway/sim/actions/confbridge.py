"""ConfBridge actions: ConfbridgeList, ConfbridgeListRooms, ConfbridgeKick."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.ami.protocol import Message
from gateway.sim.actions.base import ActionGroup
from gateway.sim.confbridge import ConferenceError

if TYPE_CHECKING:
    from gateway.sim.manager import Session


class ConfBridgeActions(ActionGroup):
    """Conference lists and kicks."""

    def confbridge_list(self, session: Session, message: Message) -> None:
        rooms = self.pbx.conferences.rooms
        name = message.get("Conference")
        if not name:
            self.error(session, message, "No Conference name provided.")
            return
        if not rooms:
            self.error(session, message, "No active conferences.")
            return
        conference = rooms.get(name)
        if conference is None:
            self.error(session, message, "No Conference by that name found.")
            return
        now = self.pbx.clock.now()
        items = []
        for channel in conference.users:
            answered = now - (channel.answered_at if channel.answered_at is not None else now)
            items.append(("ConfbridgeList", [*self._aid(message), ("Conference", name), ("Admin", "No"), ("MarkedUser", "No"), ("WaitMarked", "No"), ("EndMarked", "No"), ("EndMarkedAny", "No"), ("Waiting", "No"), ("Muted", "No"), ("Talking", "No"), ("AnsweredTime", str(int(answered))), *channel.snapshot()]))  # fmt: skip
        self.send_list(session, message, "Confbridge user list will follow", items, "ConfbridgeListComplete")

    def confbridge_rooms(self, session: Session, message: Message) -> None:
        rooms = self.pbx.conferences.rooms
        if not rooms:
            self.error(session, message, "No active conferences.")
            return
        items = [
            ("ConfbridgeListRooms", [*self._aid(message), ("Conference", name), ("Parties", str(len(c.users))), ("Marked", "0"), ("Locked", "No"), ("Muted", "No")])
            for name, c in rooms.items()
        ]  # fmt: skip
        self.send_list(
            session, message, "Confbridge conferences will follow", items, "ConfbridgeListRoomsComplete"
        )

    def confbridge_kick(self, session: Session, message: Message) -> None:
        name, target = message.get("Conference"), message.get("Channel")
        if not name or not target:
            self.error(
                session, message, "No Conference name provided." if not name else "No channel name provided."
            )
            return
        try:
            with self.pbx.holding():
                text = self.pbx.conferences.kick(name, target)
        except ConferenceError as exc:
            self.error(session, message, exc.message)
            return
        self.ok(session, message, text)
        self.pbx.drain()
