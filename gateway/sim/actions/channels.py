"""Channel actions: Originate, Hangup, Redirect, the transfers, Setvar and Getvar."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.ami.protocol import Message
from gateway.sim.actions.base import ActionGroup, flag, parse_callerid
from gateway.sim.channel import Channel
from gateway.sim.pbx import OriginateRequest
from gateway.sim.transfer import TransferError

if TYPE_CHECKING:
    from gateway.sim.manager import Session


class ChannelActions(ActionGroup):
    """Actions that start, move, end or read a channel."""

    def originate(self, session: Session, message: Message) -> None:
        target = message.get("Channel")
        if not target:
            self.error(session, message, "Channel not specified")
            return
        application = message.get("Application")
        context, exten, priority_text = message.get("Context"), message.get("Exten"), message.get("Priority")
        if not application and not (exten and context and priority_text):
            self.error(session, message, "Originate with 'Exten' requires 'Context' and 'Priority'")
            return
        priority = 1
        if not application:
            assert priority_text is not None
            if not priority_text.isdigit():
                self.error(session, message, "Invalid priority")
                return
            priority = int(priority_text)
        timeout_text = message.get("Timeout")
        name, number = parse_callerid(message.get("CallerID") or "")
        variables = [
            (key.strip(), value) for header in message.getall("Variable") for item in header.split(",")
            for key, sep, value in [item.partition("=")] if sep
        ]  # fmt: skip
        asynchronous = flag(message.get("Async"))
        request = OriginateRequest(
            target=target, application=application, app_data=message.get("Data") or "", context=context,
            exten=exten, priority=priority, caller_num=number, caller_name=name, variables=variables,
            channel_id=message.get("ChannelId"), other_channel_id=message.get("OtherChannelId"),
            action_id=message.action_id,
            timeout=int(timeout_text) / 1000 if timeout_text and timeout_text.isdigit() else None,
        )  # fmt: skip
        if asynchronous:
            self.ok(session, message, "Originate successfully queued")
        else:
            request.on_result = lambda success: (
                self.ok(session, message, "Originate successfully queued") if success
                else self.error(session, message, "Originate failed")
            )  # fmt: skip
        self.pbx.run(lambda: self.pbx.originate(request))

    def hangup(self, session: Session, message: Message) -> None:
        name = message.get("Channel") or ""
        cause_text = (message.get("Cause") or "").strip()
        cause = int(cause_text) if cause_text.isdigit() else 0
        pbx = self.pbx
        if len(name) > 2 and name.startswith("/") and name.endswith("/"):
            try:
                pattern = re.compile(name[1:-1])
            except re.error:
                self.error(session, message, "Invalid regex")
                return
            matched = [c for c in pbx.live_channels() if pattern.search(c.name) and not c.tags.get("hanging")]
            self.send_list(session, message, "Channels hung up will follow",
                           [("ChannelHungup", [("Channel", c.name), *self._aid(message)]) for c in matched],
                           "ChannelsHungupListComplete")  # fmt: skip
            for each in matched:
                pbx.run(functools.partial(pbx.softhangup, each, cause))
            return
        channel = pbx.find(name)
        if channel is None:
            self.error(session, message, "No such channel")
            return
        self.ok(session, message, "Channel Hungup")
        pbx.run(lambda: pbx.softhangup(channel, cause))

    def redirect(self, session: Session, message: Message) -> None:
        name = message.get("Channel")
        if not name:
            self.error(session, message, "Channel not specified")
            return
        channel = self.pbx.find(name)
        if channel is None:
            self.error(session, message, f"Channel does not exist: {name}")
            return
        targets = [self._redirect_target(channel, message, "")]
        extra_name = message.get("ExtraChannel")
        if extra_name:
            extra = self.pbx.find(extra_name)
            if extra is None:
                self.error(session, message, f"ExtraChannel does not exist: {extra_name}")
                return
            targets.append(self._redirect_target(extra, message, "Extra"))
        if any(t[3] < 1 for t in targets):
            self.error(session, message, "Invalid priority")
            return
        self.ok(session, message, "Dual Redirect successful" if extra_name else "Redirect successful")
        self.pbx.run(lambda: self.pbx.redirect(targets))

    @staticmethod
    def _redirect_target(channel: Channel, message: Message, prefix: str) -> tuple[Channel, str, str, int]:
        context = message.get(f"{prefix}Context") or channel.context
        exten = message.get(f"{prefix}Exten") or channel.exten
        priority_text = (message.get(f"{prefix}Priority") or "1").strip()
        return channel, context, exten, int(priority_text) if priority_text.isdigit() else 0

    def blind_transfer(self, session: Session, message: Message) -> None:
        channel = self.channel(message)
        exten = message.get("Exten")
        if not message.get("Channel"):
            self.error(session, message, "No channel specified")
        elif channel is None:
            self.error(session, message, "No such channel")
        elif not exten:
            self.error(session, message, "No extension specified")
        else:
            context = message.get("Context") or channel.context
            self._transfer(session, message, "Transfer succeeded",
                           lambda: self.pbx.transfers.blind(channel, context, exten))  # fmt: skip

    def atxfer(self, session: Session, message: Message) -> None:
        channel = self.channel(message)
        exten = message.get("Exten")
        if not message.get("Channel"):
            self.error(session, message, "No channel specified")
        elif not exten:
            self.error(session, message, "No extension specified")
        elif channel is None:
            self.error(session, message, "Channel specified does not exist")
        else:
            context = message.get("Context") or channel.variables.get("TRANSFER_CONTEXT") or channel.context
            self._transfer(session, message, "Atxfer successfully queued",
                           lambda: self.pbx.transfers.attended(channel, context, exten))  # fmt: skip

    def cancel_atxfer(self, session: Session, message: Message) -> None:
        channel = self.channel(message)
        if channel is None:
            self.error(session, message, "Channel specified does not exist")
        else:
            self._transfer(session, message, "CancelAtxfer successfully queued",
                           lambda: self.pbx.transfers.cancel(channel))  # fmt: skip

    def _transfer(self, session: Session, message: Message, success: str, work: Callable[[], None]) -> None:
        try:
            with self.pbx.holding():
                work()
        except TransferError as exc:
            self.error(session, message, exc.message)
            return
        self.ok(session, message, success)
        self.pbx.drain()

    def setvar(self, session: Session, message: Message) -> None:
        variable = message.get("Variable")
        if not variable:
            self.error(session, message, "No variable specified")
            return
        value = message.get("Value") or ""
        name = message.get("Channel")
        if not name:
            self.pbx.dialplan.globals[variable] = value
            self.ok(session, message, "Variable Set")
            return
        channel = self.pbx.find(name)
        if channel is None:
            self.error(session, message, "No such channel")
            return
        self.ok(session, message, "Variable Set")
        self.pbx.run(lambda: self.pbx.set_var(channel, variable, value))

    def getvar(self, session: Session, message: Message) -> None:
        variable = message.get("Variable")
        if not variable:
            self.error(session, message, "No variable specified")
            return
        name = message.get("Channel")
        channel = self.pbx.find(name) if name else None
        if name and channel is None:
            self.error(session, message, "No such channel")
            return
        if "(" in variable:
            value = self.pbx.vars.expand(channel, "${" + variable + "}") if channel else ""
        else:
            value = self.pbx.vars.lookup(channel, variable) or ""
        session.respond(message, "Success", [("Variable", variable), ("Value", value)])
