"""Transfers the gateway drives over AMI: BlindTransfer, Atxfer (and CancelAtxfer).

BlindTransfer (trace 05): the transferer leaves the bridge and hangs up, the transferee is sent to
the target like a Redirect, ``BlindTransfer`` then ``AgentComplete`` (Reason=transfer).

Atxfer (traces 06, 06b): Asterisk types ``*2`` and the extension as DTMF on the transferer, puts
the transferee on hold and dials ``Local/<exten>@<context>`` into a consultation bridge with the
transferer. Hanging the transferer up completes it: the bridges merge, ``AttendedTransfer`` and
``AgentComplete`` (Reason=transfer). An extension with anything but digits (or one that does not
exist) is never dialled: after the prompt has collected nothing three times, about 22 s later,
the transferer is taken off hold, and no transfer event is ever sent (06b). So is any extension on
a PBX without a dial tone in indications.conf (``PbxSettings.dial_tone``): the real PBX then reads
only the first digit (real trace 04).

CancelAtxfer is not in the recorded traces; it is modelled as the target leg hanging up: the
transferer goes back to the transferee, who is taken off hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.errors import GatewayError
from gateway.sim.bridge import Bridge, InBridge
from gateway.sim.channel import Channel
from gateway.sim.events import Headers

if TYPE_CHECKING:
    from gateway.sim.pbx import Pbx

ATXFER_FEATURE = "*2"  # features.conf atxfer => *2 on the traces' bench
HOLD_AFTER = 0.25  # seconds from the action to Hold (the feature code being typed)
DIAL_AFTER = 0.49  # ... to the target leg being created (the digits being typed)
GIVE_UP_AFTER = 21.84  # 06b: three prompts without digits, then the transferer is back


class TransferError(GatewayError):
    """A transfer Asterisk refuses outright; ``message`` is Asterisk's wording."""

    code = "sim.transfer"


@dataclass(eq=False)
class Consult:
    transferer: Channel
    transferee: Channel
    origin: Bridge
    context: str
    exten: str
    saved: Any  # the transferer's owner before the consultation
    target: Channel | None = None
    bridge: Bridge | None = None
    finished: bool = False


class Transfers:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.consults: dict[str, Consult] = {}  # by transferer channel name

    @staticmethod
    def _peer(channel: Channel, failure: str) -> tuple[Bridge, Channel]:
        bridge = channel.bridge
        if bridge is None or bridge.kind != "basic" or len(bridge.channels) != 2:
            raise TransferError(failure)
        return bridge, bridge.peers_of(channel)[0]

    # -- blind ------------------------------------------------------------------------------------
    def blind(self, transferer: Channel, context: str, exten: str) -> None:
        pbx = self.pbx
        if pbx.dialplan.find(context, exten) is None:
            raise TransferError("Transfer invalid")
        bridge, transferee = self._peer(transferer, "Transfer failed")
        pbx.channel_event("Unhold", transferer)
        pbx.set_var(transferer, "BLINDTRANSFER", transferee.name)
        pbx.set_var(transferee, "BLINDTRANSFER", transferer.name)
        pbx.set_var(transferer, "BRIDGEPEER", "")
        headers: Headers = [("Result", "Success")]
        headers += transferer.snapshot("Transferer") + transferee.snapshot("Transferee") + bridge.block()
        headers += [("IsExternal", "Yes"), ("Context", context), ("Extension", exten)]
        pbx.emit("call", "BlindTransfer", headers)
        pbx.queues.transferred(bridge)
        bridge.remove(transferer)
        pbx.set_var(transferee, "BRIDGEPEER", "")
        pbx.softhangup(transferer, 16)
        transferee.context, transferee.exten, transferee.priority = context, exten, 1
        pbx.newexten(transferee)
        bridge.remove(transferee)
        owner = transferee.activity
        if owner is not None:
            owner.redirect(transferee)
        pbx.continue_after_redirect(transferee)
        pbx.defer(bridge.destroy)

    # -- attended ----------------------------------------------------------------------------------
    def attended(self, transferer: Channel, context: str, exten: str) -> None:
        if transferer.name in self.consults:
            raise TransferError("Atxfer failed")
        origin, transferee = self._peer(transferer, "Atxfer failed")
        consult = Consult(transferer, transferee, origin, context, exten, transferer.activity)
        self.consults[transferer.name] = consult
        pbx = self.pbx
        pbx.set_var(transferer, "TRANSFER_CONTEXT", context)
        for digit in ATXFER_FEATURE:
            self._dtmf(transferer, digit)
        pbx.later(HOLD_AFTER, self._hold, consult)

    def _dtmf(self, channel: Channel, digit: str) -> None:
        self.pbx.channel_event("DTMFEnd", channel, [("Digit", digit), ("DurationMs", "0"), ("Direction", "Received")],
                               category="dtmf")  # fmt: skip

    def _hold(self, consult: Consult) -> None:
        if consult.finished or consult.transferer.dead:
            return
        pbx = self.pbx
        pbx.channel_event("Hold", consult.transferer)
        pbx.channel_event("MusicOnHoldStart", consult.transferee, [("Class", "default")])
        # Without a dial tone nothing wakes a silent transferer to read the digits after the first.
        typed = consult.exten if pbx.settings.dial_tone else consult.exten[:1]
        for digit in typed:
            self._dtmf(consult.transferer, digit)
        valid = typed.isdigit() and pbx.dialplan.find(consult.context, typed) is not None
        if valid:
            pbx.later(DIAL_AFTER - HOLD_AFTER, self._dial, consult)
        else:
            pbx.later(GIVE_UP_AFTER - HOLD_AFTER, self._give_up, consult)

    def _give_up(self, consult: Consult) -> None:
        if consult.finished:
            return
        consult.finished = True
        self.consults.pop(consult.transferer.name, None)
        if not consult.transferer.dead:
            self.pbx.channel_event("Unhold", consult.transferer)
        if not consult.transferee.dead:
            self.pbx.channel_event("MusicOnHoldStop", consult.transferee)

    def _dial(self, consult: Consult) -> None:
        transferer = consult.transferer
        if consult.finished or transferer.dead or consult.transferee.dead:
            self._give_up(consult)
            return
        pbx = self.pbx
        one, two = pbx.local_pair(consult.exten, consult.context, linkedid=transferer.linkedid)
        consult.target = one
        pbx.set_var(one, "TRANSFERERNAME", transferer.name)
        pbx.set_var(one, "ATTENDEDTRANSFER", transferer.name)
        bridge = consult.bridge = Bridge(pbx, pbx.new_bridge_id())
        bridge.announce()
        pbx.set_var(two, "ATTENDEDTRANSFER", transferer.name)
        pbx.set_var(two, "TRANSFERERNAME", transferer.name)
        pbx.set_callerid(two, transferer.cid_num, transferer.cid_name)
        pbx.local_bridge_event(one, two, optimize=True)
        one.activity = ConsultTarget(self, consult)
        pbx.start_dialplan(two, consult.context, consult.exten, 1)
        if one.dead:
            return
        pbx.set_connected(one, transferer.cid_num, transferer.cid_name)
        bridge.enter(one)
        bridge.clear_transfer_marks(one)
        consult.origin.remove(transferer)
        bridge.enter(transferer)
        bridge.set_peer_vars()
        pbx.set_connected(transferer, one.cid_num, one.cid_name)
        transferer.activity = InConsult(self, consult)
        transferer.tags["transferer"] = True

    def complete(self, consult: Consult) -> None:
        """The transferer hung up during the consultation: merge the bridges."""
        pbx = self.pbx
        origin, bridge, target = consult.origin, consult.bridge, consult.target
        transferer, transferee = consult.transferer, consult.transferee
        assert bridge is not None
        assert target is not None
        consult.finished = True
        self.consults.pop(transferer.name, None)
        pbx.emit("call", "BridgeMerge", origin.block("ToBridge") + bridge.block("FromBridge"))
        bridge.remove(target)
        origin.enter(target)
        pbx.set_var(transferer, "BRIDGEPEER", "")
        bridge.remove(transferer)
        pbx.channel_event("MusicOnHoldStop", transferee)
        origin.set_peer_vars()
        headers: Headers = [("Result", "Success")]
        headers += transferer.snapshot("OrigTransferer") + origin.block("OrigBridge")
        headers += transferer.snapshot("SecondTransferer") + bridge.block("SecondBridge")
        headers += transferee.snapshot("Transferee") + target.snapshot("TransferTarget")
        headers += [("IsExternal", "No"), ("DestType", "Bridge"), ("DestBridgeUniqueid", origin.uniqueid)]
        pbx.emit("call", "AttendedTransfer", headers)
        pbx.set_connected(transferee, target.cid_num, target.cid_name)
        pbx.queues.transferred(origin)
        bridge.destroy()
        target.activity = InBridge(pbx)
        # The connected-line change reaches the far halves of both Local pairs only as they die.
        for channel in (transferee.partner, transferer.partner):
            if channel is not None and not channel.dead:
                channel.tags["after_hangup"] = self._late_callerid(channel)

    def _late_callerid(self, channel: Channel) -> Any:
        return lambda: self.pbx.channel_event("NewCallerid", channel,
                                              [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])  # fmt: skip

    def back_to_transferee(self, consult: Consult) -> None:
        """Consultation over without a transfer (target gone, CancelAtxfer): rejoin the transferee."""
        if consult.finished:
            return
        consult.finished = True
        self.consults.pop(consult.transferer.name, None)
        pbx, transferer = self.pbx, consult.transferer
        if consult.bridge is not None and transferer.bridge is consult.bridge:
            pbx.set_var(transferer, "BRIDGEPEER", "")
            consult.bridge.remove(transferer)
            pbx.defer(consult.bridge.destroy)
        transferer.tags.pop("transferer", None)
        transferer.activity = consult.saved
        if consult.transferee.dead or consult.origin.destroyed:
            pbx.softhangup(transferer, 16)
            return
        consult.origin.enter(transferer)
        consult.origin.set_peer_vars()
        pbx.channel_event("Unhold", transferer)
        pbx.channel_event("MusicOnHoldStop", consult.transferee)

    def cancel(self, transferer: Channel) -> None:
        consult = self.consults.get(transferer.name)
        if consult is None:
            raise TransferError("No active transfer")
        if consult.target is None:
            self._give_up(consult)
            return
        self.back_to_transferee(consult)
        self.pbx.softhangup(consult.target, 16)


class InConsult:
    """Owner of the transferer while it consults: hanging up completes the transfer."""

    def __init__(self, transfers: Transfers, consult: Consult) -> None:
        self.transfers = transfers
        self.consult = consult

    def hangup(self, channel: Channel, cause: int) -> None:
        if not self.consult.finished:
            self.transfers.complete(self.consult)
        self.transfers.pbx.finish_hangup(channel, cause)

    def redirect(self, channel: Channel) -> None:
        self.transfers.back_to_transferee(self.consult)

    def bridge_ended(self, channel: Channel) -> None:
        self.transfers.back_to_transferee(self.consult)


class ConsultTarget:
    """Owner of the consultation leg (``Local/<exten>@<context>;1``) until the transfer completes."""

    def __init__(self, transfers: Transfers, consult: Consult) -> None:
        self.transfers = transfers
        self.consult = consult

    def ringing(self, channel: Channel) -> None:
        self.transfers.pbx.dial_event("DialState", None, channel, [("DialStatus", "RINGING")])

    def answered(self, channel: Channel) -> None:
        pbx = self.transfers.pbx
        pbx.dial_event("DialEnd", None, channel, [("DialStatus", "ANSWER")])
        if self.consult.bridge is not None and channel.bridge is self.consult.bridge:
            self.consult.bridge.set_peer_vars()

    def hangup(self, channel: Channel, cause: int) -> None:
        self.transfers.back_to_transferee(self.consult)
        if channel.bridge is not None:
            channel.bridge.depart([channel])
        self.transfers.pbx.finish_hangup(channel, cause)

    def redirect(self, channel: Channel) -> None:
        return None

    def bridge_ended(self, channel: Channel) -> None:
        self.transfers.pbx.softhangup(channel, 16)
