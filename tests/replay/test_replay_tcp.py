"""The recorded call traces over real TCP: peer -> AMI client -> tracker, as the gateway runs.

The peer sends the traces' exact bytes back to back in odd-sized writes; the calls that come out
must have the same shape as when the same traces are fed straight from the files.
"""

from __future__ import annotations

import datetime as dt
import time

from gateway.ami.client import AmiClient, AmiSettings
from gateway.ami.protocol import Message
from gateway.calls.model import Call
from gateway.calls.tracker import CallEnded, Tracker
from tests.replay.recorded import replay, trace_path
from tests.support.ami_peer import AmiPeer, PeerSession

CALL_TRACES = ["01", "02", "03", "04", "05", "06", "06b", "07", "08"]


def shape(call: Call) -> tuple[object, ...]:
    """Everything about a call that does not depend on when the events arrived."""
    assert call.disposition is not None
    return (
        call.call_id,
        call.caller_number,
        call.legacy_line,
        call.disposition.kind,
        [(v.queue, v.consult, v.result) for v in call.queues],
        [(p.kind, p.party, p.queue, p.answered_at is not None) for p in call.parties],
        [(h.mode, h.from_seat, h.target_kind, h.target, h.outcome) for h in call.handovers],
    )


async def test_traces_over_tcp_give_the_same_calls_as_from_file() -> None:
    expected = []
    for name in CALL_TRACES:
        expected += [shape(o.call) for o in replay(name)[1] if isinstance(o, CallEnded)]

    async def replay_all(session: PeerSession) -> None:
        for name in CALL_TRACES:
            await session.replay(trace_path(name), chunk=1499)

    tracker = Tracker()
    seen: list[Call] = []

    def ingest(message: Message) -> None:
        outputs = tracker.apply(message, time.monotonic(), dt.datetime.now(dt.UTC))
        seen.extend(o.call for o in outputs if isinstance(o, CallEnded))

    async with AmiPeer() as peer:
        peer.on_login = replay_all
        async with AmiClient(AmiSettings(port=peer.port, secret="gateway-secret", ping_interval=1.0)) as ami:
            ami.add_event_listener(ingest)
            await ami.wait_ready(within=2.0)
            await peer.wait_for(lambda: len(seen) == len(expected))
    assert [shape(call) for call in seen] == expected
    assert tracker.calls == {}
    assert tracker.live_legs == 0
