"""What the simulated PBX runs: dialplan, queues, manager users, seats and traffic numbers.

Two sources, one format (Asterisk's own configuration files):
- ``plan_from_config(HotlineConfig)``: the product. ``gateway.dialplan.render`` renders
  extensions.conf, queues.conf and manager.conf from hotline_merge.yaml exactly as it does for
  Asterisk, and the simulator executes those files; so the demo and the tests run the very merge
  Asterisk will run. The seats of the roster log in at boot (as ``persistentmembers`` would bring
  them back), optionally topped up with simulated seats to N per queue; prompts last as long as
  the WAV files in recordings/prompts/ do;
- ``load_asterisk_conf(dir)``: any configuration directory, e.g. the traces' test bench for the
  conformance tests.
"""

from __future__ import annotations

import datetime as dt
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.dialplan.render import render
from gateway.dialplan.routing import RoutingPlan, build_routing, seat_interface
from gateway.errors import GatewayError
from gateway.merge.schema import HotlineConfig
from gateway.sim.dialplan import Dialplan, parse_extensions_conf
from gateway.sim.manager import ManagerUser, parse_manager_conf
from gateway.sim.pbx import PbxSettings
from gateway.sim.queues import MemberSpec, QueueSpec

SIMULATED_SEAT_BASE = 9000  # extensions of seats added to reach --seats-per-queue


class PlanError(GatewayError):
    code = "sim.plan"


@dataclass
class SimPlan:
    dialplan: Dialplan
    queues: list[QueueSpec]
    settings: PbxSettings = field(default_factory=PbxSettings)
    users: list[ManagerUser] = field(default_factory=list)
    inbound: dict[str, float] = field(default_factory=dict)  # dialled number -> traffic weight
    seats: dict[str, list[MemberSpec]] = field(default_factory=dict)  # queue -> members logged in at boot
    routing: RoutingPlan | None = None
    callback_key: str | None = None
    persistent_members: bool = True  # queues.conf [general] persistentmembers (Asterisk's default: yes)


# -- configuration files ----------------------------------------------------------------------
_BOOL = {
    "yes": True,
    "true": True,
    "on": True,
    "1": True,
    "no": False,
    "false": False,
    "off": False,
    "0": False,
}
_INT_KEYS = ("timeout", "retry", "wrapuptime", "servicelevel", "weight", "maxlen")
_BOOL_KEYS = ("ringinuse", "autofill", "autopause", "setinterfacevar", "setqueueentryvar", "setqueuevar")
_TEXT_KEYS = ("strategy", "joinempty", "leavewhenempty", "musicclass", "context")


def parse_queues_conf(text: str, *, source: str = "queues.conf") -> list[QueueSpec]:
    """The queues.conf keys app_queue's behaviour here depends on; the others are ignored."""
    specs: list[QueueSpec] = []
    current: dict[str, Any] | None = None
    members: list[MemberSpec] = []

    def close() -> None:
        if current is not None:
            specs.append(QueueSpec(members=list(members), **current))

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
        elif key in _INT_KEYS:
            current[key] = int(value)
        elif key in _BOOL_KEYS:
            if value.lower() not in _BOOL:
                raise PlanError(f"{source}:{number}: {key} must be yes or no, not {value!r}")
            current[key] = _BOOL[value.lower()]
        elif key in _TEXT_KEYS:
            current[key] = value
    close()
    return specs


def persistent_members(text: str) -> bool:
    """queues.conf ``[general] persistentmembers``: dynamic members survive a restart (via AstDB)."""
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == "general" and line.partition("=")[0].strip().lower() == "persistentmembers":
            return _BOOL.get(line.partition("=")[2].strip().lower(), True)
    return True


def load_asterisk_conf(directory: Path) -> SimPlan:
    """extensions.conf + queues.conf (+ manager.conf if present) from one directory."""
    extensions, queues = directory / "extensions.conf", directory / "queues.conf"
    for path in (extensions, queues):
        if not path.is_file():
            raise PlanError(f"{path}: missing (an Asterisk configuration directory needs it)")
    manager = directory / "manager.conf"
    users = parse_manager_conf(manager.read_text(encoding="utf-8")) if manager.is_file() else []
    queues_text = queues.read_text(encoding="utf-8")
    return SimPlan(
        dialplan=parse_extensions_conf(extensions.read_text(encoding="utf-8"), source=str(extensions)),
        queues=parse_queues_conf(queues_text, source=str(queues)),
        users=users,
        persistent_members=persistent_members(queues_text),
    )


# -- hotline_merge.yaml ----------------------------------------------------------------------
def plan_from_config(
    config: HotlineConfig, *, seats_per_queue: int | None = None, weights: dict[str, float] | None = None,
    prompts: Path | None = None, today: dt.date | None = None, tracked_events: frozenset[str] = frozenset(),
) -> SimPlan:  # fmt: skip
    files = render(config, today=today, tracked_events=tracked_events)
    routing = build_routing(config, today=today)
    settings = PbxSettings()
    if prompts is not None and prompts.is_dir():
        settings.prompt_seconds.update(wav_durations(prompts))
    return SimPlan(
        dialplan=parse_extensions_conf(files["extensions.conf"], source="rendered extensions.conf"),
        queues=parse_queues_conf(files["queues.conf"], source="rendered queues.conf"),
        settings=settings,
        users=parse_manager_conf(files["manager.conf"]),
        inbound=traffic_weights(routing, weights),
        seats=seats_at_boot(routing, seats_per_queue),
        routing=routing,
        callback_key=config.callback.key,
        persistent_members=persistent_members(files["queues.conf"]),
    )


def seats_at_boot(routing: RoutingPlan, per_queue: int | None) -> dict[str, list[MemberSpec]]:
    """The roster's seats per queue (first ``per_queue`` of them), topped up with simulated seats."""
    seats: dict[str, list[MemberSpec]] = {name: [] for name in routing.queues}
    for seat in sorted(routing.seats.values(), key=lambda s: s.extension):
        for queue in seat.queues:
            if queue in seats and (per_queue is None or len(seats[queue]) < per_queue):
                seats[queue].append(MemberSpec(seat_interface(seat.extension), seat.name, seat.penalty))
    if per_queue is not None:
        next_exten = SIMULATED_SEAT_BASE + 1
        for members in seats.values():
            while len(members) < per_queue:
                members.append(MemberSpec(seat_interface(str(next_exten)), f"模拟坐席{next_exten}"))
                next_exten += 1
    return seats


def traffic_weights(routing: RoutingPlan, weights: dict[str, float] | None) -> dict[str, float]:
    """Traffic share per dialled number: as given, else half on the hotline and the rest shared."""
    numbers = list(routing.routes)
    if weights:
        unknown = sorted(set(weights) - set(numbers))
        if unknown:
            raise PlanError(f"traffic weights name numbers with no route: {', '.join(unknown)}")
        return {n: float(weights.get(n, 0.0)) for n in numbers}
    legacy = [n for n in numbers if n != routing.hotline_number]
    if not legacy:
        return dict.fromkeys(numbers, 1.0)
    shares = {n: 0.5 / len(legacy) for n in legacy}
    shares[routing.hotline_number] = 0.5
    return shares


def wav_durations(directory: Path) -> dict[str, float]:
    """Seconds of each ``*.wav`` (the voice prompts), by file name without extension."""
    durations: dict[str, float] = {}
    for path in sorted(directory.glob("*.wav")):
        try:
            with wave.open(str(path), "rb") as audio:
                durations[path.stem] = audio.getnframes() / float(audio.getframerate())
        except (wave.Error, EOFError, OSError):
            continue
    return durations
