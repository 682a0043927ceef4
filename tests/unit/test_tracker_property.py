"""Property: no sequence of events, however garbled, makes the tracker raise or lose count.

Events are drawn from the names the tracker handles plus noise, with headers drawn from a small
pool of ids (so random events do hit the same calls, legs and seats) and hostile values (empty,
non-numeric, huge, CR/LF-bearing text as Asterisk may relay from dialplan data, trace 10).
"""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ami.protocol import Message
from gateway.calls.tracker import HANDLED_EVENTS, SNAPSHOT_EVENTS, CallEnded, Output, Tracker
from tests.replay.recorded import recorded

T0 = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
IDS = ["a", "a.2", "b", "b.2", "c", "1795798895.2", ""]
HEADERS = [
    "Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid", "LocalOneUniqueid", "LocalTwoUniqueid",
    "TransfererUniqueid", "TransfereeUniqueid", "OrigTransfererUniqueid", "TransferTargetUniqueid",
    "Channel", "DestChannel", "Context", "Exten", "Queue", "Interface", "Location", "MemberName",
    "Status", "Paused", "PausedReason", "Wrapuptime", "Penalty", "HoldTime", "RingTime", "Wait",
    "Duration", "Variable", "Value", "Application", "AppData", "UserEvent", "Result", "Key",
    "Target", "Kind", "Recording", "Conference", "CallerIDNum", "DialStatus", "DialString",
    "Position", "Membership", "LegacyLine", "Category", "CallbackNumber",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(IDS),
    st.sampled_from(
        ["from-pstn", "hotline-general", "PJSIP/1001", "Local/1001@agents/n", "PJSIP/1001-00000001", "1", "0",
         "2", "6", "-1", "99", "LEGACY_LINE", "HOTLINE_RECORDING", "MixMonitor", "HotlineSurvey",
         "HotlineCallback", "HotlineHandover", "HotlineIntake", "emergency", "110", "Success", "ANSWER",
         "BUSY", "00:01:02", "12345", "7107", "dynamic"]
    ),
    st.text(max_size=40),
)  # fmt: skip
NAMES = st.sampled_from(sorted(HANDLED_EVENTS | SNAPSHOT_EVENTS | {"AgentComplete", "FakeEvent2", ""}))
EVENT = st.builds(
    lambda name, headers: Message([("Event", name), *headers]),
    NAMES,
    st.lists(st.tuples(st.sampled_from(HEADERS), VALUES), max_size=12),
)
STEP = st.one_of(
    st.tuples(st.just("live"), EVENT),
    st.tuples(st.just("snapshot"), EVENT),
    st.tuples(st.sampled_from(["begin", "end", "tick"]), st.none()),
)


def check_consistent(tracker: Tracker) -> None:
    legs = sum(len(call.legs) for call in tracker.state.groups.values())
    assert legs == tracker.live_legs
    for call in tracker.calls.values():
        assert call.ended_at is None
    for figures in tracker.queues.values():
        assert figures.answered + figures.abandoned <= figures.offered
        assert figures.answered_within_sl <= figures.answered


@settings(max_examples=300)
@given(st.lists(STEP, max_size=60))
def test_random_and_garbled_events_never_raise(steps: list[tuple[str, Message | None]]) -> None:
    tracker = Tracker()
    outputs: list[Output] = []
    for n, (kind, event) in enumerate(steps):
        now = float(n)
        wall = T0 + dt.timedelta(seconds=n)
        if kind == "live" and event is not None:
            outputs += tracker.apply(event, now, wall)
        elif kind == "snapshot" and event is not None:
            outputs += tracker.apply_snapshot([event], now, wall)
        elif kind == "begin":
            tracker.begin_resync()
        elif kind == "end":
            outputs += tracker.end_resync(now, wall)
        else:
            outputs += tracker.tick(now, wall)
        check_consistent(tracker)
    for output in outputs:
        if isinstance(output, CallEnded):
            assert output.call.disposition is not None
            assert all(p.ended_at is not None for p in output.call.parties)


@settings(max_examples=40)
@given(st.integers(0, 2**32), st.floats(0.0, 0.6))
def test_a_real_trace_with_events_dropped_or_duplicated_never_raises(seed: int, loss: float) -> None:
    """What a lossy link does to a real stream: three recorded call traces, mutilated."""
    rng = random.Random(seed)
    tracker = Tracker()
    n = 0
    for name in ("04", "06", "07"):
        for _, message in recorded(name):
            draw = rng.random()
            for _ in range(0 if draw < loss else 2 if draw > 0.95 else 1):
                n += 1
                tracker.apply(message, float(n), T0 + dt.timedelta(seconds=n))
    tracker.begin_resync()
    tracker.end_resync(float(n), T0)
    assert tracker.calls == {}
    assert tracker.live_legs == 0
