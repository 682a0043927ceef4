"""Conformance: the simulator, driven with each recorded scenario's actions, answers like Asterisk.

The recorded scenarios ran one after another on one Asterisk (counters, round-robin positions and
member statistics carry over), so they are replayed in the same order on one simulator with the
traces' own configuration (tests/fixtures/ami-traces/asterisk-conf). 09d watched 09, 09b and 09c
from a second session; they are replayed together at the recorded offsets. The 11 scenarios stop,
restart and boot the PBX, each on a fresh simulator. See compare.py for what "the same" means.
"""

from __future__ import annotations

import asyncio
import functools

import pytest

from gateway.sim.server import Simulator
from tests.conformance.compare import compare
from tests.conformance.traces import Hook, Part, Trace, bench_simulator, load, replay

CALL_SCENARIOS = [
    "01-queue-answer-hangup", "02-ring-no-answer", "03-queue-abandon", "04-redirect-to-expert",
    "05-blindtransfer-to-expert", "06-atxfer-policy", "06b-atxfer-nondigit-exten-fails", "07-confbridge-3way",
    "08-actions",
]  # fmt: skip
LOGIN_SCENARIOS = ["09-failed-login", "09b-failed-login-unknown-user", "09c-login-events-off",
                   "09d-failed-login-monitor"]  # fmt: skip
# Where 09, 09b and 09c connected on 09d's timeline (from the security events 09d received).
MONITOR_OFFSETS = {"09-failed-login": 0.052, "09b-failed-login-unknown-user": 3.109,
                   "09c-login-events-off": 6.171}  # fmt: skip


async def _run_sequence() -> dict[str, bytes]:
    sim = bench_simulator()
    await sim.start()
    sim.clock.advance(1.0)  # long booted, as the recording Asterisk was
    streams: dict[str, bytes] = {}
    try:
        for name in CALL_SCENARIOS:
            [streams[name]] = await replay(sim, [Part(load(name))])
        parts = [Part(load("09d-failed-login-monitor"))]
        parts += [Part(load(name), offset) for name, offset in MONITOR_OFFSETS.items()]
        monitor, *others = await replay(sim, parts)
        streams["09d-failed-login-monitor"] = monitor
        streams.update(zip(MONITOR_OFFSETS, others, strict=True))
        [streams["10-crlf-injection"]] = await replay(sim, [Part(load("10-crlf-injection"))])
    finally:
        await sim.stop()
    return streams


@functools.cache
def recorded_sequence() -> dict[str, bytes]:
    """The whole 01..10 sequence, replayed once per test session (a few seconds)."""
    return asyncio.run(_run_sequence())


@pytest.mark.parametrize("name", [*CALL_SCENARIOS, *LOGIN_SCENARIOS, "10-crlf-injection"])
def test_scenario_matches_recording(name: str) -> None:
    trace = load(name)
    problems = compare(trace.recorded, recorded_sequence()[name])
    assert not problems, f"{name}: {len(problems)} differences\n" + "\n".join(problems)


# -- 11: stop, restart, boot ----------------------------------------------------------------------
async def _stop(sim: Simulator) -> None:
    await sim.shutdown(restart=False)


async def _restart(sim: Simulator) -> None:
    await sim.shutdown(restart=True, downtime=0.0)


async def _replay_fresh(trace: Trace, hooks: list[tuple[float, Hook]], *, booted: bool) -> bytes:
    sim = bench_simulator()
    await sim.start()
    if booted:
        sim.clock.advance(1.0)
    try:
        [stream] = await replay(sim, [Part(trace, hooks=hooks)])
    finally:
        await sim.stop()
    return stream


@pytest.mark.parametrize(
    ("name", "hook", "at", "booted"),
    [
        ("11-restart-stop-now", _stop, 0.06, True),  # asterisk -rx 'core stop now'
        ("11b-restart-reconnect", _restart, 2.06, True),  # 'core restart gracefully'
        ("11c-after-core-restart", None, 0.0, True),
        ("11d-connect-during-boot", None, 0.0, False),  # connected 0.4 s after spawn, before FullyBooted
    ],
)
async def test_restart_scenarios_match_recording(
    name: str, hook: Hook | None, at: float, booted: bool
) -> None:
    trace = load(name)
    stream = await _replay_fresh(trace, [(at, hook)] if hook else [], booted=booted)
    problems = compare(trace.recorded, stream)
    assert not problems, f"{name}: {len(problems)} differences\n" + "\n".join(problems)


async def test_chanspy_matches_recording() -> None:
    """12 was recorded on a fresh Asterisk (channel counters from 0)."""
    trace = load("12-chanspy")
    problems = compare(trace.recorded, await _replay_fresh(trace, [], booted=True))
    assert not problems, f"12-chanspy: {len(problems)} differences\n" + "\n".join(problems)
