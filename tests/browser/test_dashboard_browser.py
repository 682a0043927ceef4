"""The dashboard in a real headless Chromium: log in, read the figures, watch them follow the KPIs.

Snapshots come from a real ``KpiBook`` into which the tests record calls; what the page shows is
compared with the snapshot and with ``/api/snapshot``. Waiting is always for a selector or a text
(Playwright's ``expect``); client-side time is driven by Playwright's fake clock, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from gateway.web.live import LiveHub
from gateway.web.snapshot import LinkView, as_plain
from tests.browser.chromium import Console, log_in
from tests.browser.scene import SUPERVISOR_TOKEN, Floor, busy_floor, empty_floor

QUEUE_FIGURES = ("waiting", "offered", "answered", "abandoned", "sl-answered", "sl-offered", "asa")


# The page's number formats (dashboard.js): JavaScript's toFixed rounds ties up, hence Decimal.
def fixed(value: float, places: int = 1) -> str:
    return str(Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))


def pct(value: float | None) -> str:
    return "—" if value is None else f"{fixed(value * 100)}%"


def secs(value: float | None) -> str:
    return "—" if value is None else f"{fixed(value)}秒"


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def seconds_of(text: str) -> int:
    minutes, rest = text.split(":")
    return int(minutes) * 60 + int(rest)


async def show_busy_floor(page: Page, hub: LiveHub, base_url: str) -> Floor:
    """A busy floor published, and the page logged in as a supervisor to watch it."""
    floor = busy_floor()
    hub.publish(floor.snapshot())
    await log_in(page, base_url, SUPERVISOR_TOKEN)
    return floor


def queue_figures(queue: dict[str, Any], window: str) -> list[str]:
    rates = queue["rates"][window]
    return [
        count(queue["waiting"]),
        count(rates["offered"]),
        count(rates["answered"]),
        count(rates["abandoned"]),
        pct(rates["service_level_of_answered"]),
        pct(rates["service_level_of_offered"]),
        secs(rates["asa_s"]),
    ]


async def expect_queue(page: Page, queue: dict[str, Any], window: str) -> None:
    card = page.get_by_test_id(f"queue-{queue['name']}")
    figures = card.locator(", ".join(f'[data-testid="{name}"]' for name in QUEUE_FIGURES))
    await expect(figures).to_have_text(queue_figures(queue, window))
    seats = queue["seats"]
    counts = card.locator(".q-seats b")
    await expect(counts).to_have_text(
        [count(seats[k]) for k in ("logged_in", "ready", "ringing", "on_call", "wrap_up", "paused")]
    )


async def expect_overall(page: Page, snap: dict[str, Any], window: str) -> None:
    rates = snap["overall"][window]
    resolution = rates if rates["with_feedback"] else snap["overall"]["today"]  # the page's fallback
    expected = {
        "overall-waiting": count(sum(q["waiting"] for q in snap["queues"])),
        "overall-offered": count(rates["offered"]),
        "overall-response-rate": pct(rates["response_rate"]),
        "overall-response-denominator": count(rates["offered"]),
        "overall-resolution-rate": pct(resolution["resolution_rate"]),
        "overall-resolution-denominator": count(resolution["with_feedback"]),
        "overall-satisfaction-rate": pct(rates["satisfaction_rate"]),
        "overall-satisfaction-denominator": count(rates["rated"]),
        "overall-sl-answered": pct(rates["service_level_of_answered"]),
        "overall-sl-offered": pct(rates["service_level_of_offered"]),
        "overall-abandon-rate": pct(rates["abandon_rate"]),
    }
    for test_id, text in expected.items():
        await expect(page.get_by_test_id(test_id)).to_have_text(text)


async def test_figures_equal_the_snapshot_and_the_api_and_follow_new_calls(
    page: Page, hub: LiveHub, base_url: str, console: Console
) -> None:
    floor = await show_busy_floor(page, hub, base_url)

    api = await page.request.get(f"{base_url}/api/snapshot")  # with the page's session cookie
    snap = await api.json()
    assert snap == as_plain(floor.snapshot())
    for queue in snap["queues"]:
        await expect_queue(page, queue, "15m")
    await expect_overall(page, snap, "15m")
    busiest = max(snap["lines"], key=lambda line: line["today"])
    first_row = page.get_by_test_id("lines").locator("tr").first
    await expect(first_row).to_have_attribute("data-testid", f"line-{busiest['number']}")
    await expect(first_row.get_by_test_id("today")).to_have_text(count(busiest["today"]))
    present = [s for s in snap["seats"] if s["state"] != "logged_out"]
    await expect(page.get_by_test_id("seats").locator(".seat")).to_have_count(len(present))

    # Four more calls reach the general queue (one gives up) and the queue builds up.
    for wait_s, answered in ((4.0, True), (9.0, True), (31.0, True), (50.0, False)):
        floor.call("hotline-general", "12345", wait_s, answered=answered)
    floor.waiting["hotline-general"] = 12
    floor.longest_wait_s["hotline-general"] = 75.0
    hub.publish(floor.snapshot())
    after = as_plain(floor.snapshot())
    general = next(q for q in after["queues"] if q["name"] == "hotline-general")
    assert (
        general["rates"]["15m"]["offered"]
        == next(q for q in snap["queues"] if q["name"] == "hotline-general")["rates"]["15m"]["offered"] + 4
    )
    await expect_queue(page, general, "15m")
    await expect_overall(page, after, "15m")
    # 75 s is past the queue's 60 s target, within 1.5 times it: amber
    await expect(
        page.get_by_test_id("queue-hotline-general").get_by_test_id("longest-wait")
    ).to_have_attribute("data-grade", "warn")

    await page.get_by_test_id("window-24h").click()
    await expect(page.get_by_test_id("window-24h")).to_have_attribute("aria-pressed", "true")
    await expect_queue(page, general, "24h")
    await expect_overall(page, after, "24h")
    assert console.errors == []  # no script error, no CSP refusal, no failed request


async def test_a_stale_link_shows_the_red_banner(page: Page, hub: LiveHub, base_url: str) -> None:
    floor = await show_busy_floor(page, hub, base_url)
    banner = page.get_by_test_id("link-banner")
    await expect(page.get_by_test_id("queue-hotline-general")).to_be_visible()
    await expect(banner).to_be_hidden()

    floor.link = LinkView("connecting", True, "与Asterisk的AMI连接中断，正在重连")
    hub.publish(floor.snapshot())
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("与Asterisk的AMI连接中断，正在重连")
    await expect(banner).to_contain_text("connecting")

    floor.link = LinkView("ready", False, "")
    hub.publish(floor.snapshot())
    await expect(banner).to_be_hidden()


async def test_counters_tick_between_pushes_and_silence_means_disconnected(
    page: Page, hub: LiveHub, base_url: str
) -> None:
    floor = busy_floor()
    floor.waiting["hotline-general"] = 3
    floor.longest_wait_s["hotline-general"] = 50.0  # under the 60 s target, for now
    hub.publish(floor.snapshot())
    await page.clock.install()
    await log_in(page, base_url, SUPERVISOR_TOKEN)
    longest = page.get_by_test_id("queue-hotline-general").get_by_test_id("longest-wait")
    await expect(longest).not_to_be_empty()
    # Freeze the page's time a second ahead; from here on it moves only when the test says so.
    page_now_ms = await page.evaluate("Date.now()")
    await page.clock.pause_at(dt.datetime.fromtimestamp(page_now_ms / 1000 + 1, dt.UTC))

    seat = next(s for s in floor.seats if s.state == "on_call")
    since = page.get_by_test_id(f"seat-{seat.extension}").get_by_test_id("since")
    seat_start = seconds_of(await since.inner_text())
    wait_start = seconds_of(await longest.inner_text())
    assert seat_start >= floor.now - seat.since
    assert wait_start < 60
    await expect(longest).to_have_attribute("data-grade", "good")

    await page.clock.run_for((61 - wait_start) * 1000)
    await expect(longest).to_have_text(clock(61))
    await expect(longest).to_have_attribute("data-grade", "warn")  # amber once past the target
    await expect(since).to_have_text(clock(seat_start + 61 - wait_start))

    banner = page.get_by_test_id("stream-banner")
    await expect(banner).to_be_hidden()
    await page.clock.run_for(21_000)  # no snapshot and no ping for more than 20 s
    await expect(banner).to_be_visible()


async def test_stopping_the_server_shows_the_disconnected_banner(
    page: Page, hub: LiveHub, server: TestServer, base_url: str
) -> None:
    hub.publish(busy_floor().snapshot())
    await log_in(page, base_url, SUPERVISOR_TOKEN)
    banner = page.get_by_test_id("stream-banner")
    await expect(page.get_by_test_id("queue-hotline-general")).to_be_visible()
    await expect(banner).to_be_hidden()
    await server.close()
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("实时连接已断开")


async def test_login_form_refuses_bad_tokens_and_logout_ends_the_session(
    page: Page, hub: LiveHub, base_url: str, console: Console
) -> None:
    hub.publish(empty_floor().snapshot())
    await page.goto(f"{base_url}/login")
    await page.get_by_test_id("token").fill("not-a-token")
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-error")).to_contain_text("令牌无效")
    await log_in(page, base_url, SUPERVISOR_TOKEN)
    await expect(page.get_by_test_id("queue-hotline-general")).to_be_visible()
    await page.get_by_test_id("logout").click()
    await page.wait_for_url(f"{base_url}/login")
    await page.goto(f"{base_url}/dashboard")
    await page.wait_for_url(f"{base_url}/login")
    # The refused login answered 401, which Chromium logs; nothing else may appear.
    assert [e for e in console.errors if "401" not in e] == []


async def test_deltas_keep_the_page_equal_to_the_whole_snapshot(
    page: Page, hub: LiveHub, base_url: str, console: Console
) -> None:
    floor = await show_busy_floor(page, hub, base_url)
    seats = page.get_by_test_id("seats")
    talking = next(s for s in floor.seats if s.state == "on_call")
    leaving = next(s for s in floor.seats if s.state == "ready")
    await expect(seats.get_by_test_id(f"seat-{leaving.extension}")).to_have_count(1)

    # One seat pauses, one is gone from the node, and a second city's node shows up with a seat
    # whose extension the first city uses too: the pushes after the first are deltas.
    floor.seats = [
        replace(s, state="paused", reason="培训", since=floor.now) if s is talking else s
        for s in floor.seats
        if s is not leaving
    ]
    floor.seats.append(replace(talking, node="pbx-2", state="ready", since=floor.now - 5))
    floor.now += 1  # a later snapshot
    hub.publish(floor.snapshot())
    tile = seats.get_by_test_id(f"seat-{talking.extension}")
    await expect(tile).to_have_count(2)  # one per node
    await expect(tile.and_(page.locator('[title="节点 pbx-1"]')).get_by_test_id("state")).to_have_text("小休")
    await expect(tile.and_(page.locator('[title="节点 pbx-2"]')).get_by_test_id("state")).to_have_text("空闲")
    await expect(seats.get_by_test_id(f"seat-{leaving.extension}")).to_have_count(0)
    whole = await (await page.request.get(f"{base_url}/api/snapshot")).json()
    assert await page.evaluate("view.snapshot") == whole
    assert await page.evaluate("view.number") == "2"  # the second push, a delta, was applied
    assert console.errors == []
