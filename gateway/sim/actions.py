"""AMI actions of the simulated PBX, answered with Asterisk 22's words and shapes (trace 08).

Lists follow the trace: ``Response: Success`` with ``EventList: start``, the items carrying the
ActionID, then ``...Complete`` with ``EventList: Complete`` and ``ListItems``. Errors use the
texts Asterisk uses. Queue and ConfBridge actions belong to modules that are not loaded while the
PBX boots: until FullyBooted they are "Invalid/unknown command" (trace 11d).
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gateway.ami.protocol import Message
from gateway.sim.channel import Channel
from gateway.sim.confbridge import ConferenceError
from gateway.sim.events import Headers
from gateway.sim.manager import AMI_VERSION, parse_classes
from gateway.sim.pbx import OriginateRequest, Pbx
from gateway.sim.queues import QueueError
from gateway.sim.transfer import TransferError

if TYPE_CHECKING:
    from gateway.sim.manager import AmiServer, Session

ASTERISK_VERSION = "22.10.1"


class SimContext(Protocol):
    """What actions need from the running simulator (a restart replaces ``pbx``)."""

    @property
    def pbx(self) -> Pbx: ...

    @property
    def server(self) -> AmiServer: ...

    def reload(self, module: str | None) -> bool: ...

    def request_shutdown(self, *, restart: bool) -> None: ...


@dataclass(frozen=True)
class ActionSpec:
    name: str
    handler: Callable[[Session, Message], None]
    privilege: tuple[str, ...]
    module: str | None
    synopsis: str

    def listing(self) -> str:
        priv = ",".join(self.privilege) + ",all" if self.privilege else "<none>"
        return f"{self.synopsis}  (Priv: {priv})"


class ActionTable:
    """Actions by lower-case name; module actions only exist once the PBX has booted."""

    def __init__(self, specs: list[ActionSpec]) -> None:
        self.specs = {spec.name.lower(): spec for spec in specs}

    def find(self, name: str, *, booted: bool) -> ActionSpec | None:
        spec = self.specs.get(name)
        if spec is None or (spec.module is not None and not booted):
            return None
        return spec

    def available(self, *, booted: bool) -> list[ActionSpec]:
        return sorted(
            (s for s in self.specs.values() if booted or s.module is None), key=lambda s: s.name.lower()
        )


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "yes", "true", "on", "y")


def parse_callerid(text: str) -> tuple[str | None, str | None]:
    """``"PSTN caller" <13800000001>`` -> (name, number); a bare number is a number."""
    match = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', text)
    if match:
        return match.group(1).strip() or None, match.group(2).strip() or None
    text = text.strip()
    return (None, text) if text else (None, None)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Actions:
    """Handlers; each gets the session and the parsed action and writes the whole answer."""

    def __init__(self, sim: SimContext) -> None:
        self.sim = sim

    @property
    def pbx(self) -> Pbx:
        return self.sim.pbx

    def table(self) -> ActionTable:
        core, queue, conf = None, "app_queue", "app_confbridge"
        rows: list[tuple[str, Callable[[Session, Message], None], tuple[str, ...], str | None, str]] = [
            ("Login", self.login, (), core, "Login Manager."),
            ("Logoff", self.logoff, (), core, "Logoff Manager."),
            ("Challenge", self.challenge, (), core, "Generate Challenge for MD5 Auth."),
            ("Ping", self.ping, (), core, "Keepalive command."),
            ("Events", self.events, (), core, "Control Event Flow."),
            ("Filter", self.filter, ("system",), core, "Dynamically add filters for the current manager session."),
            ("ListCommands", self.list_commands, (), core, "List available manager commands."),
            ("Originate", self.originate, ("originate",), core, "Originate a call."),
            ("Hangup", self.hangup, ("system", "call"), core, "Hangup channel."),
            ("Redirect", self.redirect, ("call",), core, "Redirect (transfer) a call."),
            ("BlindTransfer", self.blind_transfer, ("call",), core, "Blind transfer channel(s) to the given destination"),
            ("Atxfer", self.atxfer, ("call",), core, "Attended transfer."),
            ("CancelAtxfer", self.cancel_atxfer, ("call",), core, "Cancel an attended transfer."),
            ("Setvar", self.setvar, ("call",), core, "Sets a channel variable or function value."),
            ("Getvar", self.getvar, ("call", "reporting"), core, "Gets a channel variable or function value."),
            ("Status", self.status, ("system", "call", "reporting"), core, "List channel status."),
            ("CoreShowChannels", self.core_show_channels, ("system", "reporting"), core,
             "List currently active channels."),
            ("CoreStatus", self.core_status, ("system", "reporting"), core, "Show PBX core status variables."),
            ("CoreSettings", self.core_settings, ("system", "reporting"), core, "Show PBX core settings (version etc)."),
            ("Command", self.command, ("command",), core, "Execute Asterisk CLI Command."),
            ("Reload", self.reload, ("system", "config"), core, "Send a reload event."),
            ("UserEvent", self.user_event, ("user",), core, "Send an arbitrary event."),
            ("DBPut", self.db_put, ("system",), core, "Put DB entry."),
            ("DBGet", self.db_get, ("system", "reporting"), core, "Get DB Entry."),
            ("DBGetTree", self.db_get_tree, ("system", "reporting"), core,
             "Get DB entries, optionally at a particular family/key"),
            ("DBDel", self.db_del, ("system",), core, "Delete DB entry."),
            ("DBDelTree", self.db_del_tree, ("system",), core, "Delete DB Tree."),
            ("QueueStatus", self.queue_status, (), queue, "Show queue status."),
            ("QueueSummary", self.queue_summary, (), queue, "Show queue summary."),
            ("QueueAdd", self.queue_add, ("agent",), queue, "Add interface to queue."),
            ("QueueRemove", self.queue_remove, ("agent",), queue, "Remove interface from queue."),
            ("QueuePause", self.queue_pause, ("agent",), queue, "Makes a queue member temporarily unavailable."),
            ("QueuePenalty", self.queue_penalty, ("agent",), queue, "Set the penalty for a queue member."),
            ("QueueMemberRingInUse", self.queue_ringinuse, ("agent",), queue,
             "Set the ringinuse value for a queue member."),
            ("ConfbridgeList", self.confbridge_list, ("reporting",), conf, "List participants in a conference."),
            ("ConfbridgeListRooms", self.confbridge_rooms, ("reporting",), conf, "List active conferences."),
            ("ConfbridgeKick", self.confbridge_kick, ("call",), conf, "Kick a Confbridge user."),
        ]  # fmt: skip
        return ActionTable([ActionSpec(*row) for row in rows])

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def error(session: Session, message: Message, text: str) -> None:
        session.respond(message, "Error", [("Message", text)])

    @staticmethod
    def ok(session: Session, message: Message, text: str) -> None:
        session.respond(message, "Success", [("Message", text)])

    @staticmethod
    def send_list(session: Session, message: Message, intro: str, items: list[tuple[str, Headers]],
                  complete: str, *, items_header: bool = False) -> None:  # fmt: skip
        """``items`` carry their own ActionID position (it differs per event, as in Asterisk)."""
        session.respond(message, "Success", [("EventList", "start"), ("Message", intro)])
        for name, headers in items:
            session.send([("Event", name), *headers])
        done: Headers = [("Event", complete)]
        if message.action_id is not None:
            done.append(("ActionID", message.action_id))
        done += [("EventList", "Complete"), ("ListItems", str(len(items)))]
        if items_header:
            done.append(("Items", str(len(items))))
        session.send(done)

    @staticmethod
    def _aid(message: Message) -> Headers:
        return [("ActionID", message.action_id)] if message.action_id is not None else []

    def channel(self, message: Message, header: str = "Channel") -> Channel | None:
        name = message.get(header)
        return self.pbx.find(name) if name else None

    # -- session ------------------------------------------------------------------------------------
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

    # -- calls ----------------------------------------------------------------------------------------
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
        asynchronous = _flag(message.get("Async"))
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
            value = self.pbx.expand(channel, "${" + variable + "}") if channel else ""
        else:
            value = self.pbx.lookup(channel, variable) or ""
        session.respond(message, "Success", [("Variable", variable), ("Value", value)])

    def status(self, session: Session, message: Message) -> None:
        name = message.get("Channel")
        channels = self.pbx.live_channels()
        if name:
            channels = [c for c in channels if c.name == name]
            if not channels:
                self.error(session, message, "No such channel")
                return
        wanted = [v.strip() for v in (message.get("Variables") or "").split(",") if v.strip()]
        now = self.pbx.clock.now()
        items = []
        for channel in channels:
            headers: Headers = [("Privilege", "Call"), *channel.snapshot()]
            headers += [
                ("Type", "Local"), ("DNID", ""), ("EffectiveConnectedLineNum", channel.conn_num),
                ("EffectiveConnectedLineName", channel.conn_name), ("TimeToHangup", "0"),
                ("BridgeID", channel.bridge.uniqueid if channel.bridge else ""), ("Application", channel.app),
                ("Data", channel.appdata), ("Nativeformats", "(slin)"), ("Readformat", "slin"),
                ("Readtrans", ""), ("Writeformat", "slin"), ("Writetrans", ""), ("Callgroup", "0"),
                ("Pickupgroup", "0"), ("Seconds", str(int(now - channel.created))),
            ]  # fmt: skip
            headers += [("Variable", f"{v}={self.pbx.lookup(channel, v) or ''}") for v in wanted]
            items.append(("Status", headers + self._aid(message)))
        self.send_list(
            session, message, "Channel status will follow", items, "StatusComplete", items_header=True
        )

    def core_show_channels(self, session: Session, message: Message) -> None:
        now = self.pbx.clock.now()
        items = [
            ("CoreShowChannel", self._aid(message) + c.snapshot() + [
                ("Application", c.app), ("ApplicationData", c.appdata), ("Duration", _duration(now - c.created)),
                ("BridgeId", c.bridge.uniqueid if c.bridge else ""),
            ])
            for c in self.pbx.live_channels()
        ]  # fmt: skip
        self.send_list(session, message, "Channels will follow", items, "CoreShowChannelsComplete")

    def core_status(self, session: Session, message: Message) -> None:
        pbx = self.pbx
        started, reloaded = time.gmtime(pbx.started_wall), time.gmtime(pbx.reloaded_wall)
        calls = len({c.linkedid for c in pbx.live_channels()})
        session.respond(message, "Success", [
            ("CoreStartupDate", time.strftime("%Y-%m-%d", started)),
            ("CoreStartupTime", time.strftime("%H:%M:%S", started)),
            ("CoreReloadDate", time.strftime("%Y-%m-%d", reloaded)),
            ("CoreReloadTime", time.strftime("%H:%M:%S", reloaded)),
            ("CoreCurrentCalls", str(calls)), ("CoreProcessedCalls", str(pbx.processed_calls)),
        ])  # fmt: skip

    def core_settings(self, session: Session, message: Message) -> None:
        session.respond(message, "Success", [
            ("AMIversion", AMI_VERSION), ("AsteriskVersion", ASTERISK_VERSION), ("SystemName", ""),
            ("CoreMaxCalls", "0"), ("CoreMaxLoadAvg", "0.000000"), ("CoreRunUser", ""), ("CoreRunGroup", ""),
            ("CoreMaxFilehandles", "0"), ("CoreRealTimeEnabled", "No"), ("CoreCDRenabled", "Yes"),
            ("CoreHTTPenabled", "No"), ("SoundsSearchCustomDir", "No"),
        ])  # fmt: skip

    def command(self, session: Session, message: Message) -> None:
        text = " ".join((message.get("Command") or "").split())
        try:
            output = self.cli(text)
        except KeyError:
            words = text.split()
            hint = " ".join(words[:2])
            session.respond(message, "Error", [
                ("Message", "Command output follows"),
                ("Output", f"No such command '{text}' (type 'core show help {hint}' for other possible commands)"),
            ])  # fmt: skip
            return
        session.respond(
            message, "Success", [("Message", "Command output follows")] + [("Output", o) for o in output]
        )

    def cli(self, text: str) -> list[str]:
        """The few CLI commands the gateway uses; KeyError for any other."""
        pbx = self.pbx
        lowered = text.lower()
        uptime = int(pbx.clock.wall() - pbx.started_wall)
        if lowered == "core show version":
            return [f"Asterisk {ASTERISK_VERSION} (hotline-gateway simulator, no media, Local channels only)"]
        if lowered == "core show uptime":
            return [
                f"System uptime: {uptime} seconds",
                f"Last reload: {int(pbx.clock.wall() - pbx.reloaded_wall)} seconds",
            ]
        if lowered == "dialplan reload":
            self.sim.reload("pbx_config.so")
            return ["Dialplan reloaded."]
        if lowered in ("queue reload all", "queue reload members", "queue reload parameters"):
            self.sim.reload("app_queue.so")
            return [""]
        if lowered.startswith("queue show"):
            name = text[len("queue show") :].strip()
            return self.queue_show(name or None)
        if lowered in (
            "core stop now",
            "core stop gracefully",
            "core restart now",
            "core restart gracefully",
        ):
            pbx.later(0.0, functools.partial(self.sim.request_shutdown, restart="restart" in lowered))
            return [""]
        raise KeyError(text)

    def queue_show(self, name: str | None) -> list[str]:
        engine, now_wall = self.pbx.queues, self.pbx.clock.wall()
        queues = [q for q in engine.queues.values() if name is None or q.name == name]
        if name is not None and not queues:
            return [f"No such queue: {name}."]
        lines: list[str] = []
        for q in queues:
            perf = q.service_level_perf()
            lines.append(f"{q.name} has {len(q.entries)} calls (max {q.spec.maxlen or 'unlimited'}) in "
                         f"'{q.spec.strategy}' strategy ({q.holdtime}s holdtime, {q.talktime}s talktime), W:{q.spec.weight}, "
                         f"C:{q.completed}, A:{q.abandoned}, SL:{perf}%, SL2:{perf}% within {q.spec.servicelevel}s")  # fmt: skip
            lines.append("   Members: " if q.members else "   No Members")
            for m in q.members:
                state = "In use" if m.status == 2 else "Not in use"
                paused = (
                    f" (paused:{m.paused_reason})"
                    if m.paused and m.paused_reason
                    else " (paused)"
                    if m.paused
                    else ""
                )
                last = f"last was {int(now_wall - m.last_call)} secs ago" if m.calls else "no calls yet"
                ring = "ringinuse enabled" if m.ringinuse else "ringinuse disabled"
                lines.append(f"      {m.name} ({m.interface}){' (dynamic)' if m.dynamic else ''} ({ring}){paused} "
                             f"({state}) has taken {m.calls} calls ({last}) (login was {int(now_wall - m.login_time)} secs ago)")  # fmt: skip
            if q.entries:
                lines.append("   Callers: ")
                for i, e in enumerate(q.entries, 1):
                    lines.append(f"      {i}. {e.channel.name} (wait: {_duration(self.pbx.clock.now() - e.joined)[3:]}, "
                                 f"prio: {e.prio})")  # fmt: skip
            else:
                lines.append("   No Callers")
            lines += ["", ""]
        return lines

    def reload(self, session: Session, message: Message) -> None:
        module = message.get("Module")
        found = self.sim.reload(module)
        if found:
            self.ok(session, message, "Module Reloaded")
        else:
            self.error(session, message, "No such module")
        self.sim.server.emit(
            "system", "Reload", [("Module", module or "All"), ("Status", "0" if found else "2")]
        )

    def user_event(self, session: Session, message: Message) -> None:
        name = message.get("UserEvent")
        if not name:
            self.error(session, message, "UserEvent header missing")
            return
        self.ok(session, message, "Event Sent")
        body = [(k, v) for k, v in message.headers if k.lower() not in ("action", "userevent", "actionid")]
        self.sim.server.emit("user", "UserEvent", [("UserEvent", name), *self._aid(message), *body])

    # -- AstDB ----------------------------------------------------------------------------------------
    def db_put(self, session: Session, message: Message) -> None:
        family, key = message.get("Family"), message.get("Key")
        if not family or not key:
            self.error(session, message, "No family specified" if not family else "No key specified")
            return
        self.pbx.astdb[f"/{family}/{key}"] = message.get("Val") or ""
        self.ok(session, message, "Updated database successfully")

    def db_get(self, session: Session, message: Message) -> None:
        family, key = message.get("Family") or "", message.get("Key") or ""
        value = self.pbx.astdb.get(f"/{family}/{key}")
        if value is None:
            self.error(session, message, "Database entry not found")
            return
        self.send_list(session, message, "Result will follow",
                       [("DBGetResponse", [("Family", family), ("Key", key), ("Val", value), *self._aid(message)])],
                       "DBGetComplete")  # fmt: skip

    def _tree(self, message: Message) -> list[tuple[str, str]]:
        prefix = f"/{message.get('Family') or ''}"
        if message.get("Key"):
            prefix += f"/{message.get('Key')}"
        return sorted((k, v) for k, v in self.pbx.astdb.items() if k == prefix or k.startswith(prefix + "/"))

    def db_get_tree(self, session: Session, message: Message) -> None:
        entries = self._tree(message)
        if not entries:
            self.error(session, message, "Database entry not found")
            return
        self.send_list(session, message, "Result will follow",
                       [("DBGetTreeResponse", [("Key", k), ("Val", v), *self._aid(message)]) for k, v in entries],
                       "DBGetTreeComplete")  # fmt: skip

    def db_del(self, session: Session, message: Message) -> None:
        key = f"/{message.get('Family') or ''}/{message.get('Key') or ''}"
        if self.pbx.astdb.pop(key, None) is None:
            self.error(session, message, "Database entry not found")
            return
        self.ok(session, message, "Key deleted successfully")

    def db_del_tree(self, session: Session, message: Message) -> None:
        entries = self._tree(message)
        if not entries:
            self.error(session, message, "Database entry not found")
            return
        for key, _ in entries:
            del self.pbx.astdb[key]
        self.ok(session, message, "Key tree deleted successfully")

    # -- app_queue ------------------------------------------------------------------------------------
    def queue_status(self, session: Session, message: Message) -> None:
        engine, aid = self.pbx.queues, self._aid(message)
        name, member_filter = message.get("Queue"), (message.get("Member") or "").lower()
        now = self.pbx.clock.now()
        items: list[tuple[str, Headers]] = []
        for q in engine.queues.values():
            if name and q.name != name:
                continue
            perf2 = (
                (q.completed_in_sl / (q.completed + q.abandoned) * 100) if q.completed + q.abandoned else 0.0
            )
            items.append(("QueueParams", [
                ("Queue", q.name), ("Max", str(q.spec.maxlen)), ("Strategy", q.spec.strategy),
                ("Calls", str(len(q.entries))), ("Holdtime", str(q.holdtime)), ("TalkTime", str(q.talktime)),
                ("Completed", str(q.completed)), ("Abandoned", str(q.abandoned)),
                ("ServiceLevel", str(q.spec.servicelevel)), ("ServicelevelPerf", q.service_level_perf()),
                ("ServicelevelPerf2", f"{perf2:.1f}"), ("Weight", str(q.spec.weight)), *aid,
            ]))  # fmt: skip
            for m in q.members:
                if member_filter and m.interface.lower() != member_filter:
                    continue
                items.append(("QueueMember", [
                    ("Queue", q.name), ("Name", m.name), ("Location", m.interface),
                    ("StateInterface", m.state_interface), ("Membership", "dynamic" if m.dynamic else "static"),
                    ("Penalty", str(m.penalty)), ("CallsTaken", str(m.calls)), ("LastCall", str(int(m.last_call))),
                    ("LastPause", str(int(m.last_pause))), ("LoginTime", str(int(m.login_time))),
                    ("InCall", str(int(m.in_call))), ("Status", str(m.status)), ("Paused", str(int(m.paused))),
                    ("PausedReason", m.paused_reason), ("Wrapuptime", str(m.wrapuptime)), *aid,
                ]))  # fmt: skip
            for position, entry in enumerate(q.entries, 1):
                c = entry.channel
                items.append(("QueueEntry", [
                    ("Queue", q.name), ("Position", str(position)), ("Channel", c.name), ("Uniqueid", c.uniqueid),
                    ("CallerIDNum", c.cid_num), ("CallerIDName", c.cid_name), ("ConnectedLineNum", c.conn_num),
                    ("ConnectedLineName", c.conn_name), ("Wait", str(int(now - entry.joined))),
                    ("Priority", str(entry.prio)), *aid,
                ]))  # fmt: skip
        self.send_list(session, message, "Queue status will follow", items, "QueueStatusComplete")

    def queue_summary(self, session: Session, message: Message) -> None:
        engine, name, now = self.pbx.queues, message.get("Queue"), self.pbx.clock.now()
        items: list[tuple[str, Headers]] = []
        for q in engine.queues.values():
            if name and q.name != name:
                continue
            available = sum(1 for m in q.members if engine.available(m))
            longest = max((int(now - e.joined) for e in q.entries), default=0)
            items.append(("QueueSummary", [
                ("Queue", q.name), ("LoggedIn", str(len(q.members))), ("Available", str(available)),
                ("Callers", str(len(q.entries))), ("HoldTime", str(q.holdtime)), ("TalkTime", str(q.talktime)),
                ("LongestHoldTime", str(longest)), *self._aid(message),
            ]))  # fmt: skip
        self.send_list(session, message, "Queue summary will follow", items, "QueueSummaryComplete")

    def _queue_call(self, session: Session, message: Message, success: str, work: Callable[[], None]) -> None:
        try:
            with self.pbx.holding():  # member events follow the response, as in the traces
                work()
        except QueueError as exc:
            self.error(session, message, exc.message)
            return
        self.ok(session, message, success)
        self.pbx.drain()

    def queue_add(self, session: Session, message: Message) -> None:
        queue, interface = message.get("Queue"), message.get("Interface")
        if not queue or not interface:
            self.error(session, message, "'Queue' and 'Interface' not specified.")
            return
        penalty_text = (message.get("Penalty") or "0").strip()
        self._queue_call(session, message, "Added interface to queue", lambda: self.pbx.queues.add_member(
            queue, interface, penalty=int(penalty_text) if penalty_text.lstrip("-").isdigit() else 0,
            paused=_flag(message.get("Paused")), name=message.get("MemberName") or "",
            state_interface=message.get("StateInterface") or "", reason=message.get("Reason") or "",
        ))  # fmt: skip

    def queue_remove(self, session: Session, message: Message) -> None:
        queue, interface = message.get("Queue"), message.get("Interface")
        if not queue or not interface:
            self.error(session, message, "Need 'Queue' and 'Interface' parameters.")
            return
        self._queue_call(session, message, "Removed interface from queue",
                         lambda: self.pbx.queues.remove_member(queue, interface))  # fmt: skip

    def queue_pause(self, session: Session, message: Message) -> None:
        interface, paused_text = message.get("Interface"), message.get("Paused")
        if not interface or paused_text is None:
            self.error(session, message, "Need 'Interface' and 'Paused' parameters.")
            return
        paused = _flag(paused_text)
        self._queue_call(session, message,
                         "Interface paused successfully" if paused else "Interface unpaused successfully",
                         lambda: self.pbx.queues.pause(message.get("Queue") or "", interface, paused,
                                                       message.get("Reason") or ""))  # fmt: skip

    def queue_penalty(self, session: Session, message: Message) -> None:
        interface, penalty_text = message.get("Interface"), (message.get("Penalty") or "").strip()
        if not interface or not penalty_text.lstrip("-").isdigit():
            self.error(session, message, "Need 'Interface' and 'Penalty' parameters.")
            return
        self._queue_call(session, message, "Interface penalty set successfully",
                         lambda: self.pbx.queues.set_penalty(message.get("Queue") or "", interface, int(penalty_text)))  # fmt: skip

    def queue_ringinuse(self, session: Session, message: Message) -> None:
        interface, value = message.get("Interface"), message.get("RingInUse")
        if not interface or value is None:
            self.error(session, message, "Need 'Interface' and 'RingInUse' parameters.")
            return
        self._queue_call(session, message, "Interface ringinuse set successfully",
                         lambda: self.pbx.queues.set_ringinuse(message.get("Queue") or "", interface, _flag(value)))  # fmt: skip

    # -- ConfBridge -----------------------------------------------------------------------------------
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
