"""Status actions: channel lists, core status and settings, the CLI commands, Reload, UserEvent."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from gateway.ami.protocol import Message
from gateway.sim.actions.base import ActionGroup, duration
from gateway.sim.events import Headers
from gateway.sim.manager import AMI_VERSION

if TYPE_CHECKING:
    from gateway.sim.manager import Session

ASTERISK_VERSION = "22.10.1"


class StatusActions(ActionGroup):
    """Actions that report on the PBX or act on it as a whole."""

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
            headers += [("Variable", f"{v}={self.pbx.vars.lookup(channel, v) or ''}") for v in wanted]
            items.append(("Status", headers + self._aid(message)))
        self.send_list(
            session, message, "Channel status will follow", items, "StatusComplete", items_header=True
        )

    def core_show_channels(self, session: Session, message: Message) -> None:
        now = self.pbx.clock.now()
        items = [
            ("CoreShowChannel", self._aid(message) + c.snapshot() + [
                ("Application", c.app), ("ApplicationData", c.appdata), ("Duration", duration(now - c.created)),
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
                    lines.append(f"      {i}. {e.channel.name} (wait: {duration(self.pbx.clock.now() - e.joined)[3:]}, "
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
