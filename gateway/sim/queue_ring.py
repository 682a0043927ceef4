"""app_queue's member side: the ring strategy, ringing members, connecting a caller to one, waking queues.

The strategies (ringall, linear, rrmemory, rrordered, leastrecent, fewestcalls, random) choose
among the free members of the lowest penalty tier; a waiting caller looks again once a second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from gateway.sim.apps import answer, run_of
from gateway.sim.bridge import Bridge, InBridge
from gateway.sim.channel import UP, Channel
from gateway.sim.events import Headers
from gateway.sim.queues import Attempt, Member, Queue, QueueCall, QueueEntry, Ringing

if TYPE_CHECKING:
    from gateway.sim.queue_engine import QueueEngine


class QueueRinger:
    """Rings members for the queues' waiting callers and connects the one who answers."""

    def __init__(self, engine: QueueEngine) -> None:
        self.engine = engine
        self.pbx = engine.pbx

    def choose(self, entry: QueueEntry) -> list[Member]:
        queue = entry.queue
        candidates = [(pos, m) for pos, m in enumerate(queue.members) if self.engine.available(m)]
        if not candidates:
            return []
        best = min(m.penalty for _, m in candidates)
        tier = [(pos, m) for pos, m in candidates if m.penalty == best]
        strategy = queue.spec.strategy
        if strategy == "ringall":
            return [m for _, m in tier]
        if strategy == "random":
            return [self.pbx.rng.choice(tier)[1]]
        if strategy == "leastrecent":
            return [min(tier, key=lambda pm: (pm[1].last_call, pm[0]))[1]]
        if strategy == "fewestcalls":
            return [min(tier, key=lambda pm: (pm[1].calls, pm[0]))[1]]
        start = queue.rrpos if strategy in ("rrmemory", "rrordered") else entry.linpos
        # Members from the remembered position on come first, then the ones before it.
        return [min(tier, key=lambda pm: (pm[0] < start, pm[0]))[1]]

    def dispatch(self, queue: Queue) -> None:
        """Ring members for waiting callers, head of the line first (autofill: as many as free)."""
        self.leave_if_empty(queue)
        for index, entry in enumerate(list(queue.entries)):
            if entry.state == "ringing" and not queue.spec.autofill:
                return
            if entry.state != "waiting":
                continue
            if not queue.spec.autofill and index > 0:
                return
            chosen = self.choose(entry)
            if not chosen:
                return
            self.ring(entry, chosen)

    def leave_if_empty(self, queue: Queue) -> None:
        if queue.entries and self.engine.is_empty(queue, queue.spec.leavewhenempty, joining=False):
            for entry in list(queue.entries):
                if entry.state in ("waiting", "retry"):
                    self.engine.callers.leave(entry, status="LEAVEEMPTY")
                    run_of(entry.channel).done()

    # -- ringing ------------------------------------------------------------------------------------
    def ring(self, entry: QueueEntry, members: list[Member]) -> None:
        pbx, caller, queue = self.pbx, entry.channel, entry.queue
        entry.state = "ringing"
        for member in members:
            position = queue.members.index(member)
            if queue.spec.strategy in ("rrmemory", "rrordered"):
                queue.rrpos = position + 1 if position + 1 < len(queue.members) else 0
            elif queue.spec.strategy == "linear":
                entry.linpos = position + 1
            parsed = pbx.parse_local(member.interface)
            if parsed is None:
                continue
            exten, context, optimize = parsed
            one, two = pbx.local_pair(exten, context, linkedid=caller.linkedid, parent=caller)
            attempt = Attempt(entry, member, one, two, pbx.clock.now())
            entry.attempts.append(attempt)
            member.reserved = entry
            one.app, one.appdata = "AppQueue", "(Outgoing Line)"
            one.activity = Ringing(self, attempt)
            one.tags["member"] = member.interface
            two.tags["member"] = member.interface
            pbx.newexten(one)
            pbx.set_callerid(one, caller.cid_num, caller.cid_name)
            dialed = member.interface[len("Local/") :]
            pbx.set_var(one, "DIALEDPEERNUMBER", dialed)
            pbx.set_var(two, "DIALEDPEERNUMBER", dialed)
            two.conn_num, two.conn_name = caller.cid_num, caller.cid_name
            pbx.set_callerid(two, caller.cid_num, caller.cid_name)
            pbx.channel_event("NewConnectedLine", two)
            pbx.local_bridge_event(one, two, optimize=optimize)
            self.agent_event("AgentCalled", caller, one, member, queue)
            pbx.dial_event("DialBegin", caller, one, [("DialString", member.interface)])
            one.exten = caller.exten  # the dialled leg takes the caller's extension (AgentCalled shows it)
            attempt.timer = pbx.later(queue.spec.timeout, self.no_answer, attempt)
            pbx.start_dialplan(two, context, exten, 1)

    def agent_event(self, name: str, caller: Channel | None, agent: Channel | None, member: Member, queue: Queue,
                    extra: Iterable[tuple[str, str]] = ()) -> None:  # fmt: skip
        if not self.pbx.wants("agent"):
            return
        headers: Headers = []
        if caller is not None:
            headers += caller.snapshot()
        if agent is not None:
            headers += agent.snapshot("Dest")
        headers += [("Queue", queue.name), ("Interface", member.interface), ("MemberName", member.name)]
        self.pbx.emit("agent", name, headers + list(extra))

    def member_ringing(self, attempt: Attempt) -> None:
        pbx, caller, one = self.pbx, attempt.entry.channel, attempt.one
        pbx.newexten(one)
        pbx.set_connected(one, caller.cid_num, caller.cid_name)
        pbx.dial_event("DialState", caller, one, [("DialStatus", "RINGING")])

    def no_answer(self, attempt: Attempt) -> None:
        if attempt.done:
            return
        entry, pbx = attempt.entry, self.pbx
        ring_ms = round((pbx.clock.now() - attempt.started) * 1000)
        self.agent_event("AgentRingNoAnswer", entry.channel, attempt.one, attempt.member, entry.queue,
                         [("RingTime", str(ring_ms))])  # fmt: skip
        pbx.dial_event("DialEnd", entry.channel, attempt.one, [("DialStatus", "NOANSWER")])
        self.cancel(attempt)
        if entry.queue.spec.autopause and not attempt.member.paused:
            self.engine.set_paused(entry.queue, attempt.member, True, "Auto-Pause")
        self.retry_later(entry)

    def cancel(self, attempt: Attempt) -> None:
        """Stop ringing one member (no answer, answered elsewhere, caller gone)."""
        attempt.done = True
        if attempt.timer is not None:
            attempt.timer.cancel()
        entry = attempt.entry
        self.pbx.dial_event("DialEnd", entry.channel, attempt.one, [("DialStatus", "CANCEL")])
        self.release(attempt)
        self.pbx.softhangup(attempt.one, 0)

    def release(self, attempt: Attempt) -> None:
        if attempt in attempt.entry.attempts:
            attempt.entry.attempts.remove(attempt)
        if attempt.member.reserved is attempt.entry:
            attempt.member.reserved = None

    def attempt_failed(self, attempt: Attempt, status: str) -> None:
        """The member side hung up before answering (a seat rejecting the call)."""
        attempt.done = True
        if attempt.timer is not None:
            attempt.timer.cancel()
        self.pbx.dial_event("DialEnd", attempt.entry.channel, attempt.one, [("DialStatus", status)])
        self.release(attempt)
        self.retry_later(attempt.entry)

    def retry_later(self, entry: QueueEntry) -> None:
        if entry.state != "ringing" or entry.attempts:
            return
        entry.state = "retry"
        entry.timers.append(self.pbx.later(entry.queue.spec.retry, self._retry, entry))

    def _retry(self, entry: QueueEntry) -> None:
        if entry.state == "retry":
            entry.state = "waiting"
            self.dispatch(entry.queue)

    # -- connecting ---------------------------------------------------------------------------------
    def connect(self, attempt: Attempt) -> None:
        pbx, entry = self.pbx, attempt.entry
        caller, queue, member, agent = entry.channel, entry.queue, attempt.member, attempt.one
        if attempt.timer is not None:
            attempt.timer.cancel()
        attempt.done = True
        pbx.dial_event("DialEnd", caller, agent, [("DialStatus", "ANSWER")])
        for other in list(entry.attempts):
            if other is not attempt:
                self.cancel(other)
        self.release(attempt)
        now = pbx.clock.now()
        holdtime = int(now - entry.joined)
        ringtime = int(now - attempt.started)
        queue.holdtime = (queue.holdtime * 3 + holdtime) // 4
        pbx.channel_event("MusicOnHoldStop", caller)
        spec = queue.spec
        if spec.setinterfacevar:
            values = [("MEMBERINTERFACE", member.interface), ("MEMBERNAME", member.name),
                      ("MEMBERCALLS", str(member.calls)), ("MEMBERLASTCALL", str(int(member.last_call))),
                      ("MEMBERPENALTY", str(member.penalty)), ("MEMBERDYNAMIC", str(int(member.dynamic))),
                      ("MEMBERREALTIME", "0")]  # fmt: skip
            for channel in (caller, agent):
                for name, value in values:
                    pbx.set_var(channel, name, value)
        if spec.setqueueentryvar:
            for channel in (caller, agent):
                pbx.set_var(channel, "QEHOLDTIME", str(holdtime))
                pbx.set_var(channel, "QEORIGINALPOS", str(entry.original_position))
        self.engine.callers.queue_vars(queue, caller)
        self.engine.callers.queue_vars(queue, agent)
        position = queue.position_of(entry)
        queue.entries.remove(entry)
        entry.state = "connected"
        self.engine.queue_device(queue)
        pbx.channel_event("QueueCallerLeave", caller,
                          [("Queue", queue.name), ("Position", str(position)), ("Count", str(len(queue.entries)))],
                          category="agent")  # fmt: skip
        pbx.set_var(caller, "QUEUEPOSITION", str(position))
        pbx.set_var(caller, "QUEUEWAIT", str(holdtime))
        pbx.set_var(caller, "QUEUEWAIT_MS", str(int((now - entry.joined) * 1000)))
        self.agent_event("AgentConnect", caller, agent, member, queue,
                         [("HoldTime", str(holdtime)), ("RingTime", str(ringtime))])  # fmt: skip
        if caller.state != UP:
            answer(pbx, caller)  # a caller still ringing (an Atxfer target leg) is answered by the bridge
        bridge = Bridge(pbx, pbx.new_bridge_id())
        bridge.announce()
        bridge.enter(agent)
        bridge.enter(caller)
        bridge.clear_transfer_marks(caller)
        bridge.set_peer_vars()
        record = QueueCall(
            queue, member, caller, agent, entry.joined, now, holdtime <= spec.servicelevel, bridge
        )
        entry.record = record
        for channel in (caller, agent):
            self.engine.watch.setdefault(channel.uniqueid, []).append(record)
        agent.activity = InBridge(pbx)
        for mem in self.engine.memberships(member.interface) if self.engine.shared_lastcall else [member]:
            mem.in_call = True
        for timer in entry.timers:
            timer.cancel()
        self.wake(queue)

    def wake_all(self) -> None:
        for queue in self.engine.queues.values():
            self.wake(queue)

    def wake(self, queue: Queue) -> None:
        """A member may be free: waiting callers notice at their next once-a-second check.

        app_queue does not react to a member becoming free; each waiting caller looks again every
        second (trace 08: a member unpaused 5 ms before the caller hung up was never rung).
        """
        head = next((e for e in queue.entries if e.state == "waiting"), None)
        if head is None:
            return
        now = self.pbx.clock.now()
        at = head.joined + math.floor(now - head.joined) + 1.0
        if queue.wake_at is not None and now <= queue.wake_at <= at:
            return
        queue.wake_at = at
        self.pbx.later(at - now, self._woken, queue, at)

    def _woken(self, queue: Queue, at: float) -> None:
        if queue.wake_at == at:
            queue.wake_at = None
            self.dispatch(queue)
