"""What the simulated PBX runs: dialplan, queues, manager users and traffic numbers.

Two sources:
- ``plan_from_routing(RoutingPlan)``: the product. The same routing data the dialplan renderer
  uses becomes contexts ``from-pstn`` (one extension per number: variables, answer, announcement,
  Queue, overflow, the post-call survey), ``transfer`` (one extension per queue plus numeric
  aliases for Atxfer, and the emergency linkage targets), ``conf`` (three-way rooms),
  ``hotline-callback`` (the callback key) and ``agents`` (simulated seats), and one QueueSpec per
  queue with N seats as dynamic members;
- ``load_asterisk_conf(dir)``: an Asterisk configuration directory (extensions.conf, queues.conf,
  manager.conf), e.g. the traces' bench, for the conformance tests, or rendered dialplans.

The survey and callback report themselves with UserEvents whose names and fields are in
``gateway.sim.userevents`` (the renderer emits the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway.dialplan.routing import INBOUND_CONTEXT, SEATS_CONTEXT, RoutingPlan
from gateway.errors import GatewayError
from gateway.sim.dialplan import Dialplan, Step, parse_extensions_conf
from gateway.sim.manager import ManagerUser, parse_manager_conf
from gateway.sim.pbx import PbxSettings
from gateway.sim.queues import MemberSpec, QueueSpec
from gateway.sim.userevents import CALLBACK_EVENT, CALLBACK_KEY, SURVEY_EVENT

TRANSFER_CONTEXT = "transfer"
CONF_CONTEXT = "conf"
CALLBACK_CONTEXT = "hotline-callback"
ATXFER_ALIAS_BASE = 7000  # Atxfer dials digits only: transfer,7001 is the first queue, and so on
SEAT_BASE = 8000
SURVEY_PROMPT = "hotline-survey"
CALLBACK_PROMPT = "hotline-callback-confirm"
SURVEY_TIMEOUT_S = 5


class PlanError(GatewayError):
    code = "sim.plan"


@dataclass
class SimPlan:
    dialplan: Dialplan
    queues: list[QueueSpec]
    settings: PbxSettings = field(default_factory=PbxSettings)
    users: list[ManagerUser] = field(default_factory=list)
    inbound: dict[str, float] = field(default_factory=dict)  # dialled number -> traffic weight
    seats: dict[str, list[str]] = field(default_factory=dict)  # queue -> simulated seat extensions

    @property
    def transfer_aliases(self) -> dict[str, str]:
        """Queue name -> numeric extension in ``transfer`` (what an Atxfer must dial)."""
        context = self.dialplan.contexts.get(TRANSFER_CONTEXT)
        aliases: dict[str, str] = {}
        for name, ext in (context.exact.items() if context else []):
            step = ext.steps[0] if ext.steps else None
            if name.isdigit() and step is not None and step.app == "Goto":
                aliases[step.data.split(",")[0]] = name
        return aliases


# -- queues.conf ------------------------------------------------------------------------------
_BOOL = {"yes": True, "true": True, "on": True, "1": True, "no": False, "false": False, "off": False, "0": False}


def parse_queues_conf(text: str, *, source: str = "queues.conf") -> list[QueueSpec]:
    specs: list[QueueSpec] = []
    current: dict[str, object] | None = None
    members: list[MemberSpec] = []

    def close() -> None:
        if current is not None:
            specs.append(QueueSpec(members=list(members), **current))  # type: ignore[arg-type]

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            close()
            name = line[1:-1].strip()
            current, members = (None, []) if name == "general" else ({"name": name}, [])
            continue
        if current is None:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip().lower(), value.strip().lstrip(">").strip()
        if key == "member":
            parts = [p.strip() for p in value.split(",")]
            penalty = int(parts[1]) if len(parts) > 1 and parts[1] else 0
            members.append(MemberSpec(parts[0], parts[2] if len(parts) > 2 else parts[0], penalty))
        elif key in ("timeout", "retry", "wrapuptime", "servicelevel", "weight", "maxlen"):
            current[key] = int(value)
        elif key in ("ringinuse", "autofill", "autopause", "setinterfacevar", "setqueueentryvar", "setqueuevar"):
            if value.lower() not in _BOOL:
                raise PlanError(f"{source}:{number}: {key} must be yes or no, not {value!r}")
            current[key] = _BOOL[value.lower()]
        elif key in ("strategy", "joinempty", "leavewhenempty", "musicclass", "context"):
            current[key] = value
    close()
    return specs


def load_asterisk_conf(directory: Path) -> SimPlan:
    """extensions.conf + queues.conf (+ manager.conf if present) from one directory."""
    extensions = directory / "extensions.conf"
    queues = directory / "queues.conf"
    for path in (extensions, queues):
        if not path.is_file():
            raise PlanError(f"{path}: missing (an Asterisk configuration directory needs it)")
    manager = directory / "manager.conf"
    users = parse_manager_conf(manager.read_text(encoding="utf-8")) if manager.is_file() else []
    return SimPlan(
        dialplan=parse_extensions_conf(extensions.read_text(encoding="utf-8"), source=str(extensions)),
        queues=parse_queues_conf(queues.read_text(encoding="utf-8"), source=str(queues)),
        users=users,
    )


# -- RoutingPlan ------------------------------------------------------------------------------
def plan_from_routing(
    routing: RoutingPlan, *, seats_per_queue: int = 2, weights: dict[str, float] | None = None,
    prompt_seconds: dict[str, float] | None = None,
) -> SimPlan:  # fmt: skip
    dialplan = Dialplan()
    for key, result in routing.survey_keys.items():
        dialplan.globals[f"SURVEY_RESULT_{key}"] = result
    queue_names = list(routing.queues)
    with_callback = {name for name, q in routing.queues.items() if q.callback_offer_after_s is not None}
    for number, route in routing.routes.items():
        steps = [Step("NoOp", route.title)]
        steps += [Step("Set", f"{_inherited(name)}={value}") for name, value in route.variables.items()]
        steps.append(Step("Answer"))
        if route.announcement:
            steps.append(Step("Playback", route.announcement))
        if route.queue_priority:
            steps.append(Step("Set", f"QUEUE_PRIO={route.queue_priority}"))
        if route.queue in with_callback or (route.overflow_queue in with_callback):
            steps.append(Step("Set", "QUEUE_JOIN_TIME=${EPOCH}"))
        if route.overflow_queue and route.overflow_after_s:
            steps.append(Step("Queue", f"{route.queue},tTc,,,{route.overflow_after_s}"))
            steps.append(Step("Queue", f"{route.overflow_queue},tTc"))
        else:
            steps.append(Step("Queue", f"{route.queue},tTc"))
        steps += _survey_steps(routing)
        dialplan.add(INBOUND_CONTEXT, number, *steps)
    for index, name in enumerate(queue_names, 1):
        title = routing.queues[name].title
        dialplan.add(TRANSFER_CONTEXT, name, Step("NoOp", f"transfer to {title}"), Step("Queue", f"{name},tTc"),
                     *_survey_steps(routing))  # fmt: skip
        dialplan.add(TRANSFER_CONTEXT, str(ATXFER_ALIAS_BASE + index), Step("Goto", f"{name},1"))
    for target in routing.emergency_targets:
        # No trunk here: the linkage centre is a simulated party that answers after a short ring.
        dialplan.add(TRANSFER_CONTEXT, target, Step("NoOp", f"emergency linkage {target}"), Step("Ringing"),
                     Step("Wait", "3"), Step("Answer"), Step("Wait", "3600"), Step("Hangup"))  # fmt: skip
    dialplan.add(CONF_CONTEXT, "_X.", Step("NoOp", "join conference ${EXTEN}"), Step("Answer"),
                 Step("ConfBridge", "${EXTEN}"), Step("Hangup"))  # fmt: skip
    if with_callback:
        body = ",".join(f"{field_name}: {value}" for field_name, value in (
            ("Linkedid", "${CHANNEL(linkedid)}"), ("CallerIDNum", "${CALLERID(num)}"),
            ("LegacyLine", "${LEGACY_LINE}"), ("Queue", "${QUEUENAME}"), ("Position", "${QUEUEPOSITION}"),
            ("OriginalPosition", "${QEORIGINALPOS}"), ("JoinTime", "${QUEUE_JOIN_TIME}"), ("WaitTime", "${QUEUEWAIT}"),
        ))  # fmt: skip
        dialplan.add(CALLBACK_CONTEXT, CALLBACK_KEY, Step("UserEvent", f"{CALLBACK_EVENT},{body}"),
                     Step("Playback", CALLBACK_PROMPT), Step("Hangup"))  # fmt: skip
    dialplan.add(SEATS_CONTEXT, "_X.", Step("NoOp", "seat ${EXTEN}"), Step("Ringing"), Step("Wait", "${SIM_SEAT(ring)}"),
                 Step("Answer"), Step("Wait", "${SIM_SEAT(talk)}"), Step("Hangup"))  # fmt: skip
    queues: list[QueueSpec] = []
    seats: dict[str, list[str]] = {}
    next_seat = SEAT_BASE + 1
    for name, plan in routing.queues.items():
        members = [MemberSpec(m.interface, m.name, m.penalty) for m in plan.members]
        seats[name] = []
        for _ in range(seats_per_queue):
            exten = str(next_seat)
            next_seat += 1
            seats[name].append(exten)
        queues.append(QueueSpec(
            name=name, strategy=plan.strategy, timeout=plan.ring_timeout_s, retry=plan.retry_s,
            wrapuptime=plan.wrapup_s, joinempty=plan.joinempty, leavewhenempty=plan.leavewhenempty,
            setinterfacevar=True, setqueueentryvar=True, setqueuevar=True, servicelevel=plan.service_level_s,
            context=CALLBACK_CONTEXT if name in with_callback else "", members=members,
        ))  # fmt: skip
    settings = PbxSettings(
        prompt_seconds={"beep": 0.424, SURVEY_PROMPT: 4.0, CALLBACK_PROMPT: 3.0, **(prompt_seconds or {})},
        priority_callers=routing.priority_callers, priority_caller_boost=routing.priority_caller_boost,
    )  # fmt: skip
    return SimPlan(dialplan, queues, settings, inbound=_weights(routing, weights), seats=seats)


def _inherited(name: str) -> str:
    return name if name.startswith("_") else f"__{name}"


def _survey_steps(routing: RoutingPlan) -> list[Step]:
    if not routing.survey_enabled:
        return [Step("Hangup")]
    result = "${IF(${SURVEY_RESULT_${SURVEY_KEY}}?${SURVEY_RESULT_${SURVEY_KEY}}:none)}"
    body = f"Linkedid: ${{CHANNEL(linkedid)}},LegacyLine: ${{LEGACY_LINE}},Key: ${{SURVEY_KEY}},Result: {result}"
    # Only a caller who talked to a seat is asked (ANSWEREDTIME is 0 or empty otherwise).
    return [
        Step("GotoIf", "${ANSWEREDTIME}?survey:done"),
        Step("Read", f"SURVEY_KEY,{SURVEY_PROMPT},1,,1,{SURVEY_TIMEOUT_S}", label="survey"),
        Step("UserEvent", f"{SURVEY_EVENT},{body}"),
        Step("Hangup", label="done"),
    ]


def _weights(routing: RoutingPlan, weights: dict[str, float] | None) -> dict[str, float]:
    """Traffic share per dialled number: given, else half on the hotline, the rest shared."""
    numbers = list(routing.routes)
    if weights:
        unknown = sorted(set(weights) - set(numbers))
        if unknown:
            raise PlanError(f"traffic weights name numbers with no route: {', '.join(unknown)}")
        return {n: float(weights.get(n, 0.0)) for n in numbers}
    legacy = [n for n in numbers if n != routing.hotline_number]
    if not legacy:
        return {n: 1.0 for n in numbers}
    out = {n: 0.5 / len(legacy) for n in legacy}
    if routing.hotline_number in routing.routes:
        out[routing.hotline_number] = 0.5
    return out
