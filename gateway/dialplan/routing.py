"""The routing plan: what Asterisk does with each dialled number, derived from the merge config.

One pure function turns a validated ``HotlineConfig`` into a ``RoutingPlan``. The dialplan
renderer writes Asterisk files from it and the embedded PBX simulator routes calls from it, so the
demo and the tests exercise exactly the merge that Asterisk runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from gateway.contract import (
    SEATS_CONTEXT,
    VAR_CATEGORY,
    VAR_DEPARTMENT,
    VAR_LEGACY_LINE,
    VAR_LINE_PRIORITY,
    VAR_MERGE_MODE,
)
from gateway.merge.schema import HotlineConfig, OptionalKey, Queue
from gateway.vocabulary import MergeMode

HANDOVER_BASE = 7000  # handover extensions are digits: AMI Atxfer sends them as DTMF


@dataclass(frozen=True)
class MemberPlan:
    """A seat as an app_queue member: interface ``Local/<exten>@agents/n``."""

    interface: str
    name: str
    penalty: int = 0


@dataclass(frozen=True)
class SeatPlan:
    """A seat of the roster: logs in (as a dynamic member) to its queues with its penalty."""

    extension: str
    name: str
    queues: tuple[str, ...]
    penalty: int

    @property
    def interface(self) -> str:
        return seat_interface(self.extension)

    @property
    def state_interface(self) -> str:
        """The phone's device state: app_queue then sees a seat busy on any call (ringinuse=no)."""
        return f"PJSIP/{self.extension}"


@dataclass(frozen=True)
class QueuePlan:
    name: str  # the Asterisk queue name, e.g. "hotline-general"
    title: str  # for people, e.g. "12345 综合坐席"
    kind: str  # general | expert | policy | subcenter
    strategy: str  # ringall | rrmemory | leastrecent | fewestcalls | random | linear
    ring_timeout_s: int  # how long one member rings
    retry_s: int  # pause before ringing the next round
    wrapup_s: int  # after-call work before the seat is offered calls again
    service_level_s: int  # answered within this counts as "in service level"
    callback_offer_after_s: int | None  # waiting longer than this offers a callback key
    joinempty: str  # app_queue joinempty, e.g. "no" (7x24: always join)
    leavewhenempty: str
    overflow_queue: str | None = None  # where waiting callers go after overflow_after_s
    overflow_after_s: int | None = None
    members: tuple[MemberPlan, ...] = ()  # static members; seats log in dynamically as well


@dataclass(frozen=True)
class RoutePlan:
    """One dialled number: optional announcement, first queue, optional overflow."""

    number: str
    title: str  # e.g. "12315 市场监管投诉举报"
    merge_mode: str  # hotline | merged | parallel | subcenter | legacy (before cutover)
    queue: str
    announcement: str | None  # prompt name under recordings/, played before queueing
    overflow_queue: str | None  # parallel mode: general seats take over after overflow_after_s
    overflow_after_s: int | None
    queue_priority: int  # app_queue caller priority for this line (higher is served first)
    variables: dict[str, str] = field(default_factory=dict)
    optional_key: OptionalKeyPlan | None = None  # the one key the YAML may ask for; no menus


@dataclass(frozen=True)
class OptionalKeyPlan:
    key: str
    queue: str
    prompt: str  # prompt name under recordings/prompts/


@dataclass(frozen=True)
class RoutingPlan:
    hotline_number: str
    routes: dict[str, RoutePlan]  # by dialled number
    queues: dict[str, QueuePlan]  # by queue name
    priority_callers: frozenset[str]  # caller numbers that get ``priority_caller_boost``
    priority_caller_boost: int
    survey_enabled: bool
    survey_keys: dict[str, str]  # DTMF key -> result ("1" -> "satisfied", ...)
    survey_timeout_s: int
    emergency_targets: dict[str, str]  # "110" -> dial string, hand-over only
    seats: dict[str, SeatPlan] = field(default_factory=dict)  # by extension
    pause_reasons: tuple[str, ...] = ()  # the only reasons a seat may pause with (workbench)


def seat_interface(extension: str) -> str:
    """The app_queue member interface of a seat's phone, as the rendered dialplan defines it."""
    return f"Local/{extension}@{SEATS_CONTEXT}/n"


def prompt_name(kind: str, key: str = "") -> str:
    """File name (without extension) of a voice prompt under recordings/."""
    return f"hotline-{kind}-{key}" if key else f"hotline-{kind}"


def build_routing(config: HotlineConfig, *, today: dt.date | None = None) -> RoutingPlan:
    """Pure: the same config and day always give the same plan (cutover dates depend on the day)."""
    today = today or dt.date.today()
    queues = {q.name: _queue_plan(q) for q in config.queues}
    hotline = config.hotline
    routes = {
        hotline.number: _route(queues, hotline.number, hotline.name, "hotline", config.general_queue.name)
    }
    routes[hotline.number] = _with_key(routes[hotline.number], hotline.optional_key)
    for line in config.legacy_lines:
        # Before its cutover day a line still runs as it did: its old queue, tagged legacy (the
        # work order and the KPIs must not say a merge that has not happened yet).
        legacy = line.cutover is not None and today < line.cutover and line.old_queue is not None
        mode = MergeMode.LEGACY if legacy else line.mode
        variables = {
            VAR_LEGACY_LINE: line.number,
            VAR_DEPARTMENT: line.department,
            VAR_MERGE_MODE: mode.value,
            VAR_CATEGORY: line.category,
            VAR_LINE_PRIORITY: str(line.priority),
        }
        title = f"{line.number} {line.title}"
        if legacy and line.old_queue is not None:
            route = _route(queues, line.number, title, mode.value, line.old_queue, line.priority, variables)
        else:
            queue = (
                line.queue if line.mode is not MergeMode.MERGED and line.queue else config.general_queue.name
            )
            route = _route(queues, line.number, title, line.mode.value, queue, line.priority, variables)
            announcement = prompt_name("announce", line.number) if line.announcement else None
            route = _with_key(replace(route, announcement=announcement), line.optional_key)
        routes[line.number] = route
    return RoutingPlan(
        hotline_number=hotline.number,
        routes=routes,
        queues=queues,
        priority_callers=frozenset(hotline.priority_callers),
        priority_caller_boost=hotline.priority_caller_boost,
        survey_enabled=config.survey.enabled,
        survey_keys={key: str(result) for key, result in config.survey.keys.items()},
        survey_timeout_s=config.survey.timeout_s,
        emergency_targets={t.number: t.dial for t in config.emergency_targets},
        seats={
            ext: SeatPlan(ext, f"{group.name_prefix}{ext}", tuple(group.queues), group.penalty)
            for group in config.seats
            for ext in group.extension_list()
        },
        pause_reasons=tuple(config.workbench.pause_reasons),
    )


def _route(
    queues: dict[str, QueuePlan],
    number: str,
    title: str,
    mode: str,
    queue: str,
    priority: int = 5,
    variables: dict[str, str] | None = None,
) -> RoutePlan:
    return RoutePlan(
        number=number,
        title=title,
        merge_mode=mode,
        queue=queue,
        announcement=None,
        overflow_queue=queues[queue].overflow_queue,
        overflow_after_s=queues[queue].overflow_after_s,
        queue_priority=priority,
        variables=variables
        or {VAR_LEGACY_LINE: number, VAR_MERGE_MODE: mode, VAR_LINE_PRIORITY: str(priority)},
    )


def _with_key(route: RoutePlan, key: OptionalKey | None) -> RoutePlan:
    if key is None:
        return route
    return replace(route, optional_key=OptionalKeyPlan(key.key, key.queue, prompt_name("key", route.number)))


def _queue_plan(queue: Queue) -> QueuePlan:
    return QueuePlan(
        name=queue.name,
        title=queue.title,
        kind=queue.kind.value,
        strategy=queue.strategy.value,
        ring_timeout_s=queue.ring_timeout_s,
        retry_s=queue.retry_s,
        wrapup_s=queue.wrapup_s,
        service_level_s=queue.service_level_s,
        callback_offer_after_s=queue.callback_offer_after_s,
        # 7x24: callers always join and stay; an empty queue overflows rather than hangs up.
        joinempty="yes",
        leavewhenempty="no",
        overflow_queue=queue.overflow_to,
        overflow_after_s=queue.overflow_after_s,
    )


def handover_extensions(plan: RoutingPlan) -> dict[str, str]:
    """Queue name -> its digits-only extension in the handover context (expert and policy queues)."""
    names = [q.name for q in plan.queues.values() if q.kind in {"expert", "policy", "subcenter"}]
    return {name: str(HANDOVER_BASE + i + 1) for i, name in enumerate(names)}
