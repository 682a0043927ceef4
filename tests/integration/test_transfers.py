"""Hand-overs end to end: the gateway app (real HTTP on loopback, real Redis) drives the PBX simulator
over TCP; the simulator runs the dialplan rendered from the shipped merge config.

Every mode (blind, consult, three-way) to expert queues, the policy group and 110, and every
failure: target busy, no answer, caller hanging up during a consult, seat hanging up during a
three-way, the one-hand-over rule (409) and a supervisor's override. Each call's record must show
every leg with its own times and recordings.

The simulator runs ``TIME_SCALE`` real seconds per simulated second and the transfer service's
deadlines follow the simulator's clock, so a 5 s hand-over timeout takes a quarter of a second.
A test that must act while a hand-over rings stops simulated time when the target is dialled
(``Phones.hold_at``) and lets it go on (``resume``) right before its next step: it never races the
timeout, however busy the machine.
The tracker times legs in real seconds, so durations in records are scaled down; tests compare
moments and orders, not lengths.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import init_app
from gateway.callbacks.http import CALLBACKS
from gateway.callbacks.service import CallbackService
from gateway.calls.model import Call
from gateway.demo import demo_environment
from gateway.keys import OutboxKeys
from gateway.localredis import LocalRedis
from gateway.node.runtime import Node
from gateway.settings import Settings
from gateway.sim.channel import Channel
from gateway.sim.cli import ServiceOptions, SimulatorService
from gateway.sim.clock import SimClock
from gateway.sim.pbx import OriginateRequest
from gateway.sim.people import Endpoints, FarEnd
from gateway.sim.server import Simulator
from gateway.transfers.http import TRANSFERS
from gateway.transfers.service import TransferService
from gateway.web.api import NODE
from tests.conftest import ROOT
from tests.support.polling import until

TIME_SCALE = 0.05  # 20 simulated seconds per real second
HANDOVER_TIMEOUT_S = 5  # handover.consult_timeout_s in the test config (the schema's minimum)


@dataclass
class Phones(Endpoints):
    """Seats answer after 1 s and stay on until hung up; trunk numbers do what ``script`` says."""

    script: dict[str, FarEnd] = field(default_factory=dict)
    hold_at: set[str] = field(default_factory=set)  # dialling one of these stops simulated time
    clock: SimClock | None = None

    def far_end(self, endpoint: str, rng: Any) -> FarEnd:
        if endpoint in self.hold_at and self.clock is not None:
            self.hold_at.clear()
            self.clock.hold()
        return self.script.get(endpoint, FarEnd(1.0, True, None))


@dataclass
class Stack:
    client: TestClient[web.Request, web.Application]
    service: SimulatorService
    env: dict[str, str]
    phones: Phones
    redis: aioredis.Redis
    config: Path

    @property
    def sim(self) -> Simulator:
        return self.service.sim

    @property
    def app(self) -> web.Application:
        assert self.client.app is not None
        return self.client.app

    @property
    def gateway(self) -> Node:
        return self.app[NODE]

    @property
    def transfers(self) -> TransferService:
        return self.app[TRANSFERS]

    @property
    def callbacks(self) -> CallbackService:
        return self.app[CALLBACKS]

    async def api(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, role: str = "seat"
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.env[f'HOTLINE_{role.upper()}_TOKENS']}"}
        response = await self.client.request(method, path, json=body, headers=headers)
        return response.status, await response.json()

    async def transfer(
        self, call_id: str, target: str, mode: str, *, role: str = "seat", **extra: Any
    ) -> Any:
        status, body = await self.api(
            "POST", f"/api/calls/{call_id}/transfer", {"target": target, "mode": mode, **extra}, role=role
        )
        assert status == 201, body
        return body["transfer"]

    async def state_of(self, transfer_id: str, *states: str, within: float = 5.0) -> dict[str, Any]:
        """The transfer through the API, once it is in one of ``states``."""
        found: dict[str, Any] = {}

        async def reached() -> bool:
            status, body = await self.api("GET", f"/api/transfers/{transfer_id}")
            assert status == 200, body
            found.update(body["transfer"])
            return bool(found["state"] in states)

        await until(reached, f"transfer {transfer_id} in {states}", within=within)
        return found

    def dial_in(
        self, call_id: str, *, number: str = "12345", caller: str = "13900000001", **tags: Any
    ) -> None:
        """A citizen calls ``number``: the traces' Local/<number>@from-pstn caller (ids as in the traces)."""
        request = OriginateRequest(
            target=f"Local/{number}@from-pstn", application="Wait", app_data="3600", caller_num=caller,
            caller_name="市民", channel_id=call_id, other_channel_id=f"{call_id}-2", report=False, tags=tags,
        )  # fmt: skip
        self.sim.pbx.run(lambda: self.sim.pbx.originate(request))

    async def restart_gateway(self) -> None:
        """Stop the gateway and start a new one on the same Redis and simulator."""
        await self.client.close()
        self.client = await start_gateway(self.env, self.config, self.sim)

    def hang_up(self, match: Callable[[Channel], bool], *, cause: int = 16) -> None:
        """Whoever is on that one live channel hangs up (cause 17: the far end rejects as busy)."""
        (channel,) = [c for c in self.sim.pbx.live_channels() if match(c)]
        self.sim.pbx.run(lambda: self.sim.pbx.softhangup(channel, cause))

    def caller_hangs_up(self, call_id: str) -> None:
        self.hang_up(lambda c: c.uniqueid == call_id)

    def phone_hangs_up(self, endpoint: str, *, cause: int = 16) -> None:
        """A seat's phone (PJSIP/<ext>) or a number reached through the trunk hangs up."""
        self.hang_up(lambda c: c.name.startswith("PJSIP/") and c.exten == endpoint, cause=cause)

    def waiting(self, queue: str) -> list[str]:
        """The legs waiting in ``queue`` as the gateway sees them."""
        figures = self.gateway.tracker.queues.get(queue)
        return list(figures.waiting) if figures is not None else []

    def call(self, call_id: str) -> Call:
        return self.gateway.tracker.calls[call_id]

    async def talking(self, call_id: str, seat: str) -> None:
        def connected() -> bool:
            call = self.gateway.tracker.calls.get(call_id)
            return call is not None and any(p.party == seat and p.active for p in call.parties)

        await until(connected, f"call {call_id} talking with {seat}")

    async def pause(self, seat: str, *, paused: bool = True) -> None:
        status, body = await self.api("POST", f"/api/agents/{seat}/{'pause' if paused else 'unpause'}")
        assert status == 200, body
        await until(  # a seat on a call stays on_call while paused: look at its queues
            lambda: all(m.paused == paused for m in self.gateway.tracker.seats[seat].memberships.values()),
            f"seat {seat} {'paused' if paused else 'back'}",
        )

    async def record(self, call_id: str) -> dict[str, Any]:
        """The latest record of the call in the outbox (Redis Stream)."""
        found: list[dict[str, Any]] = []

        async def written() -> bool:
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]], await self.redis.xrange(OutboxKeys().stream)
            )
            found[:] = [
                r for _, fields in entries if (r := json.loads(fields[b"record"]))["linkedid"] == call_id
            ]
            return any(r["stage"] == "final" for r in found)

        await until(written, f"the final record of call {call_id}")
        return max(found, key=lambda r: int(r["revision"]))


def write_test_config(folder: Path) -> Path:
    """The shipped merge, with a short hand-over timeout and no wrap-up (the tracker's clock is real)."""
    text = (ROOT / "hotline_merge.yaml").read_text(encoding="utf-8")
    text = text.replace("consult_timeout_s: 45", f"consult_timeout_s: {HANDOVER_TIMEOUT_S}")
    text = re.sub(r"wrapup_s: \d+", "wrapup_s: 0", text)
    path = folder / "hotline_merge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def stack(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Stack]:
    async with open_stack(redis_server, redis_client, tmp_path) as opened:
        yield opened


@contextlib.asynccontextmanager
async def open_stack(
    redis_server: LocalRedis, redis_client: aioredis.Redis, folder: Path
) -> AsyncIterator[Stack]:
    """Simulator (2 seats per queue, no traffic) + the gateway app on loopback, ready and resynced."""
    config = write_test_config(folder)
    env = demo_environment({"HOTLINE_REDIS_URL": redis_server.url}, config)
    phones = Phones()
    service = SimulatorService(
        ServiceOptions(config=config, port=0, rate=0, seats_per_queue=2, seed=6, time_scale=TIME_SCALE,
                       endpoints=phones),
        env,
    )  # fmt: skip
    phones.clock = service.sim.clock
    await service.start()
    env.update({
        "HOTLINE_AMI_PORT": str(service.sim.port),
        "HOTLINE_SPOOL_DIR": str(folder / "spool"),
        "HOTLINE_DIALPLANS_DIR": str(folder / "dialplans"),
    })  # fmt: skip
    stack = Stack(await start_gateway(env, config, service.sim), service, env, phones, redis_client, config)
    try:
        yield stack
    finally:
        await stack.client.close()
        await service.stop()


async def start_gateway(
    env: dict[str, str], config: Path, sim: Simulator, *, controlling: bool = True
) -> TestClient[web.Request, web.Application]:
    """The gateway app on loopback, its deadlines on the simulator's clock.

    ``controlling``: wait until it holds the node (its lease) and has resynced with the
    simulator; otherwise it is a standby instance, serving the API from Redis.
    """
    app = init_app(Settings.from_env(env, config_path=config), dispatchers=0)
    app[TRANSFERS].clock = sim.clock.now
    app[TRANSFERS].tick_s = 0.01
    app[CALLBACKS].tick_s = 0.02
    app[CALLBACKS].retry_after_s = 0.2
    app[CALLBACKS].stale_claim_s = 0.3
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    gateway = app[NODE]
    try:
        if controlling:
            await until(
                lambda: gateway.resync.completed > 0 and {"1001", "4001"} <= set(gateway.tracker.seats),
                "the gateway resynced with the simulator",
            )
    except BaseException:
        await client.close()
        raise
    return client


# --- blind ---------------------------------------------------------------------------------------


async def test_blind_to_an_expert_queue_completes_and_the_record_splits_the_legs(stack: Stack) -> None:
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "expert-market", "blind")
    assert transfer["state"] in ("requested", "ringing")  # events may beat the answer to the action
    done = await stack.state_of(transfer["id"], "completed")
    assert [h["state"] for h in done["history"]] == ["requested", "ringing", "answered", "completed"]
    assert done["answered_by"] == "2001"
    assert done["outcome"] == "completed"
    await stack.talking("citizen-1", "2001")
    assert not any(p.active for p in stack.call("citizen-1").parties if p.party == "1001")

    stack.caller_hangs_up("citizen-1")
    record = await stack.record("citizen-1")
    first, expert = [leg for leg in record["legs"] if leg["answered_at"]]
    assert (first["party"], first["queue"], expert["party"], expert["queue"]) == (
        "1001",
        "hotline-general",
        "2001",
        "expert-market",
    )
    # The seat that handed over stopped at the hand-over: it is not billed for the expert's talk.
    assert first["ended_at"] <= expert["answered_at"]
    assert record["seat_ids"] == ["1001", "2001"]
    (handover,) = record["handovers"]
    assert (handover["mode"], handover["from_seat"], handover["target"], handover["outcome"]) == (
        "blind",
        "1001",
        "expert-market",
        "completed",
    )
    assert handover["recording"].endswith("-handover.wav")
    assert handover["recording"] in expert["recordings"]
    assert handover["recording"] not in first["recordings"]
    assert [v["queue"] for v in record["queues"]] == ["hotline-general", "expert-market"]


async def test_blind_to_busy_experts_times_out_and_the_caller_goes_back_to_the_seat(stack: Stack) -> None:
    for n, expert in enumerate(("2001", "2002")):
        stack.dial_in(f"busy-{n}", number="12315", caller=f"1390000001{n}")
        await stack.talking(f"busy-{n}", expert)
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "expert-market", "blind")
    ended = await stack.state_of(transfer["id"], "timed_out")
    assert ended["outcome"] == "busy"  # nobody at expert-market was even rung
    assert ended["reason"] == "no one at 市场监管专席（12315） answered in time"
    # Back with the seat that had the caller, dialled straight from hotline-return.
    await stack.talking("citizen-1", "1001")
    stack.caller_hangs_up("citizen-1")
    record = await stack.record("citizen-1")
    (handover,) = record["handovers"]
    assert (handover["target"], handover["outcome"]) == ("expert-market", "busy")
    first, back = [leg for leg in record["legs"] if leg["party"] == "1001"]
    assert (first["queue"], back["queue"]) == ("hotline-general", None)
    assert first["ended_at"] <= back["offered_at"] <= back["answered_at"]
    # Taken out of the target queue unanswered (redirected back): "timeout", not an abandonment.
    assert [(v["queue"], v["result"]) for v in record["queues"]] == [
        ("hotline-general", "answered"),
        ("expert-market", "timeout"),
    ]
    assert record["disposition"]["kind"] == "answered"


async def test_blind_nobody_answers_and_the_seat_is_gone_so_the_caller_heads_the_general_queue(
    stack: Stack,
) -> None:
    for expert in ("2001", "2002"):
        stack.phones.script[expert] = FarEnd(1.0, False, None)
    await stack.pause("1002")
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    await stack.pause("1001")  # the seat takes a break after this call
    stack.dial_in("citizen-2", caller="13900000002")  # waits in the general queue meanwhile
    await until(lambda: stack.waiting("hotline-general") == ["citizen-2-2"], "citizen-2 waiting")
    transfer = await stack.transfer("citizen-1", "expert-market", "blind")
    ended = await stack.state_of(transfer["id"], "timed_out")
    assert ended["outcome"] == "no_answer"  # experts were rung
    # Sent back (a Redirect the gateway sends on the timeout) before a seat is free for anyone.
    await until(lambda: "citizen-1-2" in stack.waiting("hotline-general"), "citizen-1 queued again")
    await stack.pause("1002", paused=False)
    # The returned caller is first in line: 1002's first call is citizen-1, though citizen-2 came earlier.
    await stack.talking("citizen-1", "1002")
    assert not any(p.active for p in stack.call("citizen-2").parties)


async def test_one_key_transfer_to_110_and_the_police_leg_is_in_the_record(stack: Stack) -> None:
    stack.phones.script["110"] = FarEnd(2.0, True, None)
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "110", "blind")
    done = await stack.state_of(transfer["id"], "completed")
    assert (done["target"], done["answered_by"]) == (
        {"kind": "emergency", "name": "110", "title": "公安110"},
        "110",
    )
    await stack.talking("citizen-1", "110")
    stack.caller_hangs_up("citizen-1")
    record = await stack.record("citizen-1")
    assert record["disposition"] == {
        "kind": "emergency_handover",
        "emergency_service": "110",
        "abandoned_after_s": None,
        "callback_number": None,
    }
    seat, police = [leg for leg in record["legs"] if leg["answered_at"]]
    assert (seat["party"], police["kind"], police["party"]) == ("1001", "external", "110")
    assert seat["ended_at"] <= police["offered_at"] < police["answered_at"]
    assert record["handovers"][0]["recording"] in police["recordings"]


async def test_110_busy_fails_and_the_dialplan_gives_the_caller_back_to_the_seat(stack: Stack) -> None:
    stack.phones.script["110"] = FarEnd(30.0, False, None)
    stack.phones.hold_at.add("110")
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "110", "blind")
    await stack.state_of(transfer["id"], "ringing")
    stack.sim.clock.resume()
    stack.phone_hangs_up("110", cause=17)  # 110's line rejects the call: user busy
    failed = await stack.state_of(transfer["id"], "failed")
    assert (failed["outcome"], failed["reason"]) == ("busy", "110 did not answer the hand-over (BUSY)")
    await stack.talking("citizen-1", "1001")


# --- consult -------------------------------------------------------------------------------------


async def test_consult_the_policy_group_then_complete_and_the_seat_stops_at_the_transfer(
    stack: Stack,
) -> None:
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "policy-specialist", "consult")
    answered = await stack.state_of(transfer["id"], "answered")
    specialist = answered["answered_by"]
    assert specialist in ("4001", "4002")
    status, body = await stack.api("POST", f"/api/transfers/{transfer['id']}/complete")
    assert status == 202, body
    done = await stack.state_of(transfer["id"], "completed")
    assert [h["state"] for h in done["history"]] == ["requested", "ringing", "answered", "completed"]
    await stack.talking("citizen-1", specialist)
    stack.caller_hangs_up("citizen-1")
    record = await stack.record("citizen-1")
    seat = next(leg for leg in record["legs"] if leg["party"] == "1001")
    expert = next(leg for leg in record["legs"] if leg["party"] == specialist)
    assert expert["queue"] == "policy-specialist"
    # The seat talked to the specialist while the caller was on hold, then left at the transfer.
    assert seat["answered_at"] < expert["answered_at"] < seat["ended_at"] <= expert["ended_at"]
    assert seat["hold_s"] > 0
    (handover,) = record["handovers"]
    assert (handover["mode"], handover["target"], handover["outcome"]) == (
        "consult",
        "policy-specialist",
        "completed",
    )
    assert handover["recording"] in expert["recordings"]
    # The consultation call queued too, but it is not the caller's wait.
    assert [v["queue"] for v in record["queues"]] == ["hotline-general"]


async def test_consult_cancelled_after_the_specialist_answered_returns_the_caller_to_the_seat(
    stack: Stack,
) -> None:
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "policy-specialist", "consult")
    answered = await stack.state_of(transfer["id"], "answered")
    status, body = await stack.api("DELETE", f"/api/transfers/{transfer['id']}")
    assert (status, body["transfer"]["state"], body["transfer"]["outcome"]) == (200, "cancelled", "cancelled")
    await until(
        lambda: (
            not any(p.active for p in stack.call("citizen-1").parties if p.party == answered["answered_by"])
        ),
        "the specialist released",
    )
    call = stack.call("citizen-1")
    seat = next(p for p in call.parties if p.party == "1001" and p.active)
    await until(lambda: not call.legs[seat.leg or ""].on_hold, "the seat took the caller off hold")
    status, body = await stack.api("DELETE", f"/api/transfers/{transfer['id']}")
    assert (status, body["error"]["code"]) == (409, "transfer.finished")
    stack.caller_hangs_up("citizen-1")
    (handover,) = (await stack.record("citizen-1"))["handovers"]
    assert handover["outcome"] == "cancelled"


async def test_consult_nobody_answers_times_out_and_the_seat_has_the_caller_back(stack: Stack) -> None:
    for specialist in ("4001", "4002"):
        stack.phones.script[specialist] = FarEnd(1.0, False, None)
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "policy-specialist", "consult")
    ended = await stack.state_of(transfer["id"], "timed_out")
    assert ended["outcome"] == "no_answer"
    await until(
        lambda: not any(leg.role.value == "consult" for leg in stack.call("citizen-1").legs.values()),
        "the consultation call hung up",
    )
    assert any(p.party == "1001" and p.active for p in stack.call("citizen-1").parties)


async def test_a_consult_the_pbx_never_starts_fails_within_seconds_with_a_reason(stack: Stack) -> None:
    """Issue 13 defect 3: a PBX without a dial tone takes the Atxfer (the caller is held) but never
    dials; the transfer fails at its start deadline instead of sitting in 'requested'."""
    stack.sim.pbx.settings.dial_tone = False
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "policy-specialist", "consult")
    started = stack.sim.clock.now()
    failed = await stack.state_of(transfer["id"], "failed")
    assert stack.sim.clock.now() - started < 10  # simulated seconds: CONSULT_START_S, not the ~22 s give-up
    assert failed["outcome"] == "failed"
    assert "never dialled 政策专家组" in failed["reason"]
    assert "indications.conf" in failed["reason"]
    call = stack.call("citizen-1")
    seat = next(p for p in call.parties if p.party == "1001" and p.active)
    # Asterisk gives up collecting digits by itself (~22 s) and the seat has its caller back.
    await until(lambda: not call.legs[seat.leg or ""].on_hold, "the seat took the caller off hold", within=10)


async def test_caller_hangs_up_during_a_consult_and_the_specialist_is_released(stack: Stack) -> None:
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "policy-specialist", "consult")
    answered = await stack.state_of(transfer["id"], "answered")
    stack.caller_hangs_up("citizen-1")
    failed = await stack.state_of(transfer["id"], "failed")
    assert failed["reason"] == "the caller hung up"
    record = await stack.record("citizen-1")
    specialist = next(leg for leg in record["legs"] if leg["party"] == answered["answered_by"])
    assert specialist["answered_at"] < specialist["ended_at"]
    assert record["handovers"][0]["outcome"] == "failed"
    await until(lambda: not stack.sim.pbx.live_channels(), "every channel of the call hung up")


# --- three-way -----------------------------------------------------------------------------------


async def test_threeway_with_the_policy_group_goes_on_after_the_seat_leaves(stack: Stack) -> None:
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "policy-specialist", "threeway")
    done = await stack.state_of(transfer["id"], "completed")
    specialist = done["answered_by"]
    assert str(done["room"]).isdigit()
    call = stack.call("citizen-1")
    assert {leg.conference for leg in call.legs.values() if leg.conference} == {done["room"]}
    assert {p.party for p in call.parties if p.active} == {"1001", specialist}

    stack.phone_hangs_up("1001")  # the seat leaves the conference
    await until(
        lambda: not any(p.active for p in call.parties if p.party == "1001"), "the seat left the conference"
    )
    assert any(p.active for p in call.parties if p.party == specialist)  # the others go on
    assert (await stack.state_of(transfer["id"], "completed"))["state"] == "completed"

    stack.caller_hangs_up("citizen-1")
    record = await stack.record("citizen-1")
    seat = next(leg for leg in record["legs"] if leg["party"] == "1001")
    expert = next(leg for leg in record["legs"] if leg["party"] == specialist)
    assert seat["answered_at"] < expert["answered_at"] < seat["ended_at"] < expert["ended_at"]
    (handover,) = record["handovers"]
    assert (handover["mode"], handover["target_kind"], handover["target"], handover["outcome"]) == (
        "threeway",
        "queue",
        "policy-specialist",
        "completed",
    )
    assert handover["recording"] in expert["recordings"]
    # The specialist's call is one of this call's legs, not a work order of its own.
    assert (await stack.api("GET", f"/api/calls/{transfer['id']}"))[0] == 404
    assert [r["linkedid"] for r in await all_records(stack)] == ["citizen-1"]


async def all_records(stack: Stack) -> list[dict[str, Any]]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await stack.redis.xrange(OutboxKeys().stream))
    return [json.loads(fields[b"record"]) for _, fields in entries]


async def test_threeway_with_110(stack: Stack) -> None:
    stack.phones.script["110"] = FarEnd(2.0, True, None)
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "110", "threeway", role="supervisor")
    done = await stack.state_of(transfer["id"], "completed")
    assert done["answered_by"] == "110"
    call = stack.call("citizen-1")
    assert {p.party for p in call.parties if p.active} == {"1001", "110"}
    stack.caller_hangs_up("citizen-1")
    record = await stack.record("citizen-1")
    assert record["disposition"]["emergency_service"] == "110"
    assert [(h["mode"], h["emergency_service"], h["outcome"]) for h in record["handovers"]] == [
        ("threeway", "110", "completed")
    ]


async def test_threeway_target_never_answers_and_caller_and_seat_stay_together(stack: Stack) -> None:
    for specialist in ("4001", "4002"):
        stack.phones.script[specialist] = FarEnd(1.0, False, None)
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "policy-specialist", "threeway")
    ended = await stack.state_of(transfer["id"], "timed_out")
    assert ended["outcome"] == "no_answer"
    call = stack.call("citizen-1")
    await until(lambda: not any(leg.role.value == "consult" for leg in call.legs.values()), "target dropped")
    assert [p.party for p in call.parties if p.active] == ["1001"]
    assert all(
        leg.conference == ended["room"]
        for leg in call.legs.values()
        if leg.role.value == "caller" and leg.conference
    )


async def test_seat_leaves_a_threeway_before_110_answers_and_110_is_busy_so_the_caller_is_not_left_alone(
    stack: Stack,
) -> None:
    stack.phones.script["110"] = FarEnd(30.0, False, None)
    stack.phones.hold_at.add("110")
    await stack.pause("1002")
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    transfer = await stack.transfer("citizen-1", "110", "threeway")
    await stack.state_of(transfer["id"], "ringing")
    stack.phone_hangs_up("1001")
    await until(lambda: not any(p.active for p in stack.call("citizen-1").parties), "the seat left")
    await stack.pause("1001")
    await stack.pause("1002", paused=False)
    stack.sim.clock.resume()
    stack.phone_hangs_up("110", cause=17)
    failed = await stack.state_of(transfer["id"], "failed")
    assert failed["outcome"] == "busy"
    # Alone in the room: the caller is sent first in line to the general seats.
    await stack.talking("citizen-1", "1002")


# --- rules and the resource ----------------------------------------------------------------------


async def test_one_hand_over_per_call_and_a_supervisor_may_override(stack: Stack) -> None:
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    first = await stack.transfer("citizen-1", "expert-market", "blind")
    await stack.state_of(first["id"], "completed")
    await stack.talking("citizen-1", "2001")

    status, body = await stack.api(
        "POST", "/api/calls/citizen-1/transfer", {"target": "policy-specialist", "mode": "consult"}
    )
    assert (status, body["error"]["code"]) == (409, "transfer.limit")
    assert body["error"]["message"].startswith(
        "call citizen-1 has had 1 hand-over(s); at most 1 per call (来电最多接转一次)"
    )
    status, body = await stack.api(
        "POST",
        "/api/calls/citizen-1/transfer",
        {"target": "policy-specialist", "mode": "consult", "override": True},
    )
    assert (status, body["error"]["code"]) == (403, "transfer.override_forbidden")

    second = await stack.transfer(
        "citizen-1", "policy-specialist", "consult", role="supervisor", override=True
    )
    assert (second["override"], second["from_seat"]) == (True, "2001")
    await stack.state_of(second["id"], "answered")
    status, body = await stack.api(
        "POST", "/api/calls/citizen-1/transfer", {"target": "110", "mode": "blind"}
    )
    assert (status, body["error"]["code"]) == (409, "transfer.in_progress")
    assert second["id"] in body["error"]["message"]


async def test_requests_that_cannot_be_carried_out_get_stable_errors(stack: Stack) -> None:
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("nobody", {"target": "expert-market", "mode": "blind"}, 404, "call.not_found"),
        ("citizen-1", {"target": "hotline-general", "mode": "blind"}, 400, "transfer.unknown_target"),
        ("citizen-1", {"target": "110", "mode": "consult"}, 400, "transfer.mode_not_allowed"),
        ("citizen-1", {"target": "110", "mode": "park"}, 400, "transfer.invalid_mode"),
        ("citizen-1", {"mode": "blind"}, 400, "transfer.invalid_request"),
        ("citizen-1", {"target": "expert-hrss", "mode": "blind"}, 409, "transfer.no_seat"),
    ]
    for seat in ("1001", "1002"):
        await stack.pause(seat)
    stack.dial_in("citizen-1")  # queued, not yet with a seat: both general seats are paused
    await until(lambda: "citizen-1" in stack.gateway.tracker.calls, "the call is known")
    for call_id, body, status, code in cases:
        got, answer = await stack.api("POST", f"/api/calls/{call_id}/transfer", body)
        assert (got, answer["error"]["code"]) == (status, code), (body, answer)
    await stack.pause("1001", paused=False)
    await stack.talking("citizen-1", "1001")
    for seat in ("4001", "4002"):
        await stack.pause(seat)
    got, answer = await stack.api(
        "POST", "/api/calls/citizen-1/transfer", {"target": "policy-specialist", "mode": "threeway"}
    )
    assert (got, answer["error"]["code"]) == (409, "transfer.target_unavailable")
    assert "policy-specialist" in answer["error"]["message"]
    for method in ("GET", "DELETE"):
        got, answer = await stack.api(method, "/api/transfers/tr-0000000000000000")
        assert (got, answer["error"]["code"]) == (404, "transfer.not_found")
    stack.phones.hold_at.add("110")  # still under way when the complete request comes
    got, answer = await stack.api(
        "POST", "/api/calls/citizen-1/transfer", {"target": "110", "mode": "blind"}, role="admin"
    )
    assert got == 201
    got, answer = await stack.api("POST", f"/api/transfers/{answer['transfer']['id']}/complete")
    stack.phones.hold_at.clear()
    stack.sim.clock.resume()
    assert (got, answer["error"]["code"]) == (409, "transfer.not_completable")


async def test_another_instance_reads_the_transfer_from_redis_but_only_its_node_acts_on_it(
    stack: Stack,
) -> None:
    stack.phones.script["110"] = FarEnd(30.0, False, None)
    stack.phones.hold_at.add("110")  # it keeps ringing until the cancellation
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    # The deadline (0.25 s real) is not what this test is about: stop its clock, so a busy machine
    # starting the second instance cannot let the transfer time out first.
    stack.transfers.clock = lambda: 0.0
    transfer = await stack.transfer("citizen-1", "110", "blind")
    await stack.state_of(transfer["id"], "ringing")
    other = await start_gateway(stack.env, stack.config, stack.sim, controlling=False)  # a standby of pbx-1
    try:
        headers = {"Authorization": f"Bearer {stack.env['HOTLINE_SUPERVISOR_TOKENS']}"}
        response = await other.get(f"/api/transfers/{transfer['id']}", headers=headers)
        mirrored = (await response.json())["transfer"]
        assert (response.status, mirrored["state"], mirrored["node"]) == (200, "ringing", "pbx-1")
        response = await other.delete(f"/api/transfers/{transfer['id']}", headers=headers)
        assert (response.status, (await response.json())["error"]["code"]) == (409, "transfer.elsewhere")
        status, body = await stack.api("DELETE", f"/api/transfers/{transfer['id']}")
        assert (status, body["transfer"]["state"]) == (200, "cancelled")

        async def mirrored_cancel() -> bool:
            response = await other.get(f"/api/transfers/{transfer['id']}", headers=headers)
            return bool((await response.json())["transfer"]["state"] == "cancelled")

        await until(mirrored_cancel, "the cancellation mirrored")
    finally:
        stack.sim.clock.resume()
        await other.close()
    await stack.talking("citizen-1", "1001")  # a cancelled blind transfer gives the caller back


async def test_after_a_three_way_a_supervisor_hands_the_caller_on_out_of_the_room(stack: Stack) -> None:
    stack.dial_in("citizen-1")
    await stack.talking("citizen-1", "1001")
    threeway = await stack.transfer("citizen-1", "policy", "threeway")  # the YAML's handover.policy_queue
    done = await stack.state_of(threeway["id"], "completed")
    assert done["target"]["name"] == "policy-specialist"
    # The specialist came in through its own leg: the seat with the caller is still 1001.
    blind = await stack.transfer("citizen-1", "expert-market", "blind", role="supervisor", override=True)
    assert blind["from_seat"] == "1001"
    await stack.state_of(blind["id"], "completed")
    await stack.talking("citizen-1", "2001")
    call = stack.call("citizen-1")
    assert call.legs["citizen-1-2"].conference is None  # redirected out of the room
    assert [h.mode.value for h in call.handovers] == ["threeway", "blind"]
