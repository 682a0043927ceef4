"""app_queue actions: QueueStatus, QueueSummary and the member actions (add, remove, pause, penalty, ringinuse)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.ami.protocol import Message
from gateway.sim.actions.base import ActionGroup, flag
from gateway.sim.events import Headers
from gateway.sim.queues import QueueError

if TYPE_CHECKING:
    from gateway.sim.manager import Session


class QueueActions(ActionGroup):
    """Queue status lists and queue member actions."""

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
            paused=flag(message.get("Paused")), name=message.get("MemberName") or "",
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
        paused = flag(paused_text)
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
                         lambda: self.pbx.queues.set_ringinuse(message.get("Queue") or "", interface, flag(value)))  # fmt: skip
