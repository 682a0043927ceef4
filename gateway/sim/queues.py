"""app_queue as the traces show it: the model (queues, members, entries, attempts, connections).

Owns the data of queues, members (static and dynamic), callers waiting (entries), ring attempts and
the connection records that end in ``AgentComplete``, and the activities Queue() puts on channels.
The behaviour is ``queue_engine.py`` (members, counters), ``queue_ring.py`` (strategy, ringing,
connecting) and ``queue_callers.py`` (joining, waiting, leaving). Strategies: ringall, linear, rrmemory (and
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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.errors import GatewayError
from gateway.sim.apps import run_of
from gateway.sim.bridge import Bridge
from gateway.sim.channel import Channel
from gateway.sim.clock import Timer

if TYPE_CHECKING:
    from gateway.sim.queue_callers import QueueCallers
    from gateway.sim.queue_ring import QueueRinger

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

    def __init__(self, engine: QueueCallers, entry: QueueEntry) -> None:
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

    def __init__(self, engine: QueueRinger, attempt: Attempt) -> None:
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


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default
