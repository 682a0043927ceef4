"""The typed model of hotline_merge.yaml: how a city's hotlines are merged into 12345.

Structural rules (types, required fields, unknown keys, formats) are pydantic's job here;
cross-field rules (references, duplicates, 7x24 coverage, mode consistency) are in
``semantic_problems`` so that every one of them is reported at once, each at its own field.
Merge modes follow 国办发〔2020〕53号: merged (整体并入), parallel (双号并行), subcenter (设分中心).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from gateway.masking import CallerMask
from gateway.merge.dialplan_text import dial_string, dialplan_text
from gateway.vocabulary import CATEGORY, DTMF_KEY, HandoverMode, MergeMode, anchored

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
QUEUE_NAME = re.compile(r"^[a-z][a-z0-9-]{1,39}$")


def _number_text(value: Any) -> Any:
    # YAML reads 12345 as an int; phone numbers are text (leading zeros matter).
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


_PHONE = r"^[0-9]{3,11}$"
_CATEGORY = anchored(CATEGORY)
_NUMBER_PATTERN = r"^_([0-9XZN]|\[[0-9-]+\])+$"
# What a person should be told when a value does not match its pattern.
PATTERN_HINTS = {
    _PHONE: "a phone number is 3 to 11 digits",
    _CATEGORY: "a work-order category code is 6 digits (GB/T 39666-2020)",
    _NUMBER_PATTERN: "a number pattern is _ then digits, X (0-9), Z (1-9), N (2-9) or [1-5] ranges",
    QUEUE_NAME.pattern: "a queue name is 2-40 lowercase letters, digits and dashes, starting with a letter",
}

PhoneNumber = Annotated[str, BeforeValidator(_number_text), Field(pattern=_PHONE)]
CategoryCode = Annotated[str, BeforeValidator(_number_text), Field(pattern=_CATEGORY)]
QueueName = Annotated[str, Field(pattern=QUEUE_NAME.pattern)]
# Texts reach the dialplan and voice prompts: gateway.merge.dialplan_text says which may.
ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(dialplan_text)]
Seconds = Annotated[int, Field(ge=0, le=86_400)]
DtmfKey = Annotated[str, BeforeValidator(_number_text), Field(pattern=anchored(DTMF_KEY))]


def _one_of(*allowed: StrEnum) -> BeforeValidator:
    """Only some members of a shared enum may be written in the config (the rest are derived)."""

    def check(value: Any) -> Any:
        if value not in {member.value for member in allowed}:
            raise ValueError(
                "Input should be "
                + " or ".join([", ".join(repr(m.value) for m in allowed[:-1]), repr(allowed[-1].value)])
            )
        return value

    return BeforeValidator(check)


# Admins choose these; "hotline" and "legacy" (before a cutover day) come from the routing plan.
LINE_MODES = (MergeMode.MERGED, MergeMode.PARALLEL, MergeMode.SUBCENTER)
LineMode = Annotated[MergeMode, _one_of(*LINE_MODES)]
# Linkage targets are reached blind or in a three-way call, never consulted.
EmergencyMode = Annotated[HandoverMode, _one_of(HandoverMode.BLIND, HandoverMode.THREEWAY)]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _env_name(value: str, what: str) -> str:
    if not ENV_NAME.match(value):
        raise ValueError(
            f"must be the NAME of an environment variable holding the {what} (e.g. HOTLINE_AMI_SECRET), "
            "never the secret itself"
        )
    return value


class QueueKind(StrEnum):
    GENERAL = "general"  # 综合坐席
    EXPERT = "expert"  # 专席 / 专区
    POLICY = "policy"  # 政策专家
    SUBCENTER = "subcenter"  # 分中心自有坐席


class Strategy(StrEnum):
    RINGALL = "ringall"
    RRMEMORY = "rrmemory"
    LEASTRECENT = "leastrecent"
    FEWESTCALLS = "fewestcalls"
    RANDOM = "random"
    LINEAR = "linear"


class OptionalKey(_Model):
    """The single optional DTMF key a line may offer (no menus by default, GB/T 33358-2016)."""

    key: DtmfKey
    prompt: ShortText
    queue: QueueName


class Hotline(_Model):
    number: PhoneNumber
    name: ShortText
    greeting: ShortText
    service_hours: Literal["7x24"] = "7x24"
    optional_key: OptionalKey | None = None
    priority_callers: list[PhoneNumber] = Field(default_factory=list, max_length=100_000)
    priority_caller_boost: Annotated[int, Field(ge=0, le=100)] = 10


class Shift(_Model):
    name: ShortText
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | Literal["daily"] = "daily"
    start: ClockTime
    end: ClockTime
    seats: Annotated[int, Field(ge=1, le=5000)]

    def weekdays(self) -> tuple[str, ...]:
        return DAYS if self.days == "daily" else tuple(self.days)

    def minutes(self) -> tuple[int, int]:
        """Start and end as minutes of the day; an end at or before the start runs past midnight."""

        def to_min(text: str) -> int:
            hours, minutes = text.split(":")
            return int(hours) * 60 + int(minutes)

        return to_min(self.start), to_min(self.end)


class Queue(_Model):
    name: QueueName
    title: ShortText
    kind: QueueKind
    department: ShortText | None = None
    strategy: Strategy = Strategy.RRMEMORY
    ring_timeout_s: Annotated[int, Field(ge=5, le=120)] = 15
    retry_s: Annotated[int, Field(ge=0, le=60)] = 2
    wrapup_s: Annotated[int, Field(ge=0, le=600)] = 30
    service_level_s: Annotated[int, Field(ge=1, le=600)] = 15
    # The share of callers to answer within service_level_s: what staffing is planned for (80/15).
    service_level_target_pct: Annotated[int, Field(ge=1, le=99)] = 80
    # What the dashboard colours each figure by (at or better: green; a little worse: amber).
    abandon_rate_target_pct: Annotated[int, Field(ge=1, le=99)] = 5  # at most
    asa_target_s: Annotated[int, Field(ge=1, le=600)] = 20  # average speed of answer, at most
    longest_wait_target_s: Annotated[int, Field(ge=1, le=3600)] = 60  # no caller waits longer
    callback_offer_after_s: Seconds | None = None
    overflow_to: QueueName | None = None
    overflow_after_s: Annotated[int, Field(ge=5, le=3600)] | None = None
    shifts: list[Shift] = Field(min_length=1)


class SeatGroup(_Model):
    """Seats (坐席) by extension range; they log in to these queues as dynamic members."""

    extensions: Annotated[str, Field(pattern=r"^[0-9]{3,6}(-[0-9]{3,6})?$")]
    name_prefix: ShortText = "坐席"
    queues: list[QueueName] = Field(min_length=1)
    penalty: Annotated[int, Field(ge=0, le=10)] = 0

    def extension_list(self) -> list[str]:
        first, _, last = self.extensions.partition("-")
        if not last:
            return [first]
        width = len(first)
        return [str(n).zfill(width) for n in range(int(first), int(last) + 1)]


class LegacyLine(_Model):
    number: PhoneNumber
    title: ShortText
    department: ShortText
    category: CategoryCode  # GB/T 39666-2020 class used as the work order's default
    priority: Annotated[int, Field(ge=0, le=10)] = 5
    mode: LineMode
    queue: QueueName | None = None  # parallel: department seats first; subcenter: its own queue
    announcement: ShortText | None = None  # merged: "本热线已并入12345…"
    optional_key: OptionalKey | None = None
    cutover: dt.date | None = None  # before this day the line keeps ``old_queue``
    old_queue: QueueName | None = None

    @field_validator("cutover", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD") from None
        return value


class EmergencyTarget(_Model):
    """110/119/120/122 linkage: never merged, reachable only by hand-over from a seat."""

    number: PhoneNumber
    name: ShortText
    dial: Annotated[str, AfterValidator(dial_string)]
    modes: list[EmergencyMode] = Field(default_factory=lambda: [HandoverMode.BLIND, HandoverMode.THREEWAY])


class Handover(_Model):
    max_per_call: Annotated[int, Field(ge=0, le=5)] = 1  # 来电最多接转一次
    supervisor_override: bool = True
    policy_queue: QueueName
    consult_timeout_s: Annotated[int, Field(ge=5, le=300)] = 45


class Survey(_Model):
    enabled: bool = True
    prompt: ShortText
    thanks: ShortText
    timeout_s: Annotated[int, Field(ge=1, le=30)] = 8
    keys: dict[DtmfKey, Literal["satisfied", "basic", "dissatisfied"]]


_PATTERN_DIGITS = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]"}
INTERNATIONAL = re.compile(r"(00|\+)[1-9][0-9]{6,14}")


class CallbackNumbers(_Model):
    """The numbers a call back may dial (the gateway pays for and places these calls).

    Patterns in Asterisk's notation (X 0-9, Z 1-9, N 2-9, [1-5]); numbers abroad (00..., +...)
    only when ``international`` is true, whatever the patterns say.
    """

    patterns: list[Annotated[str, Field(pattern=_NUMBER_PATTERN)]] = Field(
        default_factory=lambda: ["_[2-8]XXXXXXX", "_1[3-9]XXXXXXXXX"],  # local 8 digits, mobile 11
        min_length=1,
        max_length=50,
    )
    international: bool = False

    def allows(self, number: str | None) -> bool:
        if number is None:
            return False
        if number.startswith(("00", "+")):
            return self.international and INTERNATIONAL.fullmatch(number) is not None
        return any(_number_pattern(p).fullmatch(number) for p in self.patterns)


def _number_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(_PATTERN_DIGITS.get(c, c) for c in pattern[1:]))


class Callback(_Model):
    """回拨: a caller waiting longer than a queue's callback_offer_after_s may press one key."""

    key: DtmfKey = "1"
    offer: ShortText  # "等候时间较长，如需稍后回电请按1"
    confirm: ShortText  # "已为您登记回电，请保持电话畅通"
    numbers: CallbackNumbers = Field(default_factory=CallbackNumbers)


class OrderSystem(_Model):
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")]
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    token_env: str

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, value: str) -> str:
        return _env_name(value, "order system's bearer token")


class Ami(_Model):
    host: ShortText = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 5038
    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
    secret_env: str
    # A second, wider user only for config reloads (Reload needs the "config" class).
    admin_username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")] = "hotline-admin"
    admin_secret_env: str = "HOTLINE_AMI_ADMIN_SECRET"
    node_id: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")] = "pbx-1"
    permit: list[IPv4Network] = Field(default_factory=lambda: [IPv4Network("127.0.0.1/32")], min_length=1)
    bind: IPv4Address = IPv4Address("127.0.0.1")  # where Asterisk's AMI listens (manager.conf bindaddr)
    # The gateway logs in with the MD5 challenge; a plain secret in clear only if this says so.
    plain_login: bool = False

    @field_validator("secret_env", "admin_secret_env")
    @classmethod
    def _secret_env(cls, value: str) -> str:
        return _env_name(value, "AMI secret")


class Workbench(_Model):
    """The seats' workbench (/seat): pause reasons, caller masking, the category tree, history."""

    pause_reasons: list[ShortText] = Field(
        default_factory=lambda: ["小休", "培训", "会议", "用餐"], min_length=1, max_length=30
    )
    caller_mask: CallerMask = CallerMask.MIDDLE
    # A YAML file in the GB/T 39666 style, relative to this file; unset: the bundled tree.
    category_tree: Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]{1,200}$")] | None = None
    history_days: Annotated[int, Field(ge=1, le=365)] = 30
    history_timeout_s: Annotated[float, Field(gt=0, le=5)] = 1.0

    @field_validator("pause_reasons")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        twice = sorted({r for r in value if value.count(r) > 1})
        if twice:
            raise ValueError(f"each pause reason once; repeated: {', '.join(twice)}")
        if any(len(r) > 80 for r in value):
            raise ValueError("a pause reason is at most 80 characters (Asterisk's QueuePause Reason)")
        return value


class Targets(_Model):
    """The three rates a 12345 centre is judged by (三率), over all queues; the dashboard's colours."""

    response_rate_pct: Annotated[int, Field(ge=1, le=100)] = 95  # answered ÷ offered, at least
    resolution_rate_pct: Annotated[int, Field(ge=1, le=100)] = 80  # resolved ÷ with feedback
    satisfaction_rate_pct: Annotated[int, Field(ge=1, le=100)] = 90  # (satisfied + basic) ÷ rated


class HotlineConfig(_Model):
    version: Literal[1]
    hotline: Hotline
    queues: list[Queue] = Field(min_length=1)
    seats: list[SeatGroup] = Field(default_factory=list)
    legacy_lines: list[LegacyLine] = Field(default_factory=list)
    emergency_targets: list[EmergencyTarget] = Field(default_factory=list)
    handover: Handover
    survey: Survey
    callback: Callback
    order_system: OrderSystem
    ami: Ami
    workbench: Workbench = Field(default_factory=Workbench)
    targets: Targets = Field(default_factory=Targets)

    def queue(self, name: str) -> Queue:
        return next(q for q in self.queues if q.name == name)

    @property
    def general_queue(self) -> Queue:
        return next(q for q in self.queues if q.kind is QueueKind.GENERAL)


Loc = tuple[str | int, ...]


def semantic_problems(config: HotlineConfig, *, today: dt.date) -> Iterator[tuple[Loc, str]]:
    """Every cross-field problem as (field path, message); empty when the config is usable."""
    queue_names = {queue.name: i for i, queue in reversed(list(enumerate(config.queues)))}

    def unknown_queue(name: str | None, loc: Loc) -> Iterator[tuple[Loc, str]]:
        if name is not None and name not in queue_names:
            yield loc, f"queue {name!r} is not defined under queues (defined: {', '.join(queue_names)})"

    generals = [i for i, q in enumerate(config.queues) if q.kind is QueueKind.GENERAL]
    if len(generals) != 1:
        yield (
            ("queues",),
            f"exactly one queue must be kind 'general' (the 12345 seats); found {len(generals)}",
        )

    for i, queue in enumerate(config.queues):
        yield from unknown_queue(queue.overflow_to, ("queues", i, "overflow_to"))
        if queue.overflow_to == queue.name:
            yield ("queues", i, "overflow_to"), "a queue cannot overflow to itself"
        if (queue.overflow_to is None) != (queue.overflow_after_s is None):
            yield ("queues", i, "overflow_after_s"), "overflow_to and overflow_after_s go together"
        if queue.kind is QueueKind.EXPERT and queue.department is None:
            yield ("queues", i, "department"), "an expert queue names its department"
        gaps = _coverage_gaps(queue.shifts)
        if gaps and queue.overflow_to is None:
            yield (
                ("queues", i, "shifts"),
                (f"no seats {gaps[0]} and no overflow_to: 12345 is 7x24 and never closed"),
            )

    yield from unknown_queue(config.handover.policy_queue, ("handover", "policy_queue"))
    policy = config.handover.policy_queue
    if policy in queue_names and config.queue(policy).kind is not QueueKind.POLICY:
        yield ("handover", "policy_queue"), "must name a queue of kind 'policy'"
    if config.hotline.optional_key:
        yield from unknown_queue(config.hotline.optional_key.queue, ("hotline", "optional_key", "queue"))

    for g, group in enumerate(config.seats):
        first, _, last = group.extensions.partition("-")
        if last and (len(first) != len(last) or int(last) < int(first)):
            yield (
                ("seats", g, "extensions"),
                "a range is FIRST-LAST with the same number of digits, FIRST <= LAST",
            )
        for q, name in enumerate(group.queues):
            yield from unknown_queue(name, ("seats", g, "queues", q))

    emergency = {t.number for t in config.emergency_targets}
    for t, target in enumerate(config.emergency_targets):
        if target.number == config.hotline.number:
            yield ("emergency_targets", t, "number"), "an emergency target cannot be the hotline number"
    for number in sorted({"110", "119", "120", "122"} - emergency):
        yield (
            ("emergency_targets",),
            f"emergency linkage target {number} is missing (110, 119, 120, 122 are required)",
        )

    for i, line in enumerate(config.legacy_lines):
        loc: Loc = ("legacy_lines", i)
        if line.number == config.hotline.number:
            yield (*loc, "number"), "a legacy line cannot be the hotline number itself"
        if line.number in emergency:
            yield (*loc, "number"), f"{line.number} is an emergency linkage target; those are never merged"
        yield from _line_mode_problems(config, line, loc, unknown_queue)
        if line.optional_key:
            yield from unknown_queue(line.optional_key.queue, (*loc, "optional_key", "queue"))
        if (line.cutover is None) != (line.old_queue is None):
            yield (
                (*loc, "old_queue"),
                "cutover and old_queue go together (the route kept until the cutover day)",
            )
        yield from unknown_queue(line.old_queue, (*loc, "old_queue"))

    if config.survey.enabled and not config.survey.keys:
        yield ("survey", "keys"), "an enabled survey needs its keys (1 满意, 2 基本满意, 3 不满意)"
    results = list(config.survey.keys.values())
    if len(set(results)) != len(results):
        yield ("survey", "keys"), "each result (satisfied, basic, dissatisfied) may have one key only"


def duplicates(config: HotlineConfig) -> Iterator[tuple[Loc, str, Loc]]:
    """Every value given twice as (field path of the copy, message, field path of the first)."""
    queues: dict[str, int] = {}
    for i, queue in enumerate(config.queues):
        if queue.name in queues:
            yield (
                ("queues", i, "name"),
                f"queue {queue.name!r} is defined twice",
                ("queues", queues[queue.name]),
            )
        queues.setdefault(queue.name, i)
    extensions: dict[str, int] = {}
    for g, group in enumerate(config.seats):
        for ext in group.extension_list():
            if ext in extensions and extensions[ext] != g:
                first = ("seats", extensions[ext], "extensions")
                yield ("seats", g, "extensions"), f"extension {ext} is in two seat groups", first
                break
            extensions.setdefault(ext, g)
    numbers: dict[str, int] = {}
    for i, line in enumerate(config.legacy_lines):
        if line.number in numbers:
            first = ("legacy_lines", numbers[line.number], "number")
            yield ("legacy_lines", i, "number"), f"{line.number} is defined twice", first
        numbers.setdefault(line.number, i)


def _line_mode_problems(
    config: HotlineConfig, line: LegacyLine, loc: Loc, unknown_queue: Any
) -> Iterator[tuple[Loc, str]]:
    if line.mode is MergeMode.MERGED:
        if line.queue is not None:
            yield (
                (*loc, "queue"),
                "a merged line goes to the general 12345 seats; remove queue (or use mode parallel)",
            )
        return
    if line.announcement is not None:
        yield (*loc, "announcement"), "only merged lines play the transition announcement"
    if line.queue is None:
        what = (
            "the department's seats inside 12345"
            if line.mode is MergeMode.PARALLEL
            else "the sub-centre's own queue"
        )
        yield (*loc, "queue"), f"mode {line.mode.value} needs queue: {what}"
        return
    yield from unknown_queue(line.queue, (*loc, "queue"))
    if line.queue not in {q.name for q in config.queues}:
        return
    queue = config.queue(line.queue)
    if line.mode is MergeMode.PARALLEL:
        if queue.kind is not QueueKind.EXPERT:
            yield (
                (*loc, "queue"),
                f"parallel lines go to a department expert queue; {queue.name!r} is kind {queue.kind.value}",
            )
        elif queue.overflow_to is None:
            yield (
                (*loc, "queue"),
                f"parallel lines overflow to general seats; queue {queue.name!r} has no overflow_to",
            )
    elif queue.kind is not QueueKind.SUBCENTER:
        yield (
            (*loc, "queue"),
            f"subcenter lines go to a queue of kind subcenter; {queue.name!r} is kind {queue.kind.value}",
        )


def _coverage_gaps(shifts: list[Shift]) -> list[str]:
    """Describe the first uncovered minute of the week, if any (for the 7x24 rule)."""
    week = bytearray(7 * 1440)
    for shift in shifts:
        start, end = shift.minutes()
        length = (end - start) % 1440 or 1440
        for day in shift.weekdays():
            base = DAYS.index(day) * 1440 + start
            for minute in range(base, base + length):
                week[minute % len(week)] = 1
    gap = week.find(0)
    if gap < 0:
        return []
    day_index, minute = divmod(gap, 1440)
    return [f"on {DAYS[day_index]} from {minute // 60:02d}:{minute % 60:02d}"]
