"""ConfBridge conferences (trace 07): the three-way call the gateway builds with Redirect + Originate.

A conference is a ``base``/``softmix`` bridge created by ``ConfBridge`` and named after the room.
As in Asterisk an announcer channel ``CBAnn/<room>-XXXXXXXX;2`` sits in it unannounced: it takes a
channel number, counts in BridgeNumChannels and heads every BRIDGEPEER list. Joining sends
BridgeEnter, the BRIDGEPEER updates, then ConfbridgeJoin; hanging up sends ConfbridgeLeave first
and ``CONFBRIDGE_RESULT=HANGUP``; a kick sets ``CONFBRIDGE_RESULT=KICKED`` first. The last one
out ends the conference (ConfbridgeEnd, BridgeDestroy). No audio, no menus, no marked users.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from gateway.errors import GatewayError
from gateway.sim.apps import run_of
from gateway.sim.bridge import Bridge
from gateway.sim.channel import Channel

if TYPE_CHECKING:
    from gateway.sim.pbx import Pbx

# ConfBridge() enters the bridge a moment after it starts (the one creating the room a moment
# later still), and ConfbridgeJoin follows a moment after that: in trace 07 the agent leg, though
# second to start, enters first.
JOIN_DELAY = 0.001
CREATOR_JOIN_DELAY = 0.002
JOIN_ANNOUNCE_DELAY = 0.003


class ConferenceError(GatewayError):
    """A ConfBridge action Asterisk refuses; ``message`` is Asterisk's wording."""

    code = "sim.confbridge"


class Conference:
    def __init__(self, pbx: Pbx, name: str) -> None:
        self.name = name
        self.announcer = f"CBAnn/{name}-{pbx.next_counter():08x};2"
        pbx.next_uniqueid()
        pbx.next_uniqueid()
        self.bridge = Bridge(pbx, pbx.new_bridge_id(), technology="softmix", creator="ConfBridge", name=name,
                             bridge_type="base", kind="conference")  # fmt: skip
        self.started = False

    @property
    def users(self) -> list[Channel]:
        return self.bridge.channels


class ConfState:
    """ConfBridge() running on one channel."""

    def __init__(self, conferences: Conferences, conference: Conference) -> None:
        self.conferences = conferences
        self.conference = conference

    def stop(self, channel: Channel, why: str) -> None:
        self.conferences.leave(self.conference, channel, kicked=False)
        self.conferences.pending.discard(channel.name)

    def bridge_ended(self, channel: Channel) -> None:
        return None


class Conferences:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.rooms: dict[str, Conference] = {}
        self.pending: set[str] = set()  # channels that started ConfBridge() but are not in yet

    def join(self, channel: Channel, name: str) -> bool:
        pbx = self.pbx
        conference = self.rooms.get(name)
        delay = JOIN_DELAY
        if conference is None:
            conference = self.rooms[name] = Conference(pbx, name)
            conference.bridge.announce()
            conference.bridge.hidden = 1
            delay = CREATOR_JOIN_DELAY
        self.pending.add(channel.name)
        pbx.later(delay, self._enter, conference, channel)
        return run_of(channel).block(ConfState(self, conference))

    def _enter(self, conference: Conference, channel: Channel) -> None:
        if channel.dead or channel.name not in self.pending:
            return
        self.pending.discard(channel.name)
        pbx = self.pbx
        if not conference.started:
            conference.started = True
            pbx.emit("call", "ConfbridgeStart", [("Conference", conference.name), *conference.bridge.block()])
            pbx.set_device_state(f"confbridge:{conference.name}", "INUSE")
        conference.bridge.enter(channel)
        self.update_peers(conference)
        pbx.later(JOIN_ANNOUNCE_DELAY, self._announce_join, conference, channel)

    def _announce_join(self, conference: Conference, channel: Channel) -> None:
        if channel.dead or channel.bridge is not conference.bridge:
            return
        self.pbx.emit(
            "call", "ConfbridgeJoin",
            [("Conference", conference.name), *conference.bridge.block(), *channel.snapshot(), ("Admin", "No"), ("Muted", "No")],
        )  # fmt: skip

    def update_peers(self, conference: Conference) -> None:
        for channel in conference.users:
            others = [conference.announcer] + [c.name for c in conference.users if c is not channel]
            self.pbx.set_var(channel, "BRIDGEPEER", ",".join(others))

    def leave(self, conference: Conference, channel: Channel, *, kicked: bool) -> None:
        pbx, bridge = self.pbx, conference.bridge
        if channel.bridge is not bridge:
            return
        if kicked:
            pbx.set_var(channel, "CONFBRIDGE_RESULT", "KICKED")
            pbx.set_var(channel, "BRIDGEPEER", "")
        pbx.emit("call", "ConfbridgeLeave", [("Conference", conference.name), *bridge.block(), *channel.snapshot(), ("Admin", "No")])  # fmt: skip
        if not kicked:
            pbx.set_var(channel, "BRIDGEPEER", "")
        last = len(bridge.channels) == 1
        if last:
            bridge.channels.remove(channel)
            pbx.emit("call", "ConfbridgeEnd", [("Conference", conference.name), *bridge.block()])
            bridge.channels.append(channel)
        bridge.remove(channel)
        if not last:
            self.update_peers(conference)
        if not kicked:
            pbx.set_var(channel, "CONFBRIDGE_RESULT", "HANGUP")
        if last:
            self.rooms.pop(conference.name, None)
            pbx.set_device_state(f"confbridge:{conference.name}", "NOT_INUSE")
            pbx.set_device_state(f"CBAnn/{conference.name}", "INUSE")
            pbx.defer(lambda: self._destroy(conference))

    def _destroy(self, conference: Conference) -> None:
        conference.bridge.hidden = 0
        conference.bridge.destroy()
        self.pbx.set_device_state(f"CBAnn/{conference.name}", "UNKNOWN")

    def kick(self, name: str, channel_name: str) -> str:
        conference = self.rooms.get(name)
        if conference is None:
            raise ConferenceError("No Conference by that name found.")
        if channel_name.lower() == "all":
            targets = list(conference.users)
        else:
            targets = [c for c in conference.users if c.name == channel_name]
            if not targets:
                raise ConferenceError("No Channel by that name found in Conference.")
        for channel in targets:
            self.pbx.defer(functools.partial(self._kick, conference, channel))
        return "All participants kicked" if channel_name.lower() == "all" else "User kicked"

    def _kick(self, conference: Conference, channel: Channel) -> None:
        if channel.dead:
            return
        run = run_of(channel)
        run.state = None
        self.leave(conference, channel, kicked=True)
        run.done()
