"""app_queue's caller side: the Queue() application, waiting, leaving (abandon, timeout, exit key).

Owns the caller's entry from joining to leaving and the channel variables Queue() sets on the way
(QUEUESTATUS, QUEUEWAIT, DIALEDTIME, ANSWEREDTIME, the ``setqueuevar`` group).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from gateway.sim.apps import run_of
from gateway.sim.channel import Channel
from gateway.sim.dialplan import split_args
from gateway.sim.queues import Queue, QueueEntry, QueueState, _int

if TYPE_CHECKING:
    from gateway.sim.queue_engine import QueueEngine


class QueueCallers:
    """Callers in Queue(): joining, the exit key and the timeout, leaving with or without a member."""

    def __init__(self, engine: QueueEngine) -> None:
        self.engine = engine
        self.pbx = engine.pbx

    # -- the Queue() application ----------------------------------------------------------------
    def queue_app(self, channel: Channel, data: str) -> bool:
        pbx = self.pbx
        args = split_args(data) + [""] * 5
        queue = self.engine.queues.get(args[0].strip())
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
        if self.engine.is_empty(queue, queue.spec.joinempty, joining=True):
            pbx.set_var(channel, "QUEUESTATUS", "JOINEMPTY")
            return False
        if queue.spec.maxlen and len(queue.entries) >= queue.spec.maxlen:
            pbx.set_var(channel, "QUEUESTATUS", "FULL")
            return False
        prio = _int(channel.variables.get("QUEUE_PRIO"), 0)
        now = pbx.clock.now()
        # Entries are ordered by priority, highest first: the caller goes behind its equals.
        index = bisect.bisect_right(queue.entries, -prio, key=lambda e: -e.prio)
        entry = QueueEntry(channel, queue, index + 1, now, prio, options)
        queue.entries.insert(index, entry)
        self.engine.queue_device(queue)
        pbx.channel_event("QueueCallerJoin", channel,
                          [("Queue", queue.name), ("Position", str(index + 1)), ("Count", str(len(queue.entries)))],
                          category="agent")  # fmt: skip
        pbx.channel_event("MusicOnHoldStart", channel, [("Class", queue.spec.musicclass)])
        timeout = _int(args[4], 0)
        if timeout > 0:
            entry.timers.append(pbx.later(timeout, self._expired, entry))
        self._plan_exit_key(entry)
        run_of(channel).block(QueueState(self, entry))
        pbx.defer(lambda: self.engine.ringer.dispatch(queue))
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
            self.engine.ringer.cancel(attempt)
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
        self.engine.queue_device(queue)
        pbx.channel_event("QueueCallerLeave", caller,
                          [("Queue", queue.name), ("Position", str(position)), ("Count", str(len(queue.entries)))],
                          category="agent")  # fmt: skip
        pbx.set_var(caller, "QUEUEPOSITION", str(position))
        self.engine.ringer.wake(queue)

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
