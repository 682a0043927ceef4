"""Each seat's live view for its workbench: state, screen pop (来电弹屏), hand-over buttons, call-backs.

``Desk.view(seat)`` is built from what the tracker knows (never a state Asterisk did not report),
the routing plan and the config, plus what ``Desk.run`` fetched in the background: the caller's
work orders of the last ``history_days`` from the order system (with a short timeout: "unavailable"
rather than a late pop) and the waiting call-backs. ``run`` publishes each watched seat's view to
its own topic (``seat:<extension>``) a few times a second, so a pop reaches the seat well within a
second of the AMI event, and only that seat (and supervisors watching it) receives it.

The hand-over buttons say why they are disabled with the same count the transfer service enforces
(``TransferService.handovers_used``). The desk never acts: the web layer sends the seat's actions to
the transfer and seat-control services.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from redis.exceptions import RedisError

from gateway.callbacks.service import CallbackEntry
from gateway.calls.model import Call, Party, SeatState
from gateway.contract import CALL_BACK_PREFIX
from gateway.masking import mask_number
from gateway.merge.schema import HotlineConfig, QueueKind
from gateway.ports import PlanSource, TrackerView
from gateway.records.client import OrderSystemClient
from gateway.tasks import stop_if_cancelled
from gateway.transfers.machine import TERMINAL
from gateway.transfers.service import TransferService
from gateway.vocabulary import HandoverMode, PartyKind
from gateway.workbench.categories import CategoryTree

log = structlog.get_logger(__name__)

TOPIC_PREFIX = "seat:"
CALLBACKS_EVERY_S = 2.0
MODE_LABELS = {HandoverMode.BLIND: "转接", HandoverMode.CONSULT: "咨询", HandoverMode.THREEWAY: "三方"}


def topic(seat: str) -> str:
    return f"{TOPIC_PREFIX}{seat}"


@dataclass
class _Lookup:
    """What the background fetched for one call's pop."""

    history: list[dict[str, Any]] | None = None
    done: bool = False


class Desk:
    """``view`` for the web layer, ``run`` as the background task that publishes the views."""

    def __init__(
        self,
        *,
        tracker: TrackerView,
        plan: PlanSource,
        config: HotlineConfig,
        tree: CategoryTree,
        transfers: TransferService,
        pending_callbacks: Callable[[], Awaitable[list[CallbackEntry]]],
        history: OrderSystemClient | None,
        publish: Callable[[str, str], None],
        topics: Callable[[], set[str]],
        link: Callable[[], tuple[bool, str]],
        tick_s: float = 0.2,
    ) -> None:
        self.tracker = tracker
        self.plan = plan
        self.config = config
        self.categories = tree.paths()
        self.transfers = transfers
        self.pending_callbacks = pending_callbacks
        self.history = history
        self.publish = publish
        self.topics = topics
        self.link = link
        self.tick_s = tick_s
        self.last_call: dict[str, str] = {}  # seat -> the call its draft is for
        self._lookups: dict[str, _Lookup] = {}  # by call id
        self._callbacks: list[CallbackEntry] = []
        self._tasks: set[asyncio.Task[None]] = set()
        workbench = config.workbench
        self.mask = workbench.caller_mask
        self.history_days = workbench.history_days
        self.expert_queues = {
            q.department: q.name for q in config.queues if q.kind is QueueKind.EXPERT and q.department
        }

    # --- the view ----------------------------------------------------------------------------------

    def view(
        self, seat: str, now: float | None = None, calls: dict[str, list[Call]] | None = None
    ) -> dict[str, Any]:
        """The seat's view; ``calls``: every seat's current calls (``calls_by_seat``), if at hand."""
        moment = time.monotonic() if now is None else now
        mine = (self.calls_by_seat() if calls is None else calls).get(seat, [])
        answered = [c for c in mine if (party := _party_of(c, seat)) and party.answered_at is not None]
        if answered:  # a call that only rang here (another seat took it) does not take the draft
            self.last_call[seat] = answered[-1].call_id
        current = mine[-1] if mine else self.tracker.calls.get(self.last_call.get(seat, ""))
        stale, reason = self.link()
        return {
            "seat": self._seat(seat, moment),
            "call": self._pop(current, seat, moment) if current is not None else None,
            "other_calls": max(0, len(mine) - 1),
            "draft_call_id": self.last_call.get(seat),
            "callbacks": self._waiting_callbacks(seat),
            "stale": stale,
            "stale_reason": reason,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }

    def calls_by_seat(self) -> dict[str, list[Call]]:
        """Each seat's calls now (ringing or connected), oldest first: one pass over the calls."""
        out: dict[str, list[Call]] = {}
        for call in sorted(self.tracker.calls.values(), key=lambda c: c.arrived_at):
            for seat in {p.party for p in call.parties if p.kind is PartyKind.SEAT and p.ended_at is None}:
                out.setdefault(seat, []).append(call)
        return out

    def _seat(self, extension: str, now: float) -> dict[str, Any]:
        plan = self.plan()
        roster = plan.seats.get(extension)
        live = self.tracker.seats.get(extension)
        state = live.state if live is not None else SeatState.LOGGED_OUT
        wrap_left = None
        if live is not None and state is SeatState.WRAP_UP and live.wrap_up_until is not None:
            wrap_left = max(0, round(live.wrap_up_until - now))
        queues = []
        for name in roster.queues if roster else ():
            membership = live.memberships.get(name) if live is not None else None
            title = plan.queues[name].title if name in plan.queues else name
            queues.append(
                {
                    "queue": name,
                    "title": title,
                    "logged_in": membership is not None,
                    "paused": bool(membership and membership.paused),
                }
            )
        return {
            "id": extension,
            "name": roster.name if roster else extension,
            "state": state.value,
            "reason": (live.paused_reason or "") if live is not None else "",
            "in_state_s": round(live.time_in_state(now)) if live is not None else None,
            "wrap_up_left_s": wrap_left,
            "queues": queues,
            "calls_taken": live.calls_taken if live is not None else 0,
        }

    def _pop(self, call: Call, seat: str, now: float) -> dict[str, Any]:
        plan = self.plan()
        route = plan.routes.get(call.legacy_line or "")
        party = _party_of(call, seat)
        phase = "left"
        if party is not None and party.ended_at is None:
            phase = "talking" if party.active else "ringing"
        lookup = self._lookups.get(call.call_id)
        history_state = "unavailable" if lookup and lookup.done and lookup.history is None else "loading"
        if lookup and lookup.history is not None:
            history_state = "ok"
        category = call.category_code
        return {
            "call_id": call.call_id,
            "phase": phase,
            "legacy_line": call.legacy_line,
            "line_title": route.title if route else None,
            "department": call.department,
            "merge_mode": call.merge_mode,
            "category_code": category,
            "category_name": self.categories.get(category or ""),
            "caller": mask_number(call.caller_number, self.mask),
            "wait_s": round(call.wait.seconds(now)),
            "talk_s": round(party.talk.seconds(now)) if party is not None else 0,
            "elderly": call.caller_number in plan.priority_callers,
            "callback_requested": call.callback is not None or self._callback_waiting(call.caller_number),
            "is_callback": call.call_id.startswith(CALL_BACK_PREFIX),
            "history": {"state": history_state, "orders": (lookup.history if lookup else None) or []},
            "history_days": self.history_days,
            "handover": self._handover(call, phase),
        }

    def _handover(self, call: Call, phase: str) -> dict[str, Any]:
        rules = self.config.handover
        used = self.transfers.handovers_used(call)
        running = self.transfers.of_call(call.call_id)
        latest = running[-1].as_json() if running else None
        blocked = None
        if used >= rules.max_per_call:
            blocked = f"本来电已转接{used}次（来电最多接转{rules.max_per_call}次）"
        elif running and running[-1].state not in TERMINAL:
            blocked = "转接进行中，请先完成或取消"
        elif phase != "talking":
            blocked = "通话接通后才能转接" if phase == "ringing" else "您已不在此通话中"
        return {
            "used": used,
            "max": rules.max_per_call,
            "override_allowed": rules.supervisor_override,
            "blocked": blocked,
            "transfer": latest,
            "targets": self._targets(call, blocked),
        }

    def _targets(self, call: Call, blocked: str | None) -> list[dict[str, Any]]:
        """The one-key hand-over buttons: the line's expert queue, the policy group, 110/119/120/122."""
        plan = self.plan()
        expert = self.expert_queues.get(call.department or "")
        expert_title = plan.queues[expert].title if expert in plan.queues else "部门专席"
        policy = plan.queues.get(self.config.handover.policy_queue)
        buttons: list[tuple[str, str, str, HandoverMode, str | None]] = [
            ("expert", expert or "", expert_title, HandoverMode.BLIND, "1"),
            ("expert", expert or "", expert_title, HandoverMode.CONSULT, None),
            ("policy", "policy", policy.title if policy else "政策专家", HandoverMode.THREEWAY, "2"),
            ("policy", "policy", policy.title if policy else "政策专家", HandoverMode.CONSULT, None),
        ]
        for n, target in enumerate(self.config.emergency_targets):
            for mode in target.modes:
                key = str(n + 3) if mode is HandoverMode.BLIND and n < 4 else None
                buttons.append(("linkage", target.number, target.name, HandoverMode(mode.value), key))
        out = []
        for kind, name, title, mode, key in buttons:
            why = blocked or (None if name else "本线路的部门没有专席")
            out.append(
                {
                    "kind": kind,
                    "target": name,
                    "mode": mode.value,
                    "label": f"{title}·{MODE_LABELS[mode]}",
                    "key": key,
                    "enabled": why is None,
                    "why": why,
                }
            )
        return out

    def _callback_waiting(self, number: str | None) -> bool:
        return number is not None and any(e.number == number for e in self._callbacks)

    def _waiting_callbacks(self, seat: str) -> list[dict[str, Any]]:
        roster = self.plan().seats.get(seat)
        queues = set(roster.queues) if roster else set()
        return [
            {
                "call_id": e.call_id,
                "number": mask_number(e.number, self.mask),
                "queue": e.queue,
                "attempts": e.attempts,
                "requested_at": dt.datetime.fromtimestamp(e.requested_at, dt.UTC).isoformat(
                    timespec="seconds"
                ),
                "dialling": e.claimed_by is not None,
            }
            for e in self._callbacks
            if e.queue in queues
        ]

    # --- the background ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Publish every watched seat's view; fetch call-backs and the callers' history as needed."""
        async with contextlib.AsyncExitStack() as stack:
            if self.history is not None:
                await stack.enter_async_context(self.history)
            next_callbacks = 0.0
            try:
                while True:
                    stop_if_cancelled()
                    now = time.monotonic()
                    if now >= next_callbacks:
                        next_callbacks = now + CALLBACKS_EVERY_S
                        await self._refresh_callbacks()
                    self.publish_views(now)
                    await asyncio.sleep(self.tick_s)
            finally:  # lookups under way end before their client's session closes
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def publish_views(self, now: float) -> None:
        watched = [t.removeprefix(TOPIC_PREFIX) for t in self.topics() if t.startswith(TOPIC_PREFIX)]
        wanted: set[str] = set()
        calls = self.calls_by_seat() if watched else {}
        for seat in watched:
            view = self.view(seat, now, calls)
            call = view["call"]
            if call is not None:
                wanted.add(call["call_id"])
                self._look_up(call["call_id"])
            self.publish(topic(seat), json.dumps(view, ensure_ascii=False, separators=(",", ":")))
        for call_id in set(self._lookups) - wanted - set(self.last_call.values()):
            del self._lookups[call_id]

    async def _refresh_callbacks(self) -> None:
        try:
            self._callbacks = await self.pending_callbacks()
        except (RedisError, OSError) as exc:
            log.warning("desk.callbacks_unreadable", error=str(exc))

    def _look_up(self, call_id: str) -> None:
        if call_id in self._lookups:
            return
        lookup = self._lookups[call_id] = _Lookup()
        call = self.tracker.calls.get(call_id)
        if self.history is None or call is None or call.caller_number is None:
            lookup.done = True
            return
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=self.history_days)
        task = asyncio.create_task(self._fetch(lookup, self.history, call.caller_number, since))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _fetch(lookup: _Lookup, client: OrderSystemClient, number: str, since: dt.datetime) -> None:
        try:
            lookup.history = await client.caller_history(number, since)
        finally:
            lookup.done = True


def _party_of(call: Call, seat: str) -> Party | None:
    """The seat's latest party on the call (it may have rung before, or come back)."""
    return next((p for p in reversed(call.parties) if p.kind is PartyKind.SEAT and p.party == seat), None)
