"""The dialplan <-> gateway contract holds what both sides use."""

from __future__ import annotations

import re

from gateway.calls.state import CALL_FIELDS
from gateway.calls.tracker import HANDLED_EVENTS
from gateway.contract import CALL_VARIABLES, TRACKED_EVENTS, TRACKER_EVENTS


def test_tracked_events_cover_the_tracker_and_the_client() -> None:
    assert HANDLED_EVENTS <= TRACKED_EVENTS
    assert {"FullyBooted", "Shutdown", "QueueCallerJoin", "AgentConnect", "Hangup"} <= TRACKED_EVENTS
    assert all(re.fullmatch(r"[A-Za-z]+", name) for name in TRACKED_EVENTS)


def test_the_tracker_handles_exactly_the_events_the_contract_lets_through() -> None:
    assert HANDLED_EVENTS == TRACKER_EVENTS


def test_a_resync_asks_for_every_call_variable_the_tracker_reads() -> None:
    assert tuple(CALL_FIELDS) == CALL_VARIABLES
