"""The tracker: a pure reducer from AMI events to calls, seats and queue figures.

No I/O and no asyncio: ``apply(event, now, wall)`` takes the monotonic ``now`` (durations) and a
UTC ``wall`` time (records) with every event, so replaying a recorded trace gives the same state
every time. Finished calls and the moments the order system must hear about at once are what
``apply``, ``tick`` and ``end_resync`` return. Unknown events, unknown ids and garbled values are
ignored, never raised.

``Tracker`` is the front; the work is split by concern over one ``TrackerState``: ``legs`` (calls,
legs, parties, clocks), ``live`` (a call's own events), ``seats`` (seats and queue figures),
``handovers`` (transfers, dialled numbers, conferences) and ``snapshot`` (resync). Each module
registers its handlers in a table (``state.Handlers``); the tables are joined here.

What the real Asterisk 22 traces taught, and how it is handled here:

- Redirect out of a queue emits no transfer event, and the first queue's AgentComplete only
  arrives when the caller finally hangs up, with a TalkTime including the expert's time (trace
  04). So AgentComplete is not used at all: each party's talk time is measured here from its own
  leg (AgentConnect to its Hangup, ConfbridgeLeave or a transfer event), and a caller who joins a
  new queue while connected to a seat has been handed over.
- BlindTransfer (05) and AttendedTransfer (06) end the transferring seat's party at once; the
  consultation call of an attended transfer is its own leg, queued in the target queue, and its
  queue wait is not the caller's wait.
- Atxfer's "successfully queued" proves nothing (06b): an attended hand-over stays pending until
  AttendedTransfer, and is cancelled if the consultation leg hangs up without it.
- A specialist originated into the call's conference has its own Linkedid (07): a leg joining a
  conference owned by a call is adopted into that call. What the gateway originates for a call
  (a three-way target) names the call in its HotlineHandover UserEvent (``Call: <Linkedid>``):
  from then on every channel of its Linkedid belongs to the call, so the target's queue visit and
  ringing are the call's own. (VarSet would be earlier, but needs the ``dialplan`` read class,
  which the gateway's manager user does not have.)
- A failed blind hand-over sends the caller back (dialplan ``hotline-return``): a seat dialled
  straight from the caller's leg is a seat party without a queue, and going back into a queue
  after a target queue that never answered is the return, not a second hand-over.
- AgentRingNoAnswer RingTime is in ms, AgentConnect RingTime in s (02): ring time is measured
  here from AgentCalled, not taken from either.
- QueueCallerAbandon comes before QueueCallerLeave both when the caller hangs up (03) and when
  Queue() times out (real 01: a parallel line's overflow): a visit it ends is decided at the
  caller's next event, an abandon if that is its hang-up, a timeout (overflowed when it joins
  the next queue) if the caller goes on in the dialplan; only real abandons count as abandoned.
- Event text is untrusted (10): values are checked against patterns before they reach a record,
  and UserEvents only ever touch a call that already exists.

Bridge events are not needed: a party ends when its own leg hangs up, leaves the conference or is
transferred, which is exactly when it stops working on the call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from gateway.ami.protocol import Message
from gateway.calls import handovers, legs, live, seats, snapshot
from gateway.calls.model import Call, QueueFigures, Seat
from gateway.calls.state import (
    EMERGENCY_NUMBERS,
    CallEnded,
    CallUpdate,
    Output,
    QueueRules,
    TrackerState,
    UpdateKind,
    join_tables,
)
from gateway.contract import INBOUND_CONTEXT
from gateway.vocabulary import HandoverOutcome

__all__ = [
    "HANDLED_EVENTS",
    "SNAPSHOT_EVENTS",
    "CallEnded",
    "CallUpdate",
    "Output",
    "QueueRules",
    "Tracker",
    "UpdateKind",
]

_LIVE = join_tables(live.HANDLERS.live, handovers.HANDLERS.live, seats.HANDLERS.live)
_SNAPSHOT = join_tables(snapshot.HANDLERS.snapshot, seats.HANDLERS.snapshot)
_DEFAULT_RULES = QueueRules()
# Events the tracker consumes live (gateway.contract.TRACKER_EVENTS lists them for manager.conf).
HANDLED_EVENTS = frozenset(_LIVE)
# List items it reads during a resync (answers to actions, which eventfilters do not touch).
SNAPSHOT_EVENTS = frozenset(_SNAPSHOT)


class Tracker:
    """Live state of the hotline as Asterisk reports it. Feed every event in order."""

    def __init__(
        self,
        *,
        inbound_contexts: Iterable[str] = (INBOUND_CONTEXT,),
        queue_rules: Mapping[str, QueueRules] | None = None,
        default_rules: QueueRules = _DEFAULT_RULES,
        emergency_numbers: Iterable[str] = EMERGENCY_NUMBERS,
        ended_memory: int = 10_000,
    ) -> None:
        self.state = TrackerState.of(
            inbound_contexts=inbound_contexts,
            queue_rules=queue_rules,
            default_rules=default_rules,
            emergency_numbers=emergency_numbers,
            ended_memory=ended_memory,
        )

    @property
    def seats(self) -> dict[str, Seat]:
        return self.state.seats

    @property
    def queues(self) -> dict[str, QueueFigures]:
        return self.state.queues

    @property
    def stale(self) -> bool:
        """Between losing the link and applying the next snapshot: nothing here is known to be true."""
        return self.state.stale

    @property
    def queue_rules(self) -> dict[str, QueueRules]:
        return self.state.queue_rules

    @queue_rules.setter
    def queue_rules(self, rules: Mapping[str, QueueRules]) -> None:
        self.state.queue_rules = dict(rules)

    @property
    def calls(self) -> dict[str, Call]:
        """Live citizen calls by Linkedid."""
        return {cid: call for cid, call in self.state.groups.items() if call.citizen}

    @property
    def live_legs(self) -> int:
        """Channels currently tracked (citizen calls or not): a leak shows here first."""
        return len(self.state.leg_call)

    def call_of_leg(self, uniqueid: str) -> Call | None:
        return self.state.leg_call.get(uniqueid)

    def apply(self, event: Message, now: float, wall: dt.datetime) -> list[Output]:
        """Apply one live event; returns the calls it ended and the urgent updates it caused, in order."""
        name = event.event
        handler = _LIVE.get(name) if name is not None else None
        if name is None or (handler is None and not self.state.undecided):
            return []
        fields = event.as_dict()
        if self.state.undecided:
            legs.decide_abandon(self.state, name, fields, handled=handler is not None)
        if handler is not None:
            handler(self.state, fields, event, now, wall)
        return self.state.take_outputs()

    def tick(self, now: float, wall: dt.datetime) -> list[Output]:
        """Let time pass: seats whose wrap-up is over become ready (no event says so)."""
        seats.tick(self.state, now, wall)
        return self.state.take_outputs()

    def settle_handover(self, call_id: str, outcome: HandoverOutcome) -> None:
        """The gateway's transfer service knows how a hand-over it drove ended (e.g. it timed out)."""
        call = self.state.groups.get(call_id)
        handover = legs.open_handover(self.state, call) if call is not None else None
        if handover is not None:
            handover.outcome = outcome

    # --- resync: begin, apply the snapshot lists, end ------------------------------------------

    def begin_resync(self) -> None:
        """Mark everything stale; what the snapshot does not confirm is gone at ``end_resync``."""
        snapshot.begin_resync(self.state)

    def apply_snapshot(self, events: Iterable[Message], now: float, wall: dt.datetime) -> list[Output]:
        """The list items of CoreShowChannels, Status and QueueStatus, in any order."""
        snapshot.apply_snapshot(self.state, _SNAPSHOT, events, now, wall)
        return self.state.take_outputs()

    def end_resync(self, now: float, wall: dt.datetime) -> list[Output]:
        """Close what vanished while the link was down: calls end as "ended during PBX outage"."""
        snapshot.end_resync(self.state, now, wall)
        return self.state.take_outputs()
