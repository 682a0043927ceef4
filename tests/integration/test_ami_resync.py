"""Resync over TCP: snapshot after every (re)connect and periodically, with trace 08's real
Status and QueueStatus answers; calls that vanished end as "ended during PBX outage"."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from pathlib import Path

import redis.asyncio as aioredis

from gateway.ami.client import AmiClient, AmiSettings
from gateway.ami.protocol import Message
from gateway.calls.model import SeatState
from gateway.calls.resync import Resync, TrackerFeed
from gateway.calls.tracker import CallEnded, Output, Tracker
from gateway.localredis import LocalRedis
from gateway.vocabulary import DispositionKind, QueueResult
from tests.integration.test_ami_client import replay_answer
from tests.integration.test_transfers import open_stack
from tests.support.ami_peer import AmiPeer


def settings(peer: AmiPeer) -> AmiSettings:
    return AmiSettings(
        port=peer.port, secret="gateway-secret", ping_interval=1.0, backoff_initial=0.05, backoff_max=0.1
    )


async def test_snapshot_rebuilds_and_closes_what_vanished_then_again_after_reconnect() -> None:
    outputs: list[Output] = []
    feed = TrackerFeed(Tracker(), outputs.append)
    # A call the gateway believed in before the link went down; Asterisk no longer has it.
    now, wall = time.monotonic(), dt.datetime.now(dt.UTC)
    for event in (
        Message.of(
            ("Event", "Newchannel"), Uniqueid="ghost", Linkedid="ghost", Context="from-pstn", Exten="12345"
        ),
        Message.of(("Event", "QueueCallerJoin"), Queue="hotline-general", Uniqueid="ghost", Linkedid="ghost"),
    ):
        feed.tracker.apply(event, now, wall)

    async with AmiPeer() as peer:
        peer.on("Status", replay_answer("status-65"))
        peer.on("QueueStatus", replay_answer("queuestatus-60"))
        async with AmiClient(settings(peer)) as ami:
            ami.add_event_listener(feed)
            resync = Resync(ami, feed, interval_s=60)
            task = asyncio.create_task(resync.run())
            try:
                await peer.wait_for(lambda: resync.completed == 1)
                tracker = feed.tracker
                assert not tracker.stale
                (ghost,) = [o.call for o in outputs if isinstance(o, CallEnded)]
                assert ghost.call_id == "ghost"
                assert ghost.disposition is not None
                assert ghost.disposition.kind is DispositionKind.PBX_OUTAGE
                assert set(tracker.calls) == {"caller-s08-798895", "caller-s08b-798895"}
                assert tracker.calls["caller-s08-798895"].seat_ids == ["1001"]
                assert tracker.calls["caller-s08b-798895"].caller_number == "13800000009"
                assert len(tracker.queues["hotline-general"].waiting) == 1
                # The call talking to 1001 is in no QueueEntry: answered in hotline-general all the same
                # (offered: the ghost, the waiting caller and it).
                general = tracker.queues["hotline-general"]
                assert (general.offered, general.answered) == (3, 1)
                assert tracker.seats["1001"].state is SeatState.ON_CALL
                assert tracker.seats["1002"].paused_reason == "break"

                await peer.drop_all()
                await peer.wait_for(lambda: tracker.stale)  # stale while the link is down
                await peer.wait_for(lambda: resync.completed == 2)
                assert not tracker.stale
                assert set(tracker.calls) == {"caller-s08-798895", "caller-s08b-798895"}
                assert len(peer.actions("Status")) == 2
                assert (
                    peer.actions("Status")[0]["Variables"]
                    == "LEGACY_LINE,MERGE_MODE,DEPARTMENT,CATEGORY_CODE"
                )
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def test_periodic_resync_and_a_failed_snapshot_leaves_the_tracker_stale() -> None:
    feed = TrackerFeed(Tracker(), lambda output: None)
    async with AmiPeer() as peer:
        peer.on("Status", replay_answer("status-65"))
        peer.on(
            "QueueStatus",
            lambda session, request: session.respond(request, "Error", Message="Invalid/unknown command"),
        )
        async with AmiClient(settings(peer)) as ami:
            ami.add_event_listener(feed)
            resync = Resync(ami, feed, interval_s=0.1, retry_s=0.05)
            task = asyncio.create_task(resync.run())
            try:
                await peer.wait_for(lambda: len(peer.actions("QueueStatus")) >= 2)
                assert resync.completed == 0
                assert feed.tracker.stale
                peer.on("QueueStatus", replay_answer("queuestatus-60"))
                await peer.wait_for(lambda: resync.completed >= 2)  # then again on the interval
                assert not feed.tracker.stale
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def test_a_gateway_started_during_a_call_with_a_seat_counts_it_answered_on_the_simulator(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """Defect 4 of issue 13 on the simulator: its Status answer is trace 08's (caller in Queue(),
    bridged with the seat's AppQueue leg; no QueueEntry), so a new gateway counts the call answered."""
    async with open_stack(redis_server, redis_client, tmp_path) as stack:
        stack.dial_in("citizen-1")
        await stack.talking("citizen-1", "1001")
        await stack.restart_gateway()
        call = stack.call("citizen-1")
        assert [(v.queue, v.result) for v in call.queues] == [("hotline-general", QueueResult.ANSWERED)]
        assert [(p.party, p.queue) for p in call.parties if p.active] == [("1001", "hotline-general")]
        general = stack.gateway.tracker.queues["hotline-general"]
        assert (general.offered, general.answered) == (1, 1)
