"""The table of AMI actions the simulated PBX answers, built from the handler groups beside it.

The groups (session, channels, status, astdb, queues, confbridge) answer with Asterisk 22's words
and shapes (trace 08); errors use the texts Asterisk uses. Queue and ConfBridge actions belong to
modules that are not loaded while the PBX boots: until FullyBooted they are "Invalid/unknown
command" (trace 11d).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.ami.protocol import Message
from gateway.sim.actions.astdb import AstDbActions
from gateway.sim.actions.base import SimContext
from gateway.sim.actions.channels import ChannelActions
from gateway.sim.actions.confbridge import ConfBridgeActions
from gateway.sim.actions.queues import QueueActions
from gateway.sim.actions.session import SessionActions
from gateway.sim.actions.status import StatusActions

if TYPE_CHECKING:
    from gateway.sim.manager import Session


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


class Actions:
    """Every action the simulated PBX answers, by group, registered in one table."""

    def __init__(self, sim: SimContext) -> None:
        self.session = SessionActions(sim)
        self.channels = ChannelActions(sim)
        self.status = StatusActions(sim)
        self.astdb = AstDbActions(sim)
        self.queues = QueueActions(sim)
        self.confbridge = ConfBridgeActions(sim)

    def table(self) -> ActionTable:
        core, queue, conf = None, "app_queue", "app_confbridge"
        s, c, st, db, q, cb = (
            self.session,
            self.channels,
            self.status,
            self.astdb,
            self.queues,
            self.confbridge,
        )
        rows: list[tuple[str, Callable[[Session, Message], None], tuple[str, ...], str | None, str]] = [
            ("Login", s.login, (), core, "Login Manager."),
            ("Logoff", s.logoff, (), core, "Logoff Manager."),
            ("Challenge", s.challenge, (), core, "Generate Challenge for MD5 Auth."),
            ("Ping", s.ping, (), core, "Keepalive command."),
            ("Events", s.events, (), core, "Control Event Flow."),
            ("Filter", s.filter, ("system",), core, "Dynamically add filters for the current manager session."),
            ("ListCommands", s.list_commands, (), core, "List available manager commands."),
            ("Originate", c.originate, ("originate",), core, "Originate a call."),
            ("Hangup", c.hangup, ("system", "call"), core, "Hangup channel."),
            ("Redirect", c.redirect, ("call",), core, "Redirect (transfer) a call."),
            ("BlindTransfer", c.blind_transfer, ("call",), core, "Blind transfer channel(s) to the given destination"),
            ("Atxfer", c.atxfer, ("call",), core, "Attended transfer."),
            ("CancelAtxfer", c.cancel_atxfer, ("call",), core, "Cancel an attended transfer."),
            ("Setvar", c.setvar, ("call",), core, "Sets a channel variable or function value."),
            ("Getvar", c.getvar, ("call", "reporting"), core, "Gets a channel variable or function value."),
            ("Status", st.status, ("system", "call", "reporting"), core, "List channel status."),
            ("CoreShowChannels", st.core_show_channels, ("system", "reporting"), core,
             "List currently active channels."),
            ("CoreStatus", st.core_status, ("system", "reporting"), core, "Show PBX core status variables."),
            ("CoreSettings", st.core_settings, ("system", "reporting"), core, "Show PBX core settings (version etc)."),
            ("Command", st.command, ("command",), core, "Execute Asterisk CLI Command."),
            ("Reload", st.reload, ("system", "config"), core, "Send a reload event."),
            ("UserEvent", st.user_event, ("user",), core, "Send an arbitrary event."),
            ("DBPut", db.db_put, ("system",), core, "Put DB entry."),
            ("DBGet", db.db_get, ("system", "reporting"), core, "Get DB Entry."),
            ("DBGetTree", db.db_get_tree, ("system", "reporting"), core,
             "Get DB entries, optionally at a particular family/key"),
            ("DBDel", db.db_del, ("system",), core, "Delete DB entry."),
            ("DBDelTree", db.db_del_tree, ("system",), core, "Delete DB Tree."),
            ("QueueStatus", q.queue_status, (), queue, "Show queue status."),
            ("QueueSummary", q.queue_summary, (), queue, "Show queue summary."),
            ("QueueAdd", q.queue_add, ("agent",), queue, "Add interface to queue."),
            ("QueueRemove", q.queue_remove, ("agent",), queue, "Remove interface from queue."),
            ("QueuePause", q.queue_pause, ("agent",), queue, "Makes a queue member temporarily unavailable."),
            ("QueuePenalty", q.queue_penalty, ("agent",), queue, "Set the penalty for a queue member."),
            ("QueueMemberRingInUse", q.queue_ringinuse, ("agent",), queue,
             "Set the ringinuse value for a queue member."),
            ("ConfbridgeList", cb.confbridge_list, ("reporting",), conf, "List participants in a conference."),
            ("ConfbridgeListRooms", cb.confbridge_rooms, ("reporting",), conf, "List active conferences."),
            ("ConfbridgeKick", cb.confbridge_kick, ("call",), conf, "Kick a Confbridge user."),
        ]  # fmt: skip
        return ActionTable([ActionSpec(*row) for row in rows])
