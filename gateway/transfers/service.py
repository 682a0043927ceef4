"""The transfer service: performs hand-overs on Asterisk and runs their state machines.

Owns the live transfers of this gateway node: checking a request against the call and the
one-hand-over rule, the AMI actions of each mode (built by ``gateway.ami.safety`` only), the
deadline, carrying out the machine's effects, and mirroring every transfer to Redis so another
instance's API can show it. It does not decide what an event means (``machine``) and does not
track calls (it reads the tracker, and tells it how a hand-over it drove ended).

The AMI read path calls it as an event listener, after the tracker's: it only steps machines and
queues effects; AMI actions and Redis writes happen in ``run``, the background task.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from gateway import keys
from gateway.ami import safety
from gateway.ami.errors import ActionFailedError, AmiError
from gateway.ami.protocol import Message
from gateway.calls.model import Call, LegRole, Party, SeatState
from gateway.calls.resync import utc_now
from gateway.contract import (
    CONF_CONTEXT,
    HANDOVER_CONTEXT,
    RETURN_CONTEXT,
    THREEWAY_CONTEXT,
    VAR_HANDOVER_TIMEOUT,
    VAR_JOIN_CALL,
    VAR_RETURN_SEAT,
)
from gateway.dialplan.routing import handover_extensions
from gateway.merge.schema import HotlineConfig
from gateway.ports import PlanSource, Send, TrackerView
from gateway.tasks import stop_if_cancelled
from gateway.transfers.errors import (
    CallNotFoundError,
    ModeNotAllowedError,
    NoSeatError,
    NotCompletableError,
    TargetUnavailableError,
    TransferElsewhereError,
    TransferFinishedError,
    TransferInProgressError,
    TransferLimitError,
    TransferNotFoundError,
    TransferRefusedError,
    UnknownTargetError,
)
from gateway.transfers.inbox import Inbox
from gateway.transfers.machine import (
    TERMINAL,
    Cancel,
    Effect,
    Expired,
    Fact,
    HangUp,
    Leg,
    NotStarted,
    Refused,
    SendBack,
    Settle,
    State,
    Target,
    Transfer,
    observe,
    step,
)
from gateway.vocabulary import HandoverMode, HandoverOutcome, PartyKind, TargetKind

log = structlog.get_logger(__name__)

MIRROR_TTL_S = 86_400
KEEP_FINISHED_S = 3600.0  # finished transfers stay in memory this long, then only in Redis
# Asterisk's own limits (the target queue's wait, the three-way originate) run this much longer
# than the gateway's deadline: they only act when the gateway is gone.
PBX_GRACE_S = 10
# A consult's consultation leg appears about half a second after Atxfer (real PBX and traces);
# one that has not appeared by then was not started (see ``machine``).
CONSULT_START_S = 5.0
WATCHED_EVENTS = frozenset({
    "Newchannel", "QueueCallerJoin", "AgentCalled", "AgentConnect", "DialBegin", "DialEnd",
    "BlindTransfer", "AttendedTransfer", "ConfbridgeJoin", "Hangup", "Hold", "Unhold",
})  # fmt: skip
_LINK_HEADERS = (
    "Linkedid",
    "DestLinkedid",
    "TransfererLinkedid",
    "TransfereeLinkedid",
    "OrigTransfererLinkedid",
)
_TAKES_CALLER_BACK = frozenset({SeatState.READY, SeatState.WRAP_UP})

_Work = tuple[Transfer, Effect | None]  # None: mirror the transfer to Redis


class TransferService:
    """``request``/``cancel``/``complete`` for the API, ``__call__`` for AMI events, ``run`` in the background.

    It sends through ``send``, reads ``tracker`` and tells it how a hand-over it drove ended
    (``settle``), reads the current ``plan`` and the hand-over rules of ``config``, mirrors to
    ``redis``. ``clock`` gives monotonic seconds for deadlines (tests put the simulator's clock here).
    """

    def __init__(
        self,
        *,
        send: Send,
        tracker: TrackerView,
        settle: Callable[[str, HandoverOutcome], None],
        plan: PlanSource,
        config: HotlineConfig,
        redis: aioredis.Redis,
        node_id: str,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], dt.datetime] = utc_now,
        tick_s: float = 0.1,
    ) -> None:
        self.send = send
        self.tracker = tracker
        self.settle = settle
        self.plan = plan
        self.config = config
        self.redis = redis
        self.node_id = node_id
        self.clock = clock
        self.wallclock = wallclock
        self.tick_s = tick_s
        self.transfers: dict[str, Transfer] = {}
        # Linkedid (the call's, and a three-way target's own) -> its live transfer.
        self._watching: dict[str, Transfer] = {}
        self._work: Inbox[_Work] = Inbox()

    # --- the API ---------------------------------------------------------------------------------

    def target(self, name: str, mode: HandoverMode) -> Target:
        """A hand-over target by name: an expert, policy or sub-centre queue, or a linkage number.

        ``policy`` names the policy specialist group of hotline_merge.yaml (handover.policy_queue).
        """
        config = self.config
        if name == "policy":
            name = config.handover.policy_queue
        plan = self.plan()
        extensions = handover_extensions(plan)
        if name in extensions:
            return Target(TargetKind.QUEUE, name, extensions[name], plan.queues[name].title)
        linkage = next((t for t in config.emergency_targets if t.number == name), None)
        if linkage is None:
            known = ", ".join([*extensions, *plan.emergency_targets])
            raise UnknownTargetError(f"no hand-over target {name!r}; targets are {known}", target=name)
        if mode.value not in {m.value for m in linkage.modes}:
            allowed = " or ".join(m.value for m in linkage.modes)
            raise ModeNotAllowedError(
                f"{linkage.name} takes {allowed} hand-overs, not {mode.value}", target=name, mode=mode.value
            )
        return Target(TargetKind.EMERGENCY, name, name, linkage.name)

    async def request(
        self, call_id: str, target_name: str, mode: HandoverMode, *, override: bool
    ) -> Transfer:
        """Start a hand-over of a live call from the seat it is connected to."""
        call = self.tracker.calls.get(call_id)
        if call is None:
            raise CallNotFoundError(f"no live call {call_id!r}", call_id=call_id)
        target = self.target(target_name, mode)
        running = self._watching.get(call_id)
        if running is not None:
            raise TransferInProgressError(
                f"call {call_id} is already being handed over ({running.id}, {running.state.value}); "
                f"cancel it first (DELETE /api/transfers/{running.id})"
            )
        over_limit = self._check_limit(call, override)
        party, seat_leg, caller_leg = self._connected_seat(call)
        if target.kind is TargetKind.QUEUE:
            self._check_staffed(target)
        timeout = self.config.handover.consult_timeout_s
        t = Transfer(
            id=f"tr-{secrets.token_hex(8)}", call_id=call_id, mode=mode, target=target, from_seat=party.party,
            caller=caller_leg, seat=seat_leg, requested_at=self.wallclock(), deadline=self.clock() + timeout,
            node=self.node_id, override=over_limit,
        )  # fmt: skip
        if mode is HandoverMode.CONSULT:
            t.start_by = self.clock() + CONSULT_START_S
        if mode is HandoverMode.THREEWAY:
            t.room = f"{secrets.randbelow(9 * 10**7) + 10**7}"  # digits: hotline-conf matches _X.
            t.target_legs = {t.id: "", f"{t.id}-2": ""}  # the originate's ChannelId / OtherChannelId
        self._watch(t)
        log.info("transfer.requested", transfer=t.id, call_id=call_id, mode=mode.value, target=target.name)
        for action in self._actions(t, call, timeout + PBX_GRACE_S):
            try:
                await self.send(action)
            except AmiError as exc:
                self._queue(t, self._apply(t, Refused(exc.message)))
                if isinstance(exc, ActionFailedError):
                    raise TransferRefusedError(
                        f"hand-over {t.id} of call {call_id} to {target.name} failed: {exc.message}; "
                        f"the caller stays with seat {t.from_seat}"
                    ) from exc
                raise
        # Counted from when Asterisk took the hand-over, as its own limits are: a late answer to
        # the action must not eat the target's time.
        t.deadline = self.clock() + timeout
        return t

    async def cancel(self, transfer_id: str) -> Transfer:
        """Stop a transfer that has not completed; the caller goes back to the seat."""
        t = await self._local(transfer_id)
        await self._perform_all(t, self._apply(t, Cancel()))
        return t

    async def complete(self, transfer_id: str) -> Transfer:
        """Finish a consult whose target has answered: hang up the seat's leg, as a seat's phone would.

        Asterisk then joins the caller to the target and says so with AttendedTransfer (trace 06).
        """
        t = await self._local(transfer_id)
        if t.mode is not HandoverMode.CONSULT or t.state is not State.ANSWERED:
            raise NotCompletableError(
                f"transfer {t.id} is a {t.mode.value} hand-over in state {t.state.value}; only an answered "
                "consult can be completed",
                transfer_id=t.id,
            )
        await self.send(safety.hangup(t.seat.channel))
        return t

    async def lookup(self, transfer_id: str) -> dict[str, Any] | None:
        """The transfer as JSON: this node's, or another node's from its Redis mirror."""
        t = self.transfers.get(transfer_id)
        if t is not None:
            return t.as_json()
        try:
            mirrored = await self.redis.get(keys.transfer(transfer_id))
        except (RedisError, OSError) as exc:
            log.warning("transfer.mirror_unreadable", transfer=transfer_id, error=str(exc))
            return None
        return json.loads(mirrored) if mirrored else None

    async def _local(self, transfer_id: str) -> Transfer:
        t = self.transfers.get(transfer_id)
        if t is None:
            elsewhere = await self.lookup(transfer_id)
            if elsewhere is None:
                raise TransferNotFoundError(f"no transfer {transfer_id!r}", transfer_id=transfer_id)
            if State(elsewhere["state"]) in TERMINAL:
                raise TransferFinishedError(f"transfer {transfer_id} has ended ({elsewhere['state']})")
            raise TransferElsewhereError(
                f"transfer {transfer_id} is run by gateway node {elsewhere['node']}; ask that node's API"
            )
        if t.finished:
            raise TransferFinishedError(
                f"transfer {t.id} has ended ({t.state.value}{': ' + t.reason if t.reason else ''})"
            )
        return t

    # --- checks ----------------------------------------------------------------------------------

    def _check_limit(self, call: Call, override: bool) -> bool:
        """True when this request goes past the limit (allowed only as a supervisor's override)."""
        rules = self.config.handover
        done = [
            t for t in self.transfers.values() if t.call_id == call.call_id and t.state is State.COMPLETED
        ]
        seen = [
            h for h in call.handovers if h.outcome in (HandoverOutcome.COMPLETED, HandoverOutcome.PENDING)
        ]
        used = max(len(done), len(seen))  # the tracker sees this service's hand-overs too
        if used < rules.max_per_call:
            return False
        if not override:
            raise TransferLimitError(
                f"call {call.call_id} has had {used} hand-over(s); at most {rules.max_per_call} per call "
                '(来电最多接转一次). A supervisor may override with "override": true'
            )
        if not rules.supervisor_override:
            raise TransferLimitError(
                f"call {call.call_id} has had {used} hand-over(s) and overrides are off "
                "(handover.supervisor_override in hotline_merge.yaml)"
            )
        return True

    def _connected_seat(self, call: Call) -> tuple[Party, Leg, Leg]:
        """The seat the caller is talking to, its leg and the caller's leg bridged with it.

        Only a seat reached through the caller's own leg counts (a three-way's specialist was
        reached through its consultation leg: it does not hand the caller over).
        """
        for party in reversed(call.parties):
            seat = call.legs.get(party.leg or "")
            caller = call.legs.get(party.via_leg or "")
            if (
                party.active
                and party.kind is PartyKind.SEAT
                and seat is not None
                and caller is not None
                and caller.role is LegRole.CALLER
            ):
                return party, Leg(seat.uniqueid, seat.channel), Leg(caller.uniqueid, caller.channel)
        raise NoSeatError(
            f"call {call.call_id} is not connected to a seat; only a seat's call can be handed over"
        )

    def _check_staffed(self, target: Target) -> None:
        seats = self.tracker.seats.values()
        if not any(
            target.name in seat.memberships and not seat.memberships[target.name].paused
            and seat.state is not SeatState.LOGGED_OUT
            for seat in seats
        ):  # fmt: skip
            raise TargetUnavailableError(
                f"nobody is logged in and unpaused in {target.name} ({target.title}); choose another target"
            )

    # --- AMI actions -----------------------------------------------------------------------------

    def _actions(self, t: Transfer, call: Call, pbx_limit_s: int) -> list[safety.Action]:
        exten = t.target.exten
        if t.mode is HandoverMode.BLIND:
            actions = [safety.setvar(VAR_RETURN_SEAT, t.from_seat, channel=t.caller.channel)]
            if t.target.kind is TargetKind.QUEUE:
                actions.append(
                    safety.setvar(VAR_HANDOVER_TIMEOUT, str(pbx_limit_s), channel=t.caller.channel)
                )
            caller = call.legs.get(t.caller.uniqueid)
            if caller is not None and caller.conference:
                # BlindTransfer needs a two-party bridge; out of a conference the caller is redirected.
                return [*actions, safety.redirect(t.caller.channel, HANDOVER_CONTEXT, exten)]
            return [*actions, safety.blind_transfer(t.seat.channel, HANDOVER_CONTEXT, exten)]
        if t.mode is HandoverMode.CONSULT:
            return [safety.atxfer(t.seat.channel, exten, context=HANDOVER_CONTEXT)]
        room = t.room or ""
        return [
            safety.redirect(t.caller.channel, CONF_CONTEXT, room, extra_channel=t.seat.channel, extra_exten=room),
            safety.originate(
                f"Local/{exten}@{THREEWAY_CONTEXT}", application="ConfBridge", data=room,
                caller_id_name="12345三方通话", caller_id_number=call.caller_number,
                variables={VAR_JOIN_CALL: t.call_id}, timeout_ms=pbx_limit_s * 1000,
                channel_id=t.id, other_channel_id=f"{t.id}-2",
            ),
        ]  # fmt: skip

    # --- events, effects, deadlines -----------------------------------------------------------------

    def __call__(self, event: Message) -> None:
        name = event.event
        if name not in WATCHED_EVENTS or not self._watching:
            return
        f = event.as_dict()
        concerned = {
            id(t): t for key in _LINK_HEADERS if (t := self._watching.get(f.get(key, ""))) is not None
        }
        for t in concerned.values():
            prefix = f"Local/{t.target.exten}@{HANDOVER_CONTEXT}-"
            for fact in observe(t, name, f, consult_prefix=prefix):
                self._queue(t, self._apply(t, fact))

    def _apply(self, t: Transfer, fact: Fact) -> list[Effect]:
        before = t.state
        effects = step(t, fact, self.wallclock())
        for effect in effects:
            if isinstance(effect, Settle):
                self.settle(t.call_id, effect.outcome)
        if t.state is not before:
            log.info("transfer.state", transfer=t.id, call_id=t.call_id, state=t.state.value, reason=t.reason)
            self._work.put((t, None))
        if t.finished:
            for key in [k for k, watched in self._watching.items() if watched is t]:
                del self._watching[key]
        return [effect for effect in effects if not isinstance(effect, Settle)]

    def _watch(self, t: Transfer) -> None:
        self.transfers[t.id] = t
        self._watching[t.call_id] = t
        if t.mode is HandoverMode.THREEWAY:
            self._watching[t.id] = t  # the target's legs carry the originate's own Linkedid
        self._work.put((t, None))

    def _queue(self, t: Transfer, effects: list[Effect]) -> None:
        for effect in effects:
            self._work.put((t, effect))

    async def run(self) -> None:
        """Background task: carry out effects, mirror to Redis, expire deadlines."""
        while True:
            stop_if_cancelled()
            work = await self._work.next(self.tick_s)
            if work is not None:
                t, effect = work
                await (self._mirror(t) if effect is None else self._perform(t, effect))
            await self._expire()

    async def _expire(self) -> None:
        """Fail the transfers whose leg never started or whose deadline passed, once Asterisk
        confirms nothing changed that.

        A late event loop (a busy machine) may not yet have read the events that say a leg started
        or a target answered in time. So a limit is acted on only after a Ping on the same AMI
        session is answered: Asterisk writes responses and events in order on one socket and the
        client applies every event to the listeners (this service among them) before it completes
        a later action, so what was on its way has been applied by then (and makes the step a
        no-op). One Ping covers every transfer due. While the tracker is stale (link down or
        resyncing) nothing fails on stale knowledge; Asterisk's own limits (``PBX_GRACE_S`` later)
        guard the caller meanwhile.
        """
        now = self.clock()
        late = [
            t
            for t in self._watching.values()
            if not t.finished and t.start_by is not None and now >= t.start_by
        ]
        due = [t for t in self._watching.values() if t.awaits_answer and now >= t.deadline]
        if (late or due) and not self.tracker.stale:
            try:
                await self.send(safety.ping())
            except AmiError as exc:
                log.warning(
                    "transfer.deadline_unconfirmed", transfers=len(late) + len(due), error=exc.message
                )
            else:
                for t in late:
                    if not t.finished:
                        self._queue(t, self._apply(t, NotStarted(late=True)))
                for t in due:
                    if not t.finished:
                        self._queue(t, self._apply(t, Expired()))
        cutoff = self.wallclock() - dt.timedelta(seconds=KEEP_FINISHED_S)
        for t in [t for t in self.transfers.values() if t.finished and t.history[-1][1] < cutoff]:
            del self.transfers[t.id]

    async def _perform_all(self, t: Transfer, effects: list[Effect]) -> None:
        for effect in effects:
            await self._perform(t, effect)

    async def _perform(self, t: Transfer, effect: Effect) -> None:
        try:
            if isinstance(effect, HangUp):
                await self.send(safety.hangup(effect.channel))
            elif isinstance(effect, SendBack):
                await self.send(
                    safety.redirect(self._caller_channel(t), RETURN_CONTEXT, self._back_to(effect))
                )
        except ActionFailedError as exc:
            # A leg that is already gone needs nothing more.
            log.info("transfer.effect_moot", transfer=t.id, effect=type(effect).__name__, error=exc.message)
        except AmiError as exc:
            log.error(
                "transfer.effect_failed",
                transfer=t.id,
                call_id=t.call_id,
                effect=repr(effect),
                error=exc.message,
            )

    def _back_to(self, effect: SendBack) -> str:
        """The seat's extension in hotline-return if that seat can take the caller now, else ``s``."""
        seat = self.tracker.seats.get(effect.seat or "")
        return seat.seat_id if seat is not None and seat.state in _TAKES_CALLER_BACK else "s"

    def _caller_channel(self, t: Transfer) -> str:
        call = self.tracker.calls.get(t.call_id)
        leg = call.legs.get(t.caller.uniqueid) if call is not None else None
        return leg.channel if leg is not None else t.caller.channel

    async def _mirror(self, t: Transfer) -> None:
        try:
            await self.redis.set(
                keys.transfer(t.id), json.dumps(t.as_json(), ensure_ascii=False), ex=MIRROR_TTL_S
            )
        except (RedisError, OSError) as exc:
            log.warning("transfer.mirror_failed", transfer=t.id, error=str(exc))
