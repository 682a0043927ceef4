"""app_queue as the traces show it: queue entries, ringing members, connecting, completing.

Owns queues, members (static and dynamic), callers waiting (entries), ring attempts and the
connection records that end in ``AgentComplete``. Strategies: ringall, linear, rrmemory (and
rrordered), leastrecent, fewestcalls, random; penalties (lowest tier first), pause with reason,
wrap-up, ring timeout and retry, autofill, joinempty / leavewhenempty, caller priority
(``QUEUE_PRIO``), the Queue() timeout argument, an exit key into the queue's ``context``.

Facts from the traces that shape the code:
- ``AgentComplete`` is not sent when the bridge ends but when a HangupRequest / SoftHangupRequest
  is published for the caller (Reason=caller) or the member channel (Reason=agent), or on a blind or
  attended transfer of the queue's bridge (Reason=transfer); that is why a Redirect leaves it
  pending until the caller hangs up, and why the member hanging up a Local member first still
  reads Reason=caller. Its channel blocks appear only for channels still alive.
- ``AgentRingNoAnswer.RingTime`` is milliseconds, ``AgentConnect`` HoldTime/RingTime seconds.
- QueueCallerAbandon comes before QueueCallerLeave, on a hang-up and on Queue()'s timeout alike; ``setinterfacevar``, ``setqueueentryvar`` and
  ``setqueuevar`` decide which VarSet groups a caller and a member get.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.errors import GatewayError
from gateway.sim.apps import answer, run_of
from gateway.sim.bridge import Bridge, InBridge
from gateway.sim.channel import UP, Channel
from gateway.sim.clock import Timer
from gateway.sim.dialplan import split_args
from gateway.sim.events import Headers

if TYPE_CHECKING:
    from gateway.sim.pbx import Pbx

STRATEGIES = ("ringall", "linear", "rrmemory", "rrordered", "leastrecent", "fewestcalls", "random")
NOT_INUSE, INUSE = 1, 2
_STRICT = ("penalty", "invalid", "paused", "unavailable")
_DEFAULT_EMPTY = ("penalty", "invalid", "paused")  # joinempty=no, leavewhenempty=yes
_BOOL_WORDS = {
    "yes": True,
    "true": True,
    "on": True,
    "1": True,
    "no": False,
    "false": False,
    "off": False,
    "0": False,
}


def empty_conditions(rule: str, *, joining: bool) -> tuple[str, ...]:
    """app_queue's reading of joinempty/leavewhenempty: note that yes and no swap between the two."""
    conditions: tuple[str, ...] = ()
    for option in (part.strip().lower() for part in rule.split(",") if part.strip()):
        if option == "loose":
            conditions = ("penalty", "invalid")
        elif option == "strict":
            conditions = _STRICT
        elif option in _BOOL_WORDS:
            conditions = _DEFAULT_EMPTY if _BOOL_WORDS[option] != joining else ()
        else:
            conditions += (option,)
    return conditions


class QueueError(GatewayError):
    """A queue action that Asterisk refuses; ``message`` is Asterisk's own wording.

    ``kind``: no_queue | exists | absent | static | not_found | config (what the dialplan apps map).
    """

    code = "sim.queue"

    def __init__(self, message: str, kind: str = "config") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class MemberSpec:
    interface: str  # Local/1001@agents/n
    name: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""


@dataclass
class QueueSpec:
    """One queue as queues.conf would configure it (what app_queue actually reads)."""

    name: str
    strategy: str = "ringall"
    timeout: int = 15
    retry: int = 5
    wrapuptime: int = 0
    joinempty: str = "yes"
    leavewhenempty: str = "no"
    ringinuse: bool = False
    autofill: bool = True
    autopause: bool = False
    musicclass: str = "default"
    setinterfacevar: bool = False
    setqueueentryvar: bool = False
    setqueuevar: bool = False
    servicelevel: int = 0
    weight: int = 0
    maxlen: int = 0
    context: str = ""  # exit context: a digit pressed while waiting leaves the queue to <context>,<digit>,1
    members: list[MemberSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise QueueError(
                f"queue {self.name}: unknown strategy {self.strategy!r} (one of {', '.join(STRATEGIES)})"
            )


class Member:
    def __init__(
        self, spec: MemberSpec, *, dynamic: bool, ringinuse: bool, wrapuptime: int, now_wall: float
    ) -> None:
        self.interface = spec.interface
        self.name = spec.name or spec.interface
        self.state_interface = spec.interface
        self.penalty = spec.penalty
        self.paused = spec.paused
        self.paused_reason = spec.paused_reason
        self.dynamic = dynamic
        self.ringinuse = ringinuse
        self.wrapuptime = wrapuptime
        self.calls = 0
        self.last_call = 0.0  # wall seconds
        self.last_pause = 0.0
        self.login_time = now_wall
        self.in_call = False
        self.status = NOT_INUSE
        self.reserved: QueueEntry | None = None  # being rung for this entry
        self.wrapup_until = 0.0  # simulated seconds

    @property
    def device(self) -> str:
        """The device whose state drives Status: ``Local/1001@agents/n`` -> ``Local/1001@agents``."""
        return (
            self.state_interface.split("/n", 1)[0]
            if self.state_interface.endswith("/n")
            else self.state_interface
        )


@dataclass(eq=False)
class Attempt:
    entry: QueueEntry
    member: Member
    one: Channel
    two: Channel
    started: float
    timer: Timer | None = None
    done: bool = False


@dataclass(eq=False)
class QueueEntry:
    channel: Channel
    queue: Queue
    original_position: int
    joined: float  # simulated seconds
    prio: int
    options: str
    state: str = "waiting"  # waiting | ringing | retry | connected | gone
    attempts: list[Attempt] = field(default_factory=list)
    linpos: int = 0
    timers: list[Timer] = field(default_factory=list)
    record: QueueCall | None = None


@dataclass(eq=False)
class QueueCall:
    """A connected call, until its AgentComplete."""

    queue: Queue
    member: Member
    caller: Channel
    agent: Channel
    holdstart: float
    start: float
    in_service_level: bool
    bridge: Bridge
    done: bool = False


class Queue:
    def __init__(self, spec: QueueSpec, now_wall: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.members: list[Member] = [
            Member(m, dynamic=False, ringinuse=spec.ringinuse, wrapuptime=spec.wrapuptime, now_wall=now_wall)
            for m in spec.members
        ]
        self.entries: list[QueueEntry] = []
        self.rrpos = 0
        self.holdtime = 0
        self.talktime = 0
        self.completed = 0
        self.abandoned = 0  # app_queue's count: hang-ups and Queue() timeouts alike
        self.timed_out = (
            0  # of those, the timeouts (ground truth for tests: callers who hung up = the difference)
        )
        self.completed_in_sl = 0
        self.wake_at: float | None = None  # the next time waiting callers look for a free member

    def member(self, interface: str) -> Member | None:
        lowered = interface.lower()
        return next((m for m in self.members if m.interface.lower() == lowered), None)

    def position_of(self, entry: QueueEntry) -> int:
        return self.entries.index(entry) + 1

    def service_level_perf(self) -> str:
        return f"{(self.completed_in_sl / self.completed * 100) if self.completed else 0.0:.1f}"


class QueueState:
    """The Queue() application on the caller's channel, from join to the end of the bridge."""

    def __init__(self, engine: QueueEngine, entry: QueueEntry) -> None:
        self.engine = engine
        self.entry = entry

    def stop(self, channel: Channel, why: str) -> None:
        entry = self.entry
        if entry.state == "connected":
            if why == "hangup":
                if channel.bridge is not None:
                    channel.bridge.depart([channel])
                self.engine.after_bridge(entry, hung_up=True)
            else:
                self.engine.after_redirect(entry)
        elif entry.state != "gone":
            if why == "hangup":
                self.engine.abandon(entry)
            else:
                self.engine.leave(entry, status="")

    def bridge_ended(self, channel: Channel) -> None:
        engine, entry = self.engine, self.entry
        run = run_of(channel)
        run.state = None
        engine.after_bridge(entry, hung_up=False)
        if "c" in entry.options:
            run.done()
        else:
            engine.pbx.softhangup(channel, 16)


class Ringing:
    """Owner of a member's ;1 while the queue rings it."""

    def __init__(self, engine: QueueEngine, attempt: Attempt) -> None:
        self.engine = engine
        self.attempt = attempt

    def ringing(self, channel: Channel) -> None:
        self.engine.member_ringing(self.attempt)

    def answered(self, channel: Channel) -> None:
        self.engine.connect(self.attempt)

    def hangup(self, channel: Channel, cause: int) -> None:
        attempt = self.attempt
        if not attempt.done:
            self.engine.attempt_failed(attempt, "BUSY" if cause == 17 else "NOANSWER")
        self.engine.pbx.finish_hangup(channel, cause)

    def redirect(self, channel: Channel) -> None:
        return None

    def bridge_ended(self, channel: Channel) -> None:
        return None


class QueueEngine:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.queues: dict[str, Queue] = {}
        self.watch: dict[str, list[QueueCall]] = {}  # uniqueid -> open connections
        self.loaded = True  # False while the PBX boots: app_queue is not registered yet
        self.shared_lastcall = True

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

    # -- the Queue() application ----------------------------------------------------------------
    def queue_app(self, channel: Channel, data: str) -> bool:
        pbx = self.pbx
        args = split_args(data) + [""] * 5
        queue = self.queues.get(args[0].strip())
        options = args[1]
        for name in (
            "ANSWEREDTIME",
            "ANSWEREDTIME_MS",
            "DIALEDTIME",
            "DIALEDTIME_MS",
            "QUEUEWAIT",
            "QUEUEWAIT_MS",
        ):
            pbx.set_var(channel, name, "")
        if queue is None:
            pbx.set_var(channel, "QUEUESTATUS", "UNKNOWN")
            return False
        if self.is_empty(queue, queue.spec.joinempty, joining=True):
            pbx.set_var(channel, "QUEUESTATUS", "JOINEMPTY")
            return False
        if queue.spec.maxlen and len(queue.entries) >= queue.spec.maxlen:
            pbx.set_var(channel, "QUEUESTATUS", "FULL")
            return False
        prio = _int(channel.variables.get("QUEUE_PRIO"), 0)
        now = pbx.clock.now()
        index = next((i for i, e in enumerate(queue.entries) if e.prio < prio), len(queue.entries))
        entry = QueueEntry(channel, queue, index + 1, now, prio, options)
        queue.entries.insert(index, entry)
        self.queue_device(queue)
        pbx.channel_event("QueueCallerJoin", channel,
                          [("Queue", queue.name), ("Position", str(index + 1)), ("Count", str(len(queue.entries)))],
                          category="agent")  # fmt: skip
        pbx.channel_event("MusicOnHoldStart", channel, [("Class", queue.spec.musicclass)])
        timeout = _int(args[4], 0)
        if timeout > 0:
            entry.timers.append(pbx.later(timeout, self._expired, entry))
        self._plan_exit_key(entry)
        run_of(channel).block(QueueState(self, entry))
        pbx.defer(lambda: self.dispatch(queue))
        return True

    def _expired(self, entry: QueueEntry) -> None:
        if entry.state in ("waiting", "ringing", "retry"):
            self.time_out(entry)
            run_of(entry.channel).done()

    def _plan_exit_key(self, entry: QueueEntry) -> None:
        """A simulated caller who presses a key after waiting ``callback_after`` seconds."""
        key = entry.channel.tags.get("queue_key") or entry.channel.variables.get("SIM_QUEUE_KEY")
        after = entry.channel.tags.get("queue_key_after")
        if not key or not entry.queue.spec.context or after is None:
            return
        entry.timers.append(self.pbx.later(float(after), self._exit_key, entry, str(key)))

    def _exit_key(self, entry: QueueEntry, key: str) -> None:
        if entry.state not in ("waiting", "retry", "ringing"):
            return
        pbx, channel = self.pbx, entry.channel
        if entry.queue.spec.setqueueentryvar:
            pbx.set_var(channel, "QEORIGINALPOS", str(entry.original_position))
        self.leave(entry, status="")
        pbx.goto(channel, entry.queue.spec.context, key, 1)
        run_of(channel).done()

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

    def choose(self, entry: QueueEntry) -> list[Member]:
        queue = entry.queue
        candidates = [(pos, m) for pos, m in enumerate(queue.members) if self.available(m)]
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
        if queue.entries and self.is_empty(queue, queue.spec.leavewhenempty, joining=False):
            for entry in list(queue.entries):
                if entry.state in ("waiting", "retry"):
                    self.leave(entry, status="LEAVEEMPTY")
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
            self.set_paused(entry.queue, attempt.member, True, "Auto-Pause")
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
        self.queue_vars(queue, caller)
        self.queue_vars(queue, agent)
        position = queue.position_of(entry)
        queue.entries.remove(entry)
        entry.state = "connected"
        self.queue_device(queue)
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
            self.watch.setdefault(channel.uniqueid, []).append(record)
        agent.activity = InBridge(pbx)
        for mem in self.memberships(member.interface) if self.shared_lastcall else [member]:
            mem.in_call = True
        for timer in entry.timers:
            timer.cancel()
        self.wake(queue)

    def queue_vars(self, queue: Queue, channel: Channel) -> None:
        if not queue.spec.setqueuevar:
            return
        pbx = self.pbx
        for name, value in (
            ("QUEUENAME", queue.name), ("QUEUEMAX", str(queue.spec.maxlen)), ("QUEUESTRATEGY", queue.spec.strategy),
            ("QUEUECALLS", str(len(queue.entries))), ("QUEUEHOLDTIME", str(queue.holdtime)),
            ("QUEUETALKTIME", str(queue.talktime)), ("QUEUECOMPLETED", str(queue.completed)),
            ("QUEUEABANDONED", str(queue.abandoned)), ("QUEUESRVLEVEL", str(queue.spec.servicelevel)),
            ("QUEUESRVLEVELPERF", queue.service_level_perf()),
        ):  # fmt: skip
            pbx.set_var(channel, name, value)

    def after_bridge(self, entry: QueueEntry, *, hung_up: bool) -> None:
        """The caller's bridge ended while Queue() still ran (the caller or the member left)."""
        pbx, caller, queue, record = self.pbx, entry.channel, entry.queue, entry.record
        entry.state = "gone"
        now = pbx.clock.now()
        talk = now - record.start if record else 0.0
        dialed = now - entry.joined
        self.queue_vars(queue, caller)
        pbx.set_var(caller, "ANSWEREDTIME", str(int(talk)))
        pbx.set_var(caller, "ANSWEREDTIME_MS", str(int(talk * 1000)))
        pbx.set_var(caller, "DIALEDTIME", str(int(dialed)))
        pbx.set_var(caller, "DIALEDTIME_MS", str(int(dialed * 1000)))
        self.queue_vars(queue, caller)

    def after_redirect(self, entry: QueueEntry) -> None:
        """Redirect or blind transfer of a connected caller: Queue() ends, AgentComplete waits."""
        pbx, caller = self.pbx, entry.channel
        entry.state = "gone"
        dialed = pbx.clock.now() - entry.joined
        pbx.set_var(caller, "DIALEDTIME", str(int(dialed)))
        pbx.set_var(caller, "DIALEDTIME_MS", str(int(dialed * 1000)))
        pbx.set_var(caller, "ANSWEREDTIME", "0")
        pbx.set_var(caller, "ANSWEREDTIME_MS", "0")
        self.queue_vars(entry.queue, caller)

    # -- leaving without a member -------------------------------------------------------------------
    def _stop_waiting(self, entry: QueueEntry, *, hung_up: bool = True) -> float:
        """Stop ringing and the music; a caller who hung up loses the music first, a timed-out
        one after the wait variables (real trace 01)."""
        pbx, caller = self.pbx, entry.channel
        for timer in entry.timers:
            timer.cancel()
        for attempt in list(entry.attempts):
            self.cancel(attempt)
        if hung_up:
            pbx.channel_event("MusicOnHoldStop", caller)
        now = pbx.clock.now()
        waited = now - entry.joined
        pbx.set_var(caller, "QUEUEWAIT", str(int(waited)))
        pbx.set_var(caller, "QUEUEWAIT_MS", str(int(waited * 1000)))
        pbx.set_var(caller, "DIALEDTIME", str(int(waited)))
        pbx.set_var(caller, "DIALEDTIME_MS", str(int(waited * 1000)))
        pbx.set_var(caller, "ANSWEREDTIME", "0")
        pbx.set_var(caller, "ANSWEREDTIME_MS", "0")
        if not hung_up:
            pbx.channel_event("MusicOnHoldStop", caller)
        return waited

    def _remove(self, entry: QueueEntry, position: int) -> None:
        pbx, queue, caller = self.pbx, entry.queue, entry.channel
        if entry in queue.entries:
            queue.entries.remove(entry)
        entry.state = "gone"
        self.queue_device(queue)
        pbx.channel_event("QueueCallerLeave", caller,
                          [("Queue", queue.name), ("Position", str(position)), ("Count", str(len(queue.entries)))],
                          category="agent")  # fmt: skip
        pbx.set_var(caller, "QUEUEPOSITION", str(position))
        self.wake(queue)

    def abandon(self, entry: QueueEntry) -> None:
        """The caller hung up while waiting."""
        position = entry.queue.position_of(entry)
        waited = self._stop_waiting(entry)
        self._report_abandon(entry, position, waited)
        self.queue_vars(entry.queue, entry.channel)
        self._remove(entry, position)

    def time_out(self, entry: QueueEntry) -> None:
        """Queue()'s timeout: app_queue reports it as an abandon too (QueueCallerAbandon before
        QueueCallerLeave, real trace 01), then the caller goes on in the dialplan."""
        queue, caller = entry.queue, entry.channel
        position = queue.position_of(entry)
        self._report_abandon(entry, position, self.pbx.clock.now() - entry.joined)
        queue.timed_out += 1
        self._stop_waiting(entry, hung_up=False)
        self.queue_vars(queue, caller)
        self._remove(entry, position)
        self.pbx.set_var(caller, "QUEUESTATUS", "TIMEOUT")

    def _report_abandon(self, entry: QueueEntry, position: int, waited: float) -> None:
        pbx, queue, caller = self.pbx, entry.queue, entry.channel
        pbx.set_var(caller, "ABANDONED", "TRUE")
        queue.abandoned += 1
        self.queue_vars(queue, caller)
        pbx.channel_event("QueueCallerAbandon", caller,
                          [("Queue", queue.name), ("Position", str(position)),
                           ("OriginalPosition", str(entry.original_position)), ("HoldTime", str(int(waited)))],
                          category="agent")  # fmt: skip

    def leave(self, entry: QueueEntry, *, status: str) -> None:
        """Leave without abandoning: empty queue, exit key, redirect."""
        queue = entry.queue
        position = queue.position_of(entry)
        self._stop_waiting(entry)
        self.queue_vars(queue, entry.channel)
        self._remove(entry, position)
        if status:
            self.pbx.set_var(entry.channel, "QUEUESTATUS", status)

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
        self.agent_event("AgentComplete", caller, agent, record.member, record.queue,
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
            pbx.later(member.wrapuptime, self.wake_all)
        self.wake_all()

    def wake_all(self) -> None:
        for queue in self.queues.values():
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
            self.wake_all()

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
        self.wake(queue)

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
        self.pbx.defer(lambda: self.leave_if_empty(queue))

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
            self.pbx.defer(lambda: self.leave_if_empty(queue))
        else:
            self.wake(queue)

    def set_penalty(self, queue_name: str, interface: str, penalty: int) -> None:
        for queue, member in self._targets(queue_name, interface):
            member.penalty = penalty
            self.member_event("QueueMemberPenalty", queue, member)

    def set_ringinuse(self, queue_name: str, interface: str, ringinuse: bool) -> None:
        for queue, member in self._targets(queue_name, interface):
            member.ringinuse = ringinuse
            self.member_event("QueueMemberRinginuse", queue, member)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default
