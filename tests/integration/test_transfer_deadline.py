"""Hand-over deadlines against the scriptable AMI peer over real TCP: the transfer service acts on a
deadline only after a Ping on the same session is answered, so an answer Asterisk sent before that
Ping always wins, one Ping covers every transfer due, and an unanswered Ping expires nothing.

The service's clock is a plain number here: the deadline passes exactly when a test says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from gateway.ami.client import AmiClient, AmiSettings
from gateway.ami.protocol import Message
from gateway.calls.resync import utc_now
from gateway.calls.tracker import Tracker
from gateway.dialplan.routing import build_routing
from gateway.localredis import LocalRedis
from gateway.merge.loader import load_config
from gateway.transfers.machine import Leg, State, Target, Transfer
from gateway.transfers.service import TransferService
from gateway.vocabulary import HandoverMode, HandoverOutcome, TargetKind
from tests.conftest import ROOT
from tests.support.ami_peer import AmiPeer, PeerSession

EXPERTS = Target(TargetKind.QUEUE, "expert-market", "7001", "市场监管专席")
DEADLINE = 45.0


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Deadlines:
    peer: AmiPeer
    service: TransferService
    clock: Clock

    def ringing(
        self, call: str, mode: HandoverMode = HandoverMode.BLIND, state: State = State.RINGING
    ) -> Transfer:
        t = Transfer(
            id=f"tr-{call}", call_id=call, mode=mode, target=EXPERTS, from_seat="1001",
            caller=Leg(f"{call}-caller", "PJSIP/trunk-00000001"), seat=Leg(f"{call}-seat", "PJSIP/1001-00000002"),
            requested_at=utc_now(), deadline=DEADLINE, node="test", state=state, rang=True,
        )  # fmt: skip
        self.service._watch(t)
        return t

    async def until(self, check: Callable[[], bool], what: str) -> None:
        try:
            await self.peer.wait_for(check, within=10.0)
        except TimeoutError:
            raise AssertionError(f"{what}: not within 10 s") from None


@pytest.fixture
async def deadlines(redis_server: LocalRedis) -> AsyncIterator[Deadlines]:
    config = load_config(ROOT / "hotline_merge.yaml")
    redis = aioredis.Redis.from_url(redis_server.url)
    clock = Clock()
    async with AmiPeer() as peer:
        # Short action timeout, no watchdog Pings: every Ping the peer sees is the service's.
        client = AmiClient(
            AmiSettings(port=peer.port, secret=peer.secret, action_timeout=0.3, ping_interval=3600.0)
        )
        tracker = Tracker()
        service = TransferService(
            send=client.send, tracker=tracker, settle=tracker.settle_handover, plan=lambda: build_routing(config),
            config=config, redis=redis, node_id="test", clock=clock, tick_s=0.01,
        )  # fmt: skip
        client.add_event_listener(service)
        client.start()
        await client.wait_ready(within=5.0)
        task = asyncio.create_task(service.run())
        try:
            yield Deadlines(peer, service, clock)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.close()
            await redis.aclose()


def answered_by_2001(call: str) -> Message:
    """app_queue's AgentConnect: seat 2001 of the target queue took the blind hand-over's caller."""
    return Message.of(
        ("Event", "AgentConnect"), Queue=EXPERTS.name, Uniqueid=f"{call}-caller", Linkedid=call,
        Interface="Local/2001@agents/n", MemberName="市场监管专席2001",
    )  # fmt: skip


async def test_an_answer_sent_before_the_deadline_ping_is_answered_wins(deadlines: Deadlines) -> None:
    def answer_then_pong(session: PeerSession, ping: Message) -> None:
        # The seat answered before the deadline; the gateway had not read it when its deadline passed.
        session.send(answered_by_2001("c1"))
        session.respond(ping, Ping="Pong")

    deadlines.peer.on("Ping", answer_then_pong)
    t = deadlines.ringing("c1")
    deadlines.clock.now = DEADLINE
    await deadlines.until(lambda: t.finished, "the transfer finished")
    assert (t.state, t.outcome, t.answered_by) == (State.COMPLETED, HandoverOutcome.COMPLETED, "2001")
    assert len(deadlines.peer.actions("Ping")) == 1
    assert deadlines.peer.actions("Redirect") == []  # the caller stays with the seat that answered


async def test_one_ping_then_every_transfer_due_times_out_and_an_answered_consult_has_no_deadline(
    deadlines: Deadlines,
) -> None:
    first, second = deadlines.ringing("c1"), deadlines.ringing("c2")
    consult = deadlines.ringing("c3", HandoverMode.CONSULT, State.ANSWERED)
    deadlines.clock.now = DEADLINE + 1
    await deadlines.until(lambda: first.finished and second.finished, "both transfers finished")
    assert [first.state, second.state, consult.state] == [State.TIMED_OUT, State.TIMED_OUT, State.ANSWERED]
    assert first.outcome is HandoverOutcome.NO_ANSWER
    assert len(deadlines.peer.actions("Ping")) == 1
    await deadlines.until(lambda: len(deadlines.peer.actions("Redirect")) == 2, "both callers sent back")


async def test_no_deadline_is_acted_on_while_asterisk_does_not_answer_the_ping(deadlines: Deadlines) -> None:
    peer = deadlines.peer
    t = deadlines.ringing("c1")
    peer.stalled = True  # a hung Asterisk: nothing proves the target did not answer
    deadlines.clock.now = DEADLINE
    await deadlines.until(
        lambda: len(peer.actions("Ping")) >= 2, "a second Ping after the first went unanswered"
    )
    assert t.state is State.RINGING
    peer.stalled = False
    await deadlines.until(lambda: t.finished, "the transfer timed out once Asterisk answered")
    assert (t.state, t.outcome) == (State.TIMED_OUT, HandoverOutcome.NO_ANSWER)
