"""Issue 5's proof: a hot reload changes a line's merge mode while calls are up, without dropping
them, and a bad config is refused with every message while the good one keeps running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.sim.people import SeatBehaviour
from tests.e2e.conftest import Stack, StackOptions
from tests.support.polling import until

MERGED_12369 = "mode: merged, announcement: 您拨打的12369热线已并入12345，正在为您转接。}"
PARALLEL_12369 = "mode: parallel, queue: expert-market}"


@pytest.fixture
def stack_options() -> StackOptions:
    # Long calls (minutes of real time), no background traffic: the test places each call itself.
    return StackOptions(rate=0.0001, time_scale=0.2, seats=SeatBehaviour(talk_mean_s=900, talk_min_s=600))


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


async def live_calls(stack: Stack) -> dict[str, Any]:
    return {c["id"]: c for c in (await stack.get("/api/calls"))["calls"]}


async def test_reload_changes_a_line_mode_while_calls_are_up(stack: Stack) -> None:
    traffic = stack.service.traffic
    assert traffic is not None
    config_path = stack.gateway.settings.config_path
    await until(lambda: _ready(stack), within=10, every=0.1, what="gateway ready")
    for number in ("12369", "12369", "12345"):
        traffic.place_call(number)

    async def three_talking() -> bool:
        calls = await live_calls(stack)
        return len(calls) == 3 and all(c["state"] == "talking" for c in calls.values())

    await until(three_talking, within=40, every=0.1, what="three calls answered")
    before = await live_calls(stack)
    assert [c["queue"] for c in before.values()] == ["hotline-general"] * 3

    config_path.write_text(
        config_path.read_text(encoding="utf-8").replace(MERGED_12369, PARALLEL_12369), encoding="utf-8"
    )
    report = await stack.post("/api/config/reload", role="admin")
    assert "extensions.conf" in report["changed"]
    assert "pbx_config.so" in report["reloaded"]
    assert "+ same => n,Set(HOTLINE_QUEUE=expert-market)" in report["diff"].replace("+exten", "+ exten")
    assert set(report["verified_queues"]) >= {"hotline-general", "expert-market"}

    after = await live_calls(stack)
    assert after.keys() == before.keys()  # nobody was dropped by the reload
    assert all(c["state"] == "talking" for c in after.values())
    sim_calls = {c.linkedid for c in stack.sim.pbx.channels.values()}
    assert before.keys() <= sim_calls

    # A new call on 12369 now reaches the department's seats first (parallel).
    traffic.place_call("12369")
    new_call = await _new_call(stack, set(before))
    assert new_call["merge_mode"] == "parallel"
    assert new_call["queue"] == "expert-market"


async def test_bad_reload_is_refused_and_the_running_config_stays(stack: Stack) -> None:
    config_path = stack.gateway.settings.config_path
    dialplans: Path = stack.gateway.settings.dialplans_dir
    await until(lambda: _ready(stack), within=10, every=0.1, what="gateway ready")
    await stack.post("/api/config/reload", role="admin")  # the good config, applied once
    applied = folder_bytes(dialplans)
    plan_before = stack.gateway.plan

    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(
        text.replace(
            "mode: subcenter, queue: subcenter-tax}", "mode: subcenter, queue: subcentre-tax}"
        ).replace("  timeout_s: 8\n", "  timeout_s: soon\n"),
        encoding="utf-8",
    )
    response = await stack.client.post("/api/config/reload", headers=stack.headers("admin"))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "config.invalid"
    assert any(": survey.timeout_s: " in p for p in error["problems"])  # structure first, every problem
    assert folder_bytes(dialplans) == applied
    assert stack.gateway.plan is plan_before
    assert (await stack.client.post("/api/config/reload", headers=stack.headers("supervisor"))).status == 403


async def _ready(stack: Stack) -> bool:
    return (await stack.client.get("/readyz")).status == 200


async def _new_call(stack: Stack, known: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def appeared() -> bool:
        for call_id, call in (await live_calls(stack)).items():
            if call_id not in known and call["queue"]:
                found.update(call)
                return True
        return False

    await until(appeared, within=15, every=0.1, what="the new call queued")
    return found
