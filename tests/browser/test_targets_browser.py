"""The dashboard's colours follow the YAML's targets, and no label wraps, at 1280x720 and 1920x1080.

The floor's calls are chosen so that figures land at, a little under and far under their targets;
the page's verdict (``data-grade``), the colour Chromium computes for it and the target on hover are
read back. Label wrapping is measured: the line boxes of each label's text, and its right edge
against its card's.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, ViewportSize, expect

from gateway.web.live import LiveHub
from tests.browser.chromium import log_in
from tests.browser.scene import SUPERVISOR_TOKEN, Floor, busy_floor, empty_floor

VIEWPORTS = [ViewportSize(width=1280, height=720), ViewportSize(width=1920, height=1080)]
COLOURS = {"good": "rgb(61, 220, 132)", "warn": "rgb(255, 176, 32)", "bad": "rgb(255, 77, 79)"}
LABELS = ".kpi .label, .kpi .denom, .fig .label, .q-counts dt, .q-rates dt, .q-seats span, .lines th"


def graded_floor() -> Floor:
    """General seats exactly at target; the 12315 seats a little and far under theirs."""
    floor = empty_floor()
    for i in range(100):  # 95 % answered (target 95), 5 % abandoned (target at most 5)
        floor.call("hotline-general", "12345", 5.0, answered=i < 95)
    for i in range(100):  # 12 % abandoned (> 1.5 x 5); 68 of 88 answered within 15 s (77.3 %: amber)
        floor.call("expert-market", "12315", 20.0 if 68 <= i < 88 else 5.0, answered=i < 88)
    floor.waiting = {"hotline-general": 2, "expert-market": 3, "subcenter-tax": 4}
    floor.longest_wait_s = {"hotline-general": 30.0, "expert-market": 70.0, "subcenter-tax": 300.0}
    return floor


async def grade_of(page: Page, test_id: str, card: str | None = None) -> tuple[str | None, str, str]:
    """The page's verdict on a figure, the colour Chromium paints it and its hover text."""
    root = page.get_by_test_id(card) if card else page
    figure = root.get_by_test_id(test_id)
    colour = await figure.evaluate("node => getComputedStyle(node).color")
    return await figure.get_attribute("data-grade"), colour, await figure.get_attribute("title") or ""


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v['width']}x{v['height']}")
async def test_figures_are_coloured_by_their_targets(
    page: Page, hub: LiveHub, base_url: str, viewport: ViewportSize
) -> None:
    await page.set_viewport_size(viewport)
    hub.publish(graded_floor().snapshot())
    await log_in(page, base_url, SUPERVISOR_TOKEN)
    general, market, tax = "queue-hotline-general", "queue-expert-market", "queue-subcenter-tax"
    await expect(page.get_by_test_id(market).get_by_test_id("abandon-rate")).to_have_text("12.0%")

    expected: list[tuple[str, str | None, str, str]] = [
        # (figure, card, verdict, what the hover names)
        ("overall-response-rate", None, "warn", "接通率不低于 95.0%"),  # 183 of 200: 91.5 %
        ("overall-abandon-rate", None, "bad", "放弃率不高于 5.0%"),  # 8.5 % (> 7.5)
        ("overall-asa", None, "good", "不超过 20 秒"),
        ("sl-answered", general, "good", "80.0% 的来电在 15 秒内接通"),
        ("sl-offered", general, "good", "80.0%"),  # 95 %
        ("abandon-rate", general, "good", "放弃率不高于 5.0%"),  # exactly at target
        ("asa", general, "good", "20 秒"),
        ("longest-wait", general, "good", "超过 60 秒"),  # 30 s
        ("sl-answered", market, "warn", "80.0%"),  # 77.3 %
        ("sl-offered", market, "bad", "80.0%"),  # 68 %
        ("abandon-rate", market, "bad", "5.0%"),  # 12 %
        ("longest-wait", market, "warn", "60 秒"),  # 70 s
        ("longest-wait", tax, "bad", "60 秒"),  # 5 minutes
    ]
    for test_id, card, verdict, hover in expected:
        root = page.get_by_test_id(card) if card else page
        await expect(root.get_by_test_id(test_id)).to_have_attribute("data-grade", verdict)
        grade, colour, title = await grade_of(page, test_id, card)
        assert (grade, colour) == (verdict, COLOURS[verdict]), (test_id, card)
        assert title.startswith("目标："), (test_id, card, title)
        assert hover in title, (test_id, card, title)

    # No calls, no satisfaction survey, nobody waiting: no verdict and no green.
    for test_id, card in (
        ("overall-satisfaction-rate", None),
        ("sl-answered", tax),
        ("longest-wait", "queue-expert-hrss"),
    ):
        grade, colour, _ = await grade_of(page, test_id, card)
        assert grade is None, (test_id, card)
        assert colour not in COLOURS.values(), (test_id, card)


async def test_a_collapsing_centre_is_red_not_green(page: Page, hub: LiveHub, base_url: str) -> None:
    """The issue's case: a 39.5 % response rate was painted green."""
    floor = empty_floor()
    for i in range(200):
        floor.call("hotline-general", "12345", 40.0 if i < 79 else 90.0, answered=i < 79)
    hub.publish(floor.snapshot())
    await log_in(page, base_url, SUPERVISOR_TOKEN)
    await expect(page.get_by_test_id("overall-response-rate")).to_have_text("39.5%")
    for test_id in ("overall-response-rate", "overall-sl-answered", "overall-abandon-rate", "overall-asa"):
        assert (await grade_of(page, test_id))[:2] == ("bad", COLOURS["bad"]), test_id


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v['width']}x{v['height']}")
async def test_no_label_wraps_or_overflows_its_card(
    page: Page, hub: LiveHub, base_url: str, viewport: ViewportSize
) -> None:
    await page.set_viewport_size(viewport)
    hub.publish(busy_floor().snapshot())
    await log_in(page, base_url, SUPERVISOR_TOKEN)
    await page.get_by_test_id("window-today").click()
    await expect(page.get_by_test_id("overall-asa")).not_to_have_text("—")
    measured: list[dict[str, Any]] = await page.evaluate(
        """selector => [...document.querySelectorAll(selector)].map(label => {
            const range = document.createRange();
            range.selectNodeContents(label);
            const lineHeight = parseFloat(getComputedStyle(label).lineHeight);
            // Line boxes: text fragments whose tops differ by more than half a line.
            const tops = [...range.getClientRects()].filter(r => r.width > 0).map(r => r.top).sort((a, b) => a - b);
            const lines = tops.filter((top, i) => i === 0 || top - tops[i - 1] > lineHeight / 2).length;
            const card = label.closest(".kpi, .queue, .lines-panel");
            return {
                text: label.textContent.trim(), lines,
                overflow: range.getBoundingClientRect().right - card.getBoundingClientRect().right,
            };
        })""",
        LABELS,
    )
    assert len(measured) > 100  # every card's labels, not an empty page
    texts = {m["text"] for m in measured}
    assert {"平均应答速度", "接通率（响应率）", "最长等待"} <= texts
    wrapped = [m["text"] for m in measured if m["lines"] != 1]
    assert wrapped == []
    overflowing = [m["text"] for m in measured if m["overflow"] > 0.5]
    assert overflowing == []
