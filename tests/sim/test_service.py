"""``hotline-gateway simulate`` as a service: a plain panoramisk 1.4 Manager drives a call through it,
the control endpoint injects faults, the secrets come only from the environment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from panoramisk import Manager

from gateway.sim.cli import ServiceOptions, SimulateError, SimulatorService
from gateway.sim.people import Endpoints, SeatBehaviour
from tests.sim.support import AmiTestClient
from tests.support.polling import until

ROOT = Path(__file__).resolve().parents[2]
SECRET = "not-a-real-secret"
QUICK_SEATS = SeatBehaviour(
    ring_min_s=1, ring_max_s=1, miss_rate=0, talk_mean_s=5, talk_min_s=5, talk_max_s=5
)


@pytest.fixture
async def service() -> AsyncIterator[SimulatorService]:
    options = ServiceOptions(config=ROOT / "hotline_merge.yaml", port=0, rate=0, seats_per_queue=2, seed=4,
                             control_port=0, time_scale=0.02, endpoints=Endpoints(seats=QUICK_SEATS))  # fmt: skip
    service = SimulatorService(options, env={"HOTLINE_AMI_SECRET": SECRET})
    await service.start()
    yield service
    await service.stop()


async def test_plain_panoramisk_manager_logs_in_and_drives_a_call(service: SimulatorService) -> None:
    seen: list[str] = []
    surveys: list[str] = []
    manager = Manager(host="127.0.0.1", port=service.sim.port, username=service.username, secret=SECRET,
                      loop=asyncio.get_running_loop(), ping_delay=3600, ping_interval=3600,
                      reconnect_timeout=3600)  # fmt: skip
    manager.register_event("*", lambda _, event: seen.append(event.event))
    manager.register_event("UserEvent", lambda _, event: surveys.append(event.get("Result", "")))
    manager.connect()
    try:
        await until(lambda: manager.authenticated, "the simulator did it", within=10.0)
        # panoramisk waits for the OriginateResponse, which the controller's rendered eventfilter drops (as
        # Asterisk would): the call is followed through the events instead.
        manager.send_action({
            "Action": "Originate", "Channel": "Local/12315@from-pstn", "Application": "Wait", "Data": "600",
            "CallerID": '"PSTN caller" <13800000001>', "Async": "true", "Variable": "SIM_KEYS=2",
        })  # fmt: skip
        await until(lambda: "AgentConnect" in seen, "the simulator did it", within=10.0)
        await until(lambda: "basic" in surveys, "the simulator did it", within=10.0)
        assert {"Newchannel", "QueueCallerJoin", "AgentCalled", "DialEnd", "Hangup"} <= set(seen)
        assert "OriginateResponse" not in seen, "the rendered eventfilter applies"
        assert "BridgeEnter" not in seen
        status = await manager.send_action({"Action": "QueueSummary", "Queue": "expert-market"}, as_list=True)
        assert [m.event for m in status][-1] == "QueueSummaryComplete"
    finally:
        manager.close()


async def test_control_endpoint_drops_and_restarts(service: SimulatorService) -> None:
    assert service.control_url
    reader, writer = await asyncio.open_connection("127.0.0.1", service.sim.port)
    assert (await reader.readline()).startswith(b"Asterisk Call Manager/")
    async with aiohttp.ClientSession(service.control_url) as http:
        async with http.post("/faults/drop") as answer:
            assert (await answer.json()) == {"dropped": 1}
        assert await reader.read() == b"", "the connection was closed"
        async with http.post("/faults/restart", params={"downtime": "0.5"}) as answer:
            assert answer.status == 200
        async with http.post("/faults/stall", params={"seconds": "soon"}) as answer:
            assert answer.status == 400
            assert (await answer.json())["code"] == "sim.control.parameter"
        await until(
            lambda: service.sim.running and service.sim.boots == 2, "the simulator did it", within=10.0
        )
        async with http.get("/status") as answer:
            body = await answer.json()
        assert body["running"]
        assert body["boots"] == 2
        assert "hotline-general" in body["queues"]
    writer.close()
    await writer.wait_closed()


def test_the_secret_comes_only_from_the_environment() -> None:
    with pytest.raises(SimulateError, match="HOTLINE_AMI_SECRET"):
        SimulatorService(ServiceOptions(config=ROOT / "hotline_merge.yaml", port=0, rate=0), env={})
    service = SimulatorService(ServiceOptions(config=ROOT / "hotline_merge.yaml", port=0, rate=0, secret_env="MY_SECRET",
                                              username="ops"), env={"MY_SECRET": "x"})  # fmt: skip
    [user] = [u for u in service.sim.users if u.username == "ops"]
    assert user.secret == "x"
    assert user.write == frozenset({"call", "originate", "agent", "user", "reporting"})


async def test_seats_added_by_the_gateway_stay_across_a_restart(service: SimulatorService) -> None:
    """The rendered queues.conf has persistentmembers = yes: dynamic members come back (from AstDB)."""
    await until(
        lambda: service.sim.server.booted, "the simulator booted", within=10.0
    )  # app_queue's actions exist once booted
    client = await AmiTestClient.connect(service.sim.port)
    try:
        await client.login(service.username, SECRET)
        added = await client.action("QueueAdd", Queue="policy-specialist", Interface="Local/4999@agents/n",
                                    MemberName="temp", Paused="true")  # fmt: skip
        assert added.get("Message") == "Added interface to queue"
    finally:
        await client.close()
    await service.sim.shutdown(restart=True, downtime=0.0)
    members = service.sim.pbx.queues.queues["policy-specialist"].members
    [restored] = [m for m in members if m.interface == "Local/4999@agents/n"]
    assert (restored.name, restored.paused, restored.dynamic) == ("temp", True, True)
