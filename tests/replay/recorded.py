"""Recorded traces as (seconds since connect, message) pairs, and a tracker fed with them.

The ``.ami`` file holds the exact bytes; the timeline file holds one RECV line per message with
its time, in the same order, so both together give every event the moment Asterisk sent it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from gateway.ami.protocol import Message, MessageParser
from gateway.calls.tracker import Output, QueueRules, Tracker
from gateway.contract import CONTROLLER_USER_READ, TRACKED_EVENTS
from tests.conftest import FIXTURES
from tests.support.ami_peer import TRACES

TRACES_REAL = FIXTURES / "ami-traces-real"
# The real traces carry no times: each message is taken to come this long after the one before.
REAL_STEP_S = 0.01

RECORDED_AT = dt.datetime(2026, 11, 27, 17, 0, tzinfo=dt.UTC)
_RECV = re.compile(r"^\s*(\d+\.\d+)\s+RECV (?:Event|Response):", re.MULTILINE)


def trace_path(name: str) -> Path:
    """``"06b"`` -> the bytes Asterisk sent in trace 06b."""
    return next(p for p in TRACES.glob(f"{name}-*.ami") if not p.name.endswith(".sent.ami"))


def recorded(name: str) -> list[tuple[float, Message]]:
    path = trace_path(name)
    messages = list(MessageParser(expect_banner=True).feed(path.read_bytes()))
    times = [float(t) for t in _RECV.findall(path.with_name(path.stem + ".timeline.txt").read_text())]
    assert len(times) == len(messages), f"{path.name}: timeline and stream disagree"
    return list(zip(times, messages, strict=True))


def recorded_real(name: str, *, as_controller: bool) -> list[tuple[float, Message]]:
    """A trace of the real PBX (``tests/fixtures/ami-traces-real``), recorded by a read-all user.

    ``as_controller``: only what the gateway's own manager user receives (its read classes and
    eventfilter), which is what the gateway decides on in production.
    """
    path = next(p for p in TRACES_REAL.glob(f"{name}-*.ami") if not p.name.endswith(".sent.ami"))
    messages = list(MessageParser(expect_banner=True).feed(path.read_bytes()))
    if as_controller:
        classes = set(CONTROLLER_USER_READ.split(","))
        messages = [
            m
            for m in messages
            if m.event in TRACKED_EVENTS and classes & set((m.get("Privilege") or "").split(","))
        ]
    return [(i * REAL_STEP_S, m) for i, m in enumerate(messages)]


def wall(seconds: float) -> dt.datetime:
    return RECORDED_AT + dt.timedelta(seconds=seconds)


def replay(
    name: str,
    *,
    until: float | None = None,
    tracker: Tracker | None = None,
    messages: list[tuple[float, Message]] | None = None,
) -> tuple[Tracker, list[Output]]:
    """Feed a trace (up to ``until`` seconds) to a tracker with the trace bench's queue rules."""
    tracker = tracker or Tracker(queue_rules={"hotline-general": QueueRules(service_level_s=20)})
    outputs: list[Output] = []
    for seconds, message in recorded(name) if messages is None else messages:
        if until is not None and seconds > until:
            break
        outputs += tracker.apply(message, seconds, wall(seconds))
        outputs += tracker.tick(seconds, wall(seconds))
    return tracker, outputs
