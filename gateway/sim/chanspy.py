"""ChanSpy (listen, whisper, barge) and Milliwatt, as Asterisk 22 shows them on AMI (trace 12).

``ChanSpy(prefix,options)`` looks for its target 0.1 s after it starts: the first live channel
whose name starts with ``prefix`` (not itself). None found: with option ``S`` the dialplan goes
on, else it looks again every second. Found: ``ChanSpyStart`` with a ``Spyer*`` and a ``Spyee*``
snapshot, and the spyee's bridge re-announces BRIDGEPEER (attaching an audiohook reconfigures
it). It ends when the spy hangs up, or when the spyee does (option ``E``: the dialplan goes
on; without it, it looks again): ``ChanSpyStop``, around which a still-bridged spyee's bridge
re-announces BRIDGEPEER once (listen) or twice (whisper, barge: two audiohooks detach). Nothing
else happens on the spied call: no media here, so whisper and barge only differ in those
events. Milliwatt stands for a phone's audio: it blocks until hangup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.sim.apps import Application, answer, run_of
from gateway.sim.channel import UP, Channel
from gateway.sim.clock import Timer
from gateway.sim.dialplan import split_args

if TYPE_CHECKING:
    from gateway.sim.pbx import Pbx

LOOK_AFTER_S = 0.1  # ChanSpy starts spying ~0.1 s after it is entered (trace 12)
LOOK_AGAIN_S = 1.0
SPIES = "spies"  # spyee.tags[SPIES]: the ChanSpy states attached to it


class ChanSpy:
    """A ChanSpy in progress on the spy's channel."""

    first_frame_s = LOOK_AFTER_S + 0.02  # its first audio frame: an Answer() on the other side waits for it

    def __init__(self, pbx: Pbx, spyer: Channel, prefix: str, options: str) -> None:
        self.pbx = pbx
        self.spyer = spyer
        self.prefix = prefix
        self.options = options
        self.spyee: Channel | None = None
        self.timer: Timer | None = pbx.later(LOOK_AFTER_S, self._look)

    def _look(self) -> None:
        self.timer = None
        if self.spyer.dead or run_of(self.spyer).state is not self:
            return
        target = next(
            (c for c in self.pbx.live_channels() if c is not self.spyer and c.name.startswith(self.prefix)),
            None,
        )
        if target is None:
            if "S" in self.options:
                run_of(self.spyer).done()
            else:
                self.timer = self.pbx.later(LOOK_AGAIN_S, self._look)
            return
        self.spyee = target
        target.tags.setdefault(SPIES, []).append(self)
        self._event("ChanSpyStart", target)
        self._reannounce(target)

    def _event(self, name: str, spyee: Channel) -> None:
        self.pbx.emit("call", name, self.spyer.snapshot("Spyer") + spyee.snapshot("Spyee"))

    def _reannounce(self, spyee: Channel) -> None:
        bridge = spyee.bridge
        if bridge is not None and bridge.kind == "basic" and not spyee.tags.get("hanging"):
            bridge.set_peer_vars()

    def _detach(self) -> None:
        spyee, self.spyee = self.spyee, None
        if spyee is None:
            return
        spies: list[ChanSpy] = spyee.tags.get(SPIES, [])
        if self in spies:
            spies.remove(self)
        self._reannounce(spyee)
        self._event("ChanSpyStop", spyee)
        if "w" in self.options or "B" in self.options:
            self._reannounce(spyee)

    def spyee_gone(self) -> None:
        """The spied-on channel is hanging up (called before its Hangup event)."""
        self._detach()
        if "E" in self.options:
            self.pbx.defer(lambda: None if self.spyer.dead else run_of(self.spyer).done())
        else:
            self.timer = self.pbx.later(0.0, self._look)

    def stop(self, channel: Channel, why: str) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self._detach()

    def bridge_ended(self, channel: Channel) -> None:
        return None


def spyee_hangs_up(channel: Channel) -> None:
    for spy in list(channel.tags.pop(SPIES, [])):
        spy.spyee_gone()


def app_chanspy(pbx: Pbx, channel: Channel, data: str) -> bool:
    args = [*split_args(data), "", ""]
    if channel.state != UP:
        answer(pbx, channel)
    return run_of(channel).block(ChanSpy(pbx, channel, args[0].strip(), args[1]))


class Forever:
    """An application that runs until hangup or redirect (Milliwatt: a phone's audio)."""

    def stop(self, channel: Channel, why: str) -> None:
        return None

    def bridge_ended(self, channel: Channel) -> None:
        return None


def app_milliwatt(pbx: Pbx, channel: Channel, data: str) -> bool:
    if channel.state != UP:
        answer(pbx, channel)
    return run_of(channel).block(Forever())


APPLICATIONS: dict[str, Application] = {"chanspy": app_chanspy, "milliwatt": app_milliwatt}
