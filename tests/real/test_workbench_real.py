"""Issue 15's workbench scenario on the real PBX: seat 1001's /seat page in headless Chromium.

The same steps as ``tests/browser/test_workbench_browser.py`` against the simulator, here with a
real Asterisk, a real SIP phone for the seat and a citizen's call from the carrier trunk: the seat
logs in on its page, the call to a legacy line rings its phone and pops (line, department, mode,
category, masked caller, the caller's earlier work order from the order system), the seat types a
draft and hands over to the line's expert queue with Alt+1, and the work order carries the draft,
the category and the hand-over. Another seat is refused on the call (403).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from bench.harness.system import until
from tests.browser.chromium import Console, log_in_seat, missing_chromium, open_page
from tests.real.conftest import RealStack
from tests.support.seats import seat_token

pytestmark = pytest.mark.asyncio(loop_scope="session")

SEAT = "1001"
OTHER_SEAT = "1002"
EXPERT = "2001"  # logged in to expert-market only, so the line's calls never ring it first
LINE = "12331"  # merged into 12345, department 市场监督管理局 (its expert queue: expert-market)
SUMMARY = "反映某超市出售过期食品，要求查处。"


async def test_pop_draft_and_one_key_hand_over_on_the_real_pbx(real: RealStack, tmp_path: Path) -> None:
    problem = missing_chromium()
    if problem:
        pytest.fail(problem)
    # A first call: the order system then has an earlier work order of this caller.
    first_seat = real.fresh_seat()
    async with real.seats_in(first_seat):
        earlier = await real.dial(LINE)
        await real.wait_live_call(earlier.number, state="talking", within=40)
        await real.hang_up(earlier)
        await real.order_of(earlier.number)

    console = Console()
    await real.post(f"/api/agents/{EXPERT}/login", {"queues": ["expert-market"]}, role="seat")
    try:
        async with real.held(SEAT), open_page(tmp_path / "chromium-profile", console) as page:
            await log_in_seat(page, real.gateway_url, seat_token(real.env, SEAT))
            state = page.get_by_test_id("seat-state")
            await expect(state).to_have_attribute("data-state", "logged_out")
            await page.get_by_test_id("login").click()
            await expect(state).to_have_attribute("data-state", "ready")
            assert SEAT in await real.members("hotline-general")  # Asterisk's own view

            citizen = await real.dial(LINE, earlier.number)
            await until(lambda: _phone_rings(real, SEAT), within=40, what=f"seat {SEAT}'s phone rings")
            await _pop_shows_the_call(page, citizen.number)
            await real.pick_up(SEAT)
            await expect(page.get_by_test_id("pop")).to_have_attribute("data-phase", "talking")
            await expect(state).to_have_attribute("data-state", "on_call")

            await page.get_by_test_id("draft-summary").fill(SUMMARY)
            await page.get_by_test_id("category-sub").select_option("020300")
            await page.get_by_test_id("category-item").select_option("020301")
            await page.get_by_test_id("handling-dispatch").check()
            await expect(page.get_by_test_id("draft-status")).to_contain_text("已保存")

            await page.keyboard.press("Alt+1")  # one key: the line's department expert queue
            await expect(page.get_by_test_id("transfer-target")).to_have_text("市场监管专席（12315）")
            await expect(page.get_by_test_id("transfer")).to_have_attribute("data-state", "completed")
            await until(lambda: _phone_rings(real, EXPERT), within=15, what="the expert's phone has the call")
            police = page.get_by_test_id("handover-110-blind")
            await expect(police).to_be_disabled()
            await expect(police).to_have_attribute("title", re.compile("来电最多接转1次"))
            await expect(page.get_by_test_id("handover-why")).to_contain_text("本来电已转接1次")
            await expect(page.get_by_test_id("override")).to_be_hidden()  # only for supervisors

            call = await real.wait_live_call(citizen.number)
            await _another_seat_is_refused(real, call["id"])
            await real.hang_up(citizen)
            order = await real.order_of(citizen.number, call_id=call["id"])
    finally:
        for seat, body in ((SEAT, None), (EXPERT, {"queues": ["expert-market"]})):
            await real.post(f"/api/agents/{seat}/logout", body, role="seat")

    draft = order["work_order"]
    assert (draft["summary"], draft["category_code"], draft["handling"]) == (SUMMARY, "020301", "dispatch")
    assert (draft["department"], draft["seat_id"]) == ("市场监督管理局", SEAT)
    assert [(h["from_seat"], h["target"], h["mode"], h["outcome"]) for h in order["handovers"]] == [
        (SEAT, "expert-market", "blind", "completed")
    ]
    assert order["seat_ids"] == [SEAT, EXPERT]
    assert order["category_code"] == "020300"  # the line's default stays beside the seat's choice
    assert not console.errors


async def _phone_rings(stack: RealStack, seat: str) -> bool:
    return await stack.seat_channel(seat) is not None


async def _pop_shows_the_call(page: Page, caller: str) -> None:
    """The pop while the phone rings: the line and the caller's earlier work order."""
    await expect(page.get_by_test_id("pop")).to_have_attribute("data-phase", "ringing")
    await expect(page.get_by_test_id("pop-line")).to_contain_text(LINE)
    await expect(page.get_by_test_id("pop-department")).to_have_text("市场监督管理局")
    await expect(page.get_by_test_id("pop-mode")).to_have_text("整体并入")
    await expect(page.get_by_test_id("pop-category")).to_contain_text("020300")
    await expect(page.get_by_test_id("pop-caller")).to_have_text(f"{caller[:3]}****{caller[-4:]}")
    await expect(page.get_by_test_id("history-state")).to_have_text("1 件")
    await expect(page.get_by_test_id("history")).to_contain_text(f"· {LINE} · 020300")


async def _another_seat_is_refused(stack: RealStack, call_id: str) -> None:
    for method, path, body in (
        ("GET", f"/api/calls/{call_id}/draft", None),
        ("PUT", f"/api/calls/{call_id}/draft", {"summary": "不是我的来电"}),
        ("POST", f"/api/calls/{call_id}/transfer", {"target": "expert-market", "mode": "blind"}),
        ("GET", f"/api/calls/{call_id}", None),
        ("GET", f"/api/seats/{SEAT}/live", None),
    ):
        status, answer = await stack.request(method, path, body, role="seat", seat=OTHER_SEAT)
        assert status == 403, (method, path, answer)
