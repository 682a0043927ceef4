"""Render docs/dashboard.png: the dashboard on a busy weekday afternoon, in headless Chromium.

Serves the dashboard on 127.0.0.1 with the test scene (the shipped hotline_merge.yaml, a KpiBook
filled with a deterministic day of calls, seats in every state), logs in through the form and
saves a full-page screenshot. Run from the repository root:

    .venv/bin/python docs/make_screenshot.py [OUT.png]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the scene lives with the browser tests

from aiohttp.test_utils import TestServer  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402

from gateway.web.live import LiveHub  # noqa: E402
from tests.browser.chromium import launch, log_in, missing_chromium  # noqa: E402
from tests.browser.scene import SUPERVISOR_TOKEN, busy_floor, make_app  # noqa: E402


async def main(out: Path) -> None:
    hub = LiveHub()
    floor = busy_floor()
    server = TestServer(make_app(hub), host="127.0.0.1")
    await server.start_server()
    try:
        hub.publish(floor.snapshot())
        base = str(server.make_url("")).rstrip("/")
        with tempfile.TemporaryDirectory(prefix="hotline-chromium-") as profile:
            async with async_playwright() as playwright:
                context = await launch(playwright, Path(profile))
                page = context.pages[0] if context.pages else await context.new_page()
                await log_in(page, base, SUPERVISOR_TOKEN)
                await page.get_by_test_id("window-today").click()
                await page.get_by_test_id("queue-hotline-general").wait_for()
                await page.screenshot(path=out, full_page=True)
                await context.close()
    finally:
        await server.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    problem = missing_chromium()
    if problem:
        sys.exit(problem)
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "dashboard.png"))
