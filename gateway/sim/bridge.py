"""Bridges: a two-party ``basic`` bridge (Queue connections, transfers) and its AMI events.

Leaving follows the traces: each departing channel loses its BRIDGEPEER (a redirected one also
shows the stale ``Newexten`` at its new location), the remaining party of a two-party bridge loses
its BRIDGEPEER, then BridgeLeave. A basic bridge left with one channel dissolves afterwards (the
PBX defers it so the departing channel finishes first): BridgeLeave of the last one, BridgeDestroy,
and the last channel's owner decides what happens next (hang up, continue the dialplan).
ConfBridge uses its own multi-party bridge (``gateway.sim.confbridge``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.sim.events import Headers

if TYPE_CHECKING:
    from gateway.sim.channel import Channel
    from gateway.sim.pbx import Pbx


class Bridge:
    def __init__(
        self, pbx: Pbx, uniqueid: str, *, technology: str = "simple_bridge", creator: str = "<unknown>",
        name: str = "<unknown>", bridge_type: str = "basic", kind: str = "basic",
    ) -> None:  # fmt: skip
        self.pbx = pbx
        self.kind = kind  # basic (two parties, dissolves) | conference
        self.uniqueid = uniqueid
        self.bridge_type = bridge_type
        self.technology = technology
        self.creator = creator
        self.name = name
        self.channels: list[Channel] = []
        self.hidden = 0  # channels Asterisk counts but never announces (ConfBridge's CBAnn)
        self.destroyed = False

    @property
    def count(self) -> int:
        return len(self.channels) + self.hidden

    def block(self, prefix: str = "Bridge") -> Headers:
        return [
            (f"{prefix}Uniqueid", self.uniqueid), (f"{prefix}Type", self.bridge_type),
            (f"{prefix}Technology", self.technology), (f"{prefix}Creator", self.creator),
            (f"{prefix}Name", self.name), (f"{prefix}NumChannels", str(self.count)),
            (f"{prefix}VideoSourceMode", "none"),
        ]  # fmt: skip

    # -- lifecycle ---------------------------------------------------------------------------
    def announce(self) -> None:
        self.pbx.emit("call", "BridgeCreate", self.block())

    def enter(self, channel: Channel) -> None:
        self.channels.append(channel)
        channel.bridge = self
        self.pbx.emit("call", "BridgeEnter", self.block() + channel.snapshot())

    def clear_transfer_marks(self, channel: Channel) -> None:
        """A transferred channel loses BLINDTRANSFER/ATTENDEDTRANSFER in the next bridge it enters."""
        for name in ("BLINDTRANSFER", "ATTENDEDTRANSFER"):
            if channel.variables.get(name):
                self.pbx.set_var(channel, name, "")

    def peers_of(self, channel: Channel) -> list[Channel]:
        return [other for other in self.channels if other is not channel]

    def set_peer_vars(self) -> None:
        """Two-party bridges name the other party in BRIDGEPEER."""
        for channel in self.channels:
            peers = self.peers_of(channel)
            if len(peers) == 1:
                self.pbx.set_var(channel, "BRIDGEPEER", peers[0].name)

    def depart(self, leaving: list[Channel], *, redirected: bool = False) -> None:
        """Take ``leaving`` out (hangup, redirect, transfer); dissolution is deferred."""
        pbx = self.pbx
        leaving = [c for c in self.channels if c in leaving]  # in the order they entered
        for channel in leaving:
            pbx.set_var(channel, "BRIDGEPEER", "")
            if redirected:
                pbx.newexten(channel)
        remaining = [c for c in self.channels if c not in leaving]
        if len(remaining) == 1 and len(self.channels) == 2:
            pbx.set_var(remaining[0], "BRIDGEPEER", "")
        for channel in leaving:
            self.remove(channel)
        if len(remaining) <= 1:
            pbx.defer(self.dissolve)

    def remove(self, channel: Channel) -> None:
        self.channels.remove(channel)
        channel.bridge = None
        channel.tags["was_bridged"] = True
        self.pbx.emit("call", "BridgeLeave", self.block() + channel.snapshot())

    def dissolve(self) -> None:
        if self.destroyed:
            return
        last = list(self.channels)
        for channel in last:
            self.remove(channel)
        self.destroy()
        for channel in last:
            owner = channel.activity
            if owner is not None and not channel.dead:
                owner.bridge_ended(channel)

    def destroy(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            self.pbx.emit("call", "BridgeDestroy", self.block())


class InBridge:
    """Owner of a channel outside the dialplan that sits in a basic bridge (a dialed member).

    Hanging it up takes it out of the bridge; when the bridge dissolves under it, it hangs up.
    """

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx

    def hangup(self, channel: Channel, cause: int) -> None:
        if channel.bridge is not None:
            channel.bridge.depart([channel])
        self.pbx.finish_hangup(channel, cause)

    def redirect(self, channel: Channel) -> None:
        return None

    def bridge_ended(self, channel: Channel) -> None:
        self.pbx.softhangup(channel, 16)
