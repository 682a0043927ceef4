"""The seats' workbench (/seat) in a real headless Chromium against the simulator and the gateway.

A citizen calls a merged line; seat 1001's page pops the call while it rings and once answered,
with the line, the department and the caller's earlier work order from the order system; the
seat types a draft, hands the call to the department's expert queue with one key, and the work
order at the reference order system carries the draft, the category and the hand-over. Waiting
is always for a condition (Playwright's ``expect``, ``until``), never for a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from playwright.async_api import Page, expect

from gateway.dialplan.routing import seat_interface
from gateway.keys import OutboxKeys
from gateway.localredis import LocalRedis
from gateway.ordersink.examples import answered_call
from gateway.ordersink.sink import OrderSink
from gateway.sim.people import FarEnd
from tests.browser.chromium import Console, log_in_seat
from tests.integration.test_transfers import Stack, open_stack, start_gateway
from tests.support.polling import until
from tests.support.seats import bearer, seat_token

CALLER = "13800000001"  # a registered elderly caller in the shipped config (适老化)
LINE = "12331"  # merged into 12345, department 市场监督管理局 (its expert queue: expert-market)
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture
async def stack(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Stack]:
    """The transfer tests' stack: simulator (2 seats per queue, no traffic) and gateway."""
    async with open_stack(redis_server, redis_client, tmp_path) as opened:
        yield opened


@pytest.fixture
async def sink(stack: Stack, tmp_path: Path) -> AsyncIterator[OrderSink]:
    """The reference order system; the gateway is restarted to deliver its records there."""
    async with OrderSink(tmp_path / "orders.sqlite3", stack.env["HOTLINE_ORDER_TOKEN"]) as opened:
        stack.env["HOTLINE_ORDER_URL"] = opened.url
        await stack.client.close()
        stack.client = await start_gateway(stack.env, stack.config, stack.sim, dispatchers=1)
        yield opened


async def seat_page(page: Page, stack: Stack, extension: str) -> None:
    """The seat's workbench, logged in with its own token; the seat is ready (the stack logs it in)."""
    await log_in_seat(page, str(stack.client.make_url("")), seat_token(stack.env, extension))
    await expect(page.get_by_test_id("seat-state")).to_have_attribute("data-state", "ready")


async def api(
    stack: Stack, method: str, path: str, seat: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = bearer(stack.env, "seat" if seat else "supervisor", seat)
    response = await stack.client.request(method, path, json=body, headers=headers)
    return response.status, await response.json()


async def test_pop_draft_and_one_key_hand_over_reach_the_work_order(
    stack: Stack, sink: OrderSink, page: Page, console: Console
) -> None:
    earlier = answered_call(1, start=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    assert earlier.caller_number == CALLER
    sink.store.submit(earlier.idempotency_key, earlier)
    status, _ = await api(stack, "POST", "/api/agents/1002/pause", body={"reason": "小休"})
    assert status == 200
    await until(lambda: stack.gateway.tracker.seats["1002"].state.value == "paused", "1002 paused")
    stack.phones.hold_at.add("1001")  # simulated time stands still while 1001 rings
    await seat_page(page, stack, "1001")

    stack.dial_in("citizen-1", number=LINE, caller=CALLER)
    pop = page.get_by_test_id("pop")
    await expect(pop).to_have_attribute("data-phase", "ringing")
    await expect(page.get_by_test_id("pop-line")).to_contain_text(LINE)
    await expect(page.get_by_test_id("pop-department")).to_have_text("市场监督管理局")
    await expect(page.get_by_test_id("pop-mode")).to_have_text("整体并入")
    await expect(page.get_by_test_id("pop-category")).to_contain_text("020300")
    await expect(page.get_by_test_id("pop-caller")).to_have_text("138****0001")  # caller_mask: middle
    await expect(page.get_by_test_id("pop-elderly")).to_be_visible()
    known = sink.store.work_order(earlier.record_id)
    assert known is not None
    await expect(page.get_by_test_id("history")).to_contain_text(known["work_order_id"])
    stack.sim.clock.resume()  # 1001 answers
    await expect(pop).to_have_attribute("data-phase", "talking")
    await expect(page.get_by_test_id("seat-state")).to_have_attribute("data-state", "on_call")

    await page.get_by_test_id("draft-summary").fill("反映某超市出售过期食品，要求查处。")
    await page.get_by_test_id("category-sub").select_option("020300")
    await page.get_by_test_id("category-item").select_option("020301")
    await page.get_by_test_id("handling-dispatch").check()
    await page.get_by_test_id("draft-urgent").check()
    await expect(page.get_by_test_id("draft-status")).to_contain_text("已保存")
    await shoot(page, "workbench-1920x1080.png")
    await page.set_viewport_size({"width": 1366, "height": 768})
    await expect(page.get_by_test_id("handover-expert-market-blind")).to_be_in_viewport()
    await expect(page.get_by_test_id("draft-save")).to_be_in_viewport()
    await shoot(page, "workbench-1366x768.png")

    await page.keyboard.press("Alt+1")  # one key: the line's department expert queue
    transfer = page.get_by_test_id("transfer")
    await expect(page.get_by_test_id("transfer-target")).to_have_text("市场监管专席（12315）")
    await expect(transfer).to_have_attribute("data-state", "completed")
    await stack.talking("citizen-1", "2001")
    police = page.get_by_test_id("handover-110-blind")
    await expect(police).to_be_disabled()
    await expect(police).to_have_attribute("title", re.compile("来电最多接转1次"))
    await expect(page.get_by_test_id("handover-why")).to_contain_text("本来电已转接1次")
    await expect(page.get_by_test_id("override")).to_be_hidden()  # only for supervisors

    stack.caller_hangs_up("citizen-1")
    order: dict[str, Any] = {}

    def stored() -> bool:
        found = next(
            (o for o in _orders(sink) if o["record"]["linkedid"] == "citizen-1" and o["stage"] == "final"),
            None,
        )
        order.update(found or {})
        return found is not None

    await until(stored, "the work order of citizen-1 at the order system")
    record = order["record"]
    draft = record["work_order"]
    assert (draft["summary"], draft["category_code"], draft["handling"], draft["urgent"]) == (
        "反映某超市出售过期食品，要求查处。",
        "020301",
        "dispatch",
        True,
    )
    assert (draft["department"], draft["seat_id"]) == ("市场监督管理局", "1001")
    (handover,) = record["handovers"]
    assert (handover["from_seat"], handover["target"], handover["mode"]) == ("1001", "expert-market", "blind")
    assert record["category_code"] == "020300"  # the line's default stays beside the seat's choice
    assert not console.errors


async def test_a_seat_cannot_see_or_act_on_another_seats_call(stack: Stack) -> None:
    stack.dial_in("citizen-2", number=LINE, caller=CALLER)
    await stack.talking("citizen-2", "1001")
    for method, path, body in (
        ("GET", "/api/calls/citizen-2/draft", None),
        ("PUT", "/api/calls/citizen-2/draft", {"summary": "不是我的来电"}),
        ("POST", "/api/calls/citizen-2/transfer", {"target": "expert-market", "mode": "blind"}),
        ("GET", "/api/calls/citizen-2", None),
        ("GET", "/api/seats/1001/setup", None),
        ("GET", "/api/seats/1001/live", None),
        ("POST", "/api/agents/1001/pause", {"reason": "小休"}),
    ):
        status, answer = await api(stack, method, path, seat="1002", body=body)
        assert status == 403, (method, path, answer)
    status, answer = await api(stack, "GET", "/api/seats/1001/setup")  # a supervisor sees every seat's
    assert (status, answer["role"], answer["pause_reasons"][0]) == (200, "supervisor", "小休")
    status, answer = await api(
        stack, "PUT", "/api/calls/citizen-2/draft", seat="1001", body={"summary": "我的"}
    )
    assert (status, answer["draft"]["version"]) == (200, 1)
    status, answer = await api(
        stack, "PUT", "/api/calls/citizen-2/draft", seat="1001", body={"category_code": "999999"}
    )
    assert (status, answer["error"]["code"]) == (400, "draft.unknown_category")
    status, answer = await api(
        stack, "POST", "/api/agents/1001/pause", seat="1001", body={"reason": "打游戏"}
    )
    assert (status, answer["error"]["code"]) == (400, "agent.invalid_reason")


async def test_a_draft_saved_after_the_call_ended_is_a_new_revision_of_its_work_order(
    stack: Stack, sink: OrderSink
) -> None:
    stack.dial_in("citizen-3", number=LINE, caller=CALLER)
    await stack.talking("citizen-3", "1001")
    status, _ = await api(stack, "PUT", "/api/calls/citizen-3/draft", seat="1001", body={"summary": "第一版"})
    assert status == 200
    stack.caller_hangs_up("citizen-3")
    first: dict[str, Any] = {}

    def final_with(summary: str) -> bool:
        found = next((o for o in _orders(sink) if o["record"]["linkedid"] == "citizen-3"), None)
        first.update(found or {})
        return bool(found and (found["record"]["work_order"] or {}).get("summary") == summary)

    await until(lambda: final_with("第一版"), "the final record with the first draft")
    revision = first["revision"]
    # In wrap-up, after the call: the seat finishes the summary; the order system gets a new revision.
    status, answer = await api(
        stack,
        "PUT",
        "/api/calls/citizen-3/draft",
        seat="1001",
        body={"summary": "第二版", "handling": "resolved_on_call"},
    )
    assert (status, answer["draft"]["version"]) == (200, 2)
    await until(lambda: final_with("第二版"), "the work order amended with the second draft")
    assert first["revision"] > revision


def _orders(sink: OrderSink) -> list[dict[str, Any]]:
    return [
        o
        for key in {k.partition(":")[0] for k in sink.store.delivery_keys()}
        if (o := sink.store.work_order(key))
    ]


async def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / name))


async def test_ready_now_ends_the_wrap_up_as_asterisk_sees_it(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    # A wrap-up far longer than the test: only "ready now" can end it.
    async with open_stack(redis_server, redis_client, tmp_path, wrapup_s=600) as stack:
        stack.dial_in("citizen-4", number=LINE, caller=CALLER)
        await stack.talking("citizen-4", "1001")
        stack.caller_hangs_up("citizen-4")
        seats = stack.gateway.tracker.seats
        await until(lambda: seats["1001"].state.value == "wrap_up", "1001 wrapping up")
        status, answer = await api(stack, "POST", "/api/agents/1001/ready", seat="1001")
        assert status == 200, answer
        assert [r["action"] for r in answer["results"]] == ["QueueRemove", "QueueAdd"]
        await until(lambda: seats["1001"].state.value == "ready", "1001 ready again")
        member = stack.sim.pbx.queues.queues["hotline-general"].member(seat_interface("1001"))
        assert member is not None
        assert member.wrapup_until == 0.0  # Asterisk's view: no wrap-up left


async def test_the_page_says_when_its_data_is_stale_and_recovers(stack: Stack, page: Page) -> None:
    await seat_page(page, stack, "1001")
    banner = page.get_by_test_id("stale-banner")
    await expect(banner).to_be_hidden()
    restart = asyncio.create_task(stack.sim.shutdown(restart=True, downtime=100.0))  # 5 s at TIME_SCALE
    await expect(banner).to_contain_text("数据可能不是最新")
    await restart
    await expect(banner).to_be_hidden(timeout=15_000)  # resynced: the state is Asterisk's again
    await expect(page.get_by_test_id("seat-state")).to_have_attribute("data-state", "ready")


async def test_a_hand_over_to_110_tells_the_linkage_what_the_seat_wrote(stack: Stack) -> None:
    """The interim record sent at the 110 hand-over carries the draft saved before it."""
    stack.phones.script["110"] = FarEnd(2.0, True, None)
    stack.dial_in("citizen-5", number=LINE, caller=CALLER)
    await stack.talking("citizen-5", "1001")
    body = {
        "summary": "市民称店内有人持刀闹事",
        "urgent": True,
        "handling": "dispatch",
        "department": "市场监督管理局",
    }
    status, _ = await api(stack, "PUT", "/api/calls/citizen-5/draft", seat="1001", body=body)
    assert status == 200
    status, answer = await api(
        stack, "POST", "/api/calls/citizen-5/transfer", seat="1001", body={"target": "110", "mode": "blind"}
    )
    assert status == 201, answer
    interim: list[dict[str, Any]] = []

    async def sent() -> bool:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await stack.redis.xrange(OutboxKeys().stream))
        interim[:] = [
            r
            for _, fields in entries
            if (r := json.loads(fields[b"record"]))["linkedid"] == "citizen-5" and r["stage"] == "interim"
        ]
        return bool(interim)

    await until(sent, "the interim record of the 110 hand-over")
    assert interim[0]["disposition"]["emergency_service"] == "110"
    assert (interim[0]["work_order"]["summary"], interim[0]["work_order"]["urgent"]) == (
        body["summary"],
        True,
    )
