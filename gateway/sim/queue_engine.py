"""app_queue's engine: the queues and their members, configuration, and the counters a call completes.

``QueueEngine`` is what the PBX, the apps and the AMI actions talk to: (re)loading queues, member
state and management (QueueAdd, QueueRemove, QueuePause, QueuePenalty, ring in use), availability,
and completion (``AgentComplete``, the queue and member counters). Ringing members is
``queue_ring.py``, the callers' side of Queue() is ``queue_callers.py``; the model is ``queues.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.sim.bridge import Bridge
from gateway.sim.channel import Channel
from gateway.sim.queue_callers import QueueCallers
from gateway.sim.queue_ring import QueueRinger
from gateway.sim.queues import (
    INUSE,
    NOT_INUSE,
    Member,
    MemberSpec,
    Queue,
    QueueCall,
    QueueError,
    QueueSpec,
    empty_conditions,
)

if TYPE_CHECKING:
    from gateway.sim.pbx import Pbx


class QueueEngine:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.queues: dict[str, Queue] = {}
        self.watch: dict[str, list[QueueCall]] = {}  # uniqueid -> open connections
        self.loaded = True  # False while the PBX boots: app_queue is not registered yet
        self.shared_lastcall = True
        self.ringer = QueueRinger(self)
        self.callers = QueueCallers(self)

    # -- configuration --------------------------------------------------------------------------
    def configure(self, specs: list[QueueSpec]) -> None:
        """(Re)load queues; members and statistics of queues that still exist are kept (as reload)."""
        now = self.pbx.clock.wall()
        fresh: dict[str, Queue] = {}
        for spec in specs:
            old = self.queues.get(spec.name)
            queue = Queue(spec, now)
            if old is not None:
                queue.entries = old.entries
                for entry in queue.entries:
                    entry.queue = queue
                dynamic = [m for m in old.members if m.dynamic]
                kept = {m.interface.lower(): m for m in old.members}
                queue.members = [kept.get(m.interface.lower(), m) for m in queue.members] + dynamic
                queue.rrpos, queue.holdtime, queue.talktime = old.rrpos, old.holdtime, old.talktime
                queue.completed, queue.abandoned, queue.completed_in_sl = (
                    old.completed, old.abandoned, old.completed_in_sl)  # fmt: skip
            fresh[spec.name] = queue
        self.queues = fresh

    def get(self, name: str) -> Queue | None:
        return self.queues.get(name)

    # -- members: availability, choice -----------------------------------------------------------
    def available(self, member: Member) -> bool:
        if member.paused or member.reserved is not None:
            return False
        if not member.ringinuse and (member.status == INUSE or member.in_call):
            return False
        return self.pbx.clock.now() >= member.wrapup_until

    def is_empty(self, queue: Queue, rule: str, *, joining: bool) -> bool:
        conditions = empty_conditions(rule, joining=joining)
        if not conditions:
            return False
        now = self.pbx.clock.now()
        for member in queue.members:
            if "paused" in conditions and member.paused:
                continue
            if "inuse" in conditions and (member.status == INUSE or member.in_call):
                continue
            if "ringing" in conditions and member.reserved is not None:
                continue
            if "wrapup" in conditions and now < member.wrapup_until:
                continue
            return False
        return True

    # -- completion (AgentComplete) -------------------------------------------------------------------
    def hangup_requested(self, channel: Channel) -> None:
        records = self.watch.get(channel.uniqueid)
        if not records:
            return
        if (
            channel.tags.get("transferer")
            or channel.variables.get("ATTENDEDTRANSFER")
            or channel.variables.get("BLINDTRANSFER")
        ):
            return  # a transfer is under way: its own event completes the call
        for record in list(records):
            self.complete(record, "caller" if channel is record.caller else "agent")

    def transferred(self, bridge: Bridge) -> None:
        for records in list(self.watch.values()):
            for record in list(records):
                if record.bridge is bridge:
                    self.complete(record, "transfer")

    def complete(self, record: QueueCall, reason: str) -> None:
        if record.done:
            return
        record.done = True
        pbx = self.pbx
        now = pbx.clock.now()
        talk = int(now - record.start)
        caller = None if record.caller.dead else record.caller
        agent = None if record.agent.dead else record.agent
        self.ringer.agent_event("AgentComplete", caller, agent, record.member, record.queue,
                         [("HoldTime", str(int(record.start - record.holdstart))), ("TalkTime", str(talk)),
                          ("Reason", reason)])  # fmt: skip
        for channel in (record.caller, record.agent):
            records = self.watch.get(channel.uniqueid, [])
            if record in records:
                records.remove(record)
            if not records:
                self.watch.pop(channel.uniqueid, None)
        queue, member = record.queue, record.member
        queue.completed += 1
        if record.in_service_level:
            queue.completed_in_sl += 1
        queue.talktime = (queue.talktime * 3 + talk) // 4
        wall = pbx.clock.wall()
        for mem in self.memberships(member.interface) if self.shared_lastcall else [member]:
            mem.in_call = False
            mem.last_call = wall
            mem.wrapup_until = now + mem.wrapuptime
        member.calls += 1
        if member.wrapuptime:
            pbx.later(member.wrapuptime, self.ringer.wake_all)
        self.ringer.wake_all()

    # -- member state -------------------------------------------------------------------------------
    def memberships(self, interface: str) -> list[Member]:
        lowered = interface.lower()
        return [m for q in self.queues.values() for m in q.members if m.interface.lower() == lowered]

    def device_changed(self, device: str, state: str) -> None:
        status = INUSE if state == "INUSE" else NOT_INUSE
        changed = False
        for queue in self.queues.values():
            touched = False
            for member in queue.members:
                if member.device == device and member.status != status:
                    member.status = status
                    touched = True
                    self.member_event("QueueMemberStatus", queue, member)
            if touched:
                changed = True
                self.avail_device(queue)
        if changed and status == NOT_INUSE:
            self.ringer.wake_all()

    def member_event(self, name: str, queue: Queue, member: Member) -> None:
        if not self.pbx.wants("agent"):
            return
        self.pbx.emit("agent", name, [
            ("Queue", queue.name), ("MemberName", member.name), ("Interface", member.interface),
            ("StateInterface", member.state_interface), ("Membership", "dynamic" if member.dynamic else "static"),
            ("Penalty", str(member.penalty)), ("CallsTaken", str(member.calls)),
            ("LastCall", str(int(member.last_call))), ("LastPause", str(int(member.last_pause))),
            ("LoginTime", str(int(member.login_time))), ("InCall", str(int(member.in_call))),
            ("Status", str(member.status)), ("Paused", str(int(member.paused))),
            ("PausedReason", member.paused_reason), ("Ringinuse", str(int(member.ringinuse))),
            ("Wrapuptime", str(member.wrapuptime)),
        ])  # fmt: skip

    def queue_device(self, queue: Queue) -> None:
        self.pbx.set_device_state(f"Queue:{queue.name}", "RINGING" if queue.entries else "NOT_INUSE")

    def avail_device(self, queue: Queue) -> None:
        free = any(not m.paused and m.status == NOT_INUSE for m in queue.members)
        self.pbx.set_device_state(f"Queue:{queue.name}_avail", "NOT_INUSE" if free else "INUSE")

    # -- member management (QueueAdd, QueueRemove, QueuePause, QueuePenalty, ring in use) ------------
    def _queue_or_error(self, name: str, message: str) -> Queue:
        queue = self.queues.get(name)
        if queue is None:
            raise QueueError(message, "no_queue")
        return queue

    def add_member(self, queue_name: str, interface: str, *, penalty: int = 0, paused: bool = False,
                   name: str = "", state_interface: str = "", reason: str = "") -> None:  # fmt: skip
        queue = self._queue_or_error(queue_name, "Unable to add interface to queue: No such queue")
        if queue.member(interface) is not None:
            raise QueueError("Unable to add interface: Already there", "exists")
        member = Member(MemberSpec(interface, name or interface, penalty, paused, reason if paused else ""),
                        dynamic=True, ringinuse=queue.spec.ringinuse, wrapuptime=queue.spec.wrapuptime,
                        now_wall=self.pbx.clock.wall())  # fmt: skip
        if state_interface:
            member.state_interface = state_interface
        existing = self.memberships(interface)
        if existing:
            member.status = existing[0].status
        queue.members.append(member)
        self.member_event("QueueMemberAdded", queue, member)
        self.avail_device(queue)
        self.ringer.wake(queue)

    def remove_member(self, queue_name: str, interface: str) -> None:
        queue = self._queue_or_error(queue_name, "Unable to remove interface from queue: No such queue")
        member = queue.member(interface)
        if member is None:
            raise QueueError("Unable to remove interface: Not there", "absent")
        if not member.dynamic:
            raise QueueError("Member not dynamic", "static")
        self.member_event("QueueMemberRemoved", queue, member)
        queue.members.remove(member)
        self.avail_device(queue)
        self.pbx.defer(lambda: self.ringer.leave_if_empty(queue))

    def _targets(self, queue_name: str, interface: str) -> list[tuple[Queue, Member]]:
        queues = (
            [self.queues[queue_name]]
            if queue_name in self.queues
            else []
            if queue_name
            else list(self.queues.values())
        )
        found = [(q, m) for q in queues for m in [q.member(interface)] if m is not None]
        if not found:
            raise QueueError("Interface not found", "not_found")
        return found

    def pause(self, queue_name: str, interface: str, paused: bool, reason: str = "") -> None:
        for queue, member in self._targets(queue_name, interface):
            self.set_paused(queue, member, paused, reason)

    def set_paused(self, queue: Queue, member: Member, paused: bool, reason: str) -> None:
        member.paused = paused
        member.paused_reason = reason if paused else ""
        if paused:
            member.last_pause = self.pbx.clock.wall()
        self.pbx.set_device_state(
            f"Queue:{queue.name}_pause_{member.interface}", "INUSE" if paused else "NOT_INUSE"
        )
        self.avail_device(queue)
        self.member_event("QueueMemberPause", queue, member)
        if paused:
            self.pbx.defer(lambda: self.ringer.leave_if_empty(queue))
        else:
            self.ringer.wake(queue)

    def set_penalty(self, queue_name: str, interface: str, penalty: int) -> None:
        for queue, member in self._targets(queue_name, interface):
            member.penalty = penalty
            self.member_event("QueueMemberPenalty", queue, member)

    def set_ringinuse(self, queue_name: str, interface: str, ringinuse: bool) -> None:
        for queue, member in self._targets(queue_name, interface):
            member.ringinuse = ringinuse
            self.member_event("QueueMemberRinginuse", queue, member)
