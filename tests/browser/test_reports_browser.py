"""The reports page in Debian's headless Chromium: a day of records in real Redis, read back through
the page: date range, tables, the chart, the staffing table, the ranking and the export links."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from gateway.merge.loader import load_config
from gateway.records.model import SurveyResult
from gateway.reports.store import ReportStore
from tests.browser.chromium import Console, log_in
from tests.browser.scene import SUPERVISOR_TOKEN
from tests.conftest import ROOT
from tests.support.report_calls import beijing, call, reports_app


@pytest.fixture
async def reports_url(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    config = load_config(ROOT / "hotline_merge.yaml")
    store = ReportStore(redis_client, lambda: {q.name: 15 for q in config.queues}, retention_days=30)
    records = [
        # Monday 2 March: the general seats at 09:00 and 09:30, one short abandon.
        call(beijing(2026, 3, 2, 9, 5), linkedid="b.1", wait_s=8, survey=SurveyResult.SATISFIED),
        call(beijing(2026, 3, 2, 9, 10), linkedid="b.2", wait_s=25),
        call(beijing(2026, 3, 2, 9, 35), linkedid="b.3", wait_s=3, answered=False),
        call(
            beijing(2026, 3, 2, 9, 40),
            linkedid="b.4",
            line="12366",
            department="税务局",
            queues=("subcenter-tax",),
        ),
        # February, for the ranking's month before.
        call(beijing(2026, 2, 10, 9, 0), linkedid="b.5", answered=False, wait_s=40),
    ]
    # 20:00 the same Monday: 100 calls of 3 minutes to the six health experts.
    start = beijing(2026, 3, 2, 20, 0)
    records += [
        call(start + dt.timedelta(seconds=n * 17), linkedid=f"h.{n}", queues=("expert-health",), talk_s=150)
        for n in range(100)
    ]
    store.add(records)
    assert await store.flush()
    server = TestServer(reports_app(redis_client, store, config), host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_the_reports_page_shows_a_day(
    page: Page, reports_url: str, console: Console, tmp_path: Path
) -> None:
    await log_in(page, reports_url, SUPERVISOR_TOKEN)
    await page.goto(f"{reports_url}/reports?from=2026-03-02&to=2026-03-02&month=2026-03")
    await expect(page.locator("body")).to_have_attribute("data-loaded", "true")
    await expect(page.get_by_test_id("from")).to_have_value("2026-03-02")

    intervals = page.get_by_test_id("table-intervals")
    await expect(intervals.locator("tbody tr")).to_have_count(3)
    first = intervals.locator("tbody tr").first
    await expect(first.locator('[data-key="interval"]')).to_have_text("09:00-09:30")
    await expect(first.locator('[data-key="offered"]')).to_have_text("2")
    await expect(first.locator('[data-key="sl_of_offered"]')).to_have_text("50.0%")
    second = intervals.locator("tbody tr").nth(1)
    await expect(second.locator('[data-key="short_abandoned"]')).to_have_text("1")
    await expect(page.get_by_test_id("table-intervals").locator("th").nth(8)).to_have_text(
        "15秒服务水平（÷呼入）"
    )

    # The chart: two bars and one service-level point per interval, drawn by the page itself.
    chart = page.get_by_test_id("chart-svg")
    await expect(chart.locator("rect")).to_have_count(6)
    assert len((await page.get_by_test_id("chart-sl").get_attribute("points") or "").split()) == 3

    await expect(page.get_by_test_id("table-queues").locator("tbody tr")).to_have_count(3)
    await expect(page.get_by_test_id("table-departments")).to_contain_text("税务局")
    staffing = page.get_by_test_id("table-staffing").locator("tbody tr")
    await expect(staffing).to_have_count(1)
    await expect(staffing.first.locator('[data-key="queue"]')).to_have_text("卫健专席（12320）")
    await expect(staffing.first.locator('[data-key="needed"]')).to_have_text("14")
    await expect(staffing.first.locator('[data-key="on_duty"]')).to_have_text("6")

    ranking = page.get_by_test_id("table-ranking").locator("tbody tr")
    await expect(ranking).to_have_count(2)
    # By response rate: tax 1 of 1, market 102 of 103 (in February 0 of 1).
    await expect(ranking.first.locator('[data-key="department"]')).to_have_text("税务局")
    await expect(ranking.nth(1).locator('[data-key="response_rate"]')).to_have_text("99.0%")
    await expect(ranking.nth(1).locator('[data-key="prev_response_rate"]')).to_have_text("0.0%")

    # Export links carry the range; the workbook downloads.
    csv_link = await page.get_by_test_id("export-csv-intervals").get_attribute("href")
    assert (
        csv_link == "/api/reports/export?from=2026-03-02&to=2026-03-02&scope=all&format=csv&table=intervals"
    )
    xlsx = page.get_by_test_id("export-xlsx")
    async with page.expect_download() as download_info:
        await xlsx.click()
    download = await download_info.value
    assert download.suggested_filename == "12345-all-2026-03-02_2026-03-02.xlsx"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    assert saved.read_bytes()[:2] == b"PK"

    # Another range: the page asks again and says there is nothing; the address keeps the range.
    await page.get_by_test_id("from").fill("2026-03-03")
    await page.get_by_test_id("to").fill("2026-03-03")
    await page.get_by_test_id("apply").click()
    await expect(page.get_by_test_id("empty-intervals")).to_be_visible()
    await expect(page.get_by_test_id("empty-staffing")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/reports\?from=2026-03-03&to=2026-03-03"))

    assert console.errors == []  # no script error, nothing the CSP refused

    # A range the API refuses is said on the page, in the API's words.
    await page.get_by_test_id("from").fill("2026-03-05")
    await page.get_by_test_id("apply").click()
    await expect(page.get_by_test_id("report-error")).to_contain_text("before it starts")
    assert [e for e in console.errors if "400 (Bad Request)" not in e] == []
