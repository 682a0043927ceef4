"""AMI Originate in the simulated PBX: the Local pair it creates, its dial, and OriginateResponse."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.sim.apps import OriginateDial
from gateway.sim.channel import UNKNOWN, Channel
from gateway.sim.events import Headers

if TYPE_CHECKING:
    from gateway.sim.pbx import OriginateRequest, Pbx


class Originator:
    """Starts originated calls once ``Pbx.originate``'s delay is over."""

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx

    def originate_now(self, request: OriginateRequest) -> None:
        parsed = self.pbx.parse_local(request.target)
        if parsed is None or self.pbx.dialplan.find(parsed[1], parsed[0]) is None:
            self._originate_failed(request)
            return
        exten, context, optimize = parsed
        one, two = self.pbx.local_pair(exten, context, ids=(request.channel_id, request.other_channel_id))
        one.tags.update(request.tags)
        two.tags.update(request.tags)
        if request.on_channels is not None:
            request.on_channels(one, two)
        one.app, one.appdata = "AppDial2", "(Outgoing Line)"
        self.pbx.newexten(one)
        for name, value in request.variables:
            self.pbx.set_var(one, name, value)
        if request.caller_num is not None or request.caller_name is not None:
            self.pbx.set_callerid(one, request.caller_num, request.caller_name)
            self.pbx.set_connected(one, one.cid_num, one.cid_name)
        for name, value in request.variables:
            self.pbx.set_var(two, name, value)
        if request.caller_num is not None or request.caller_name is not None:
            two.conn_num, two.conn_name = one.cid_num, one.cid_name
            self.pbx.set_callerid(two, request.caller_num, request.caller_name)
            self.pbx.channel_event("NewConnectedLine", two)
        self.pbx.local_bridge_event(one, two, optimize=optimize)
        dial = OriginateDial(self.pbx, one, request, dial_string=request.target[len("Local/") :])
        one.activity = dial
        self.pbx.dial_event("DialBegin", None, one, [("DialString", dial.dial_string)])
        timeout = request.timeout if request.timeout is not None else self.pbx.settings.originate_timeout
        dial.timer = self.pbx.later(timeout, dial.timed_out)
        self.pbx.processed_calls += 1
        self.pbx.start_dialplan(two, context, exten, 1)

    def _originate_failed(self, request: OriginateRequest) -> None:
        if request.report:
            self.pbx.emit("call", "OriginateResponse", self.originate_response(request, None, "Failure", 0))
        if request.on_result is not None:
            request.on_result(False)

    def originate_response(self, request: OriginateRequest, channel: Channel | None, result: str,
                           reason: int) -> Headers:  # fmt: skip
        headers: Headers = [("ActionID", request.action_id)] if request.action_id else []
        headers.append(("Response", result))
        headers.append(("Channel", channel.name if channel else request.target))
        if request.application:
            headers += [("Application", request.application), ("Data", request.app_data)]
        else:
            headers += [("Context", request.context or ""), ("Exten", request.exten or "")]
        headers += [("Reason", str(reason)), ("Uniqueid", channel.uniqueid if channel else "<null>"),
                    ("CallerIDNum", channel.cid_num if channel else UNKNOWN),
                    ("CallerIDName", channel.cid_name if channel else UNKNOWN)]  # fmt: skip
        return headers
