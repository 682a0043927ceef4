"""Render docs/workbench.png: seat 1001's workbench during a call in the demo, in headless Chromium.

Runs the demo in this process (``gateway.demo.demo_stack``: Redis, the order sink, the simulator
with traffic, the gateway, all on 127.0.0.1), waits until seat 1001 is talking to a caller, logs
in with 1001's own token, types a work-order draft and saves a screenshot at 1920x1080. Run from
the repository root:

    .venv/bin/python docs/make_workbench_screenshot.py [OUT.png]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the browser helpers live with the tests

import aiohttp  # noqa: E402
from playwright.async_api import async_playwright, expect  # noqa: E402

from gateway.demo import demo_stack  # noqa: E402
from gateway.localredis import free_port  # noqa: E402
from tests.browser.chromium import launch, log_in_seat, missing_chromium  # noqa: E402
from tests.support.seats import bearer, seat_token  # noqa: E402


async def talking(url: str, env: dict[str, str], seat: str) -> None:
    """Until the seat is talking to a caller (the demo's traffic reaches every seat soon)."""
    async with aiohttp.ClientSession(headers=bearer(env, "supervisor")) as session:
        for _ in range(600):
            async with session.get(f"{url}/api/agents") as answer:
                agents = (await answer.json())["agents"]
            if any(a["id"] == seat and a["state"] == "on_call" for a in agents):
                return
            await asyncio.sleep(0.5)
    raise TimeoutError(f"seat {seat} took no call in 5 minutes of demo traffic")


async def main(out: Path) -> None:
    args = argparse.Namespace(
        config=ROOT / "hotline_merge.yaml", http_port=free_port(), rate=2.0, seed=7, duration=None, data=None
    )
    async with demo_stack(args) as (url, env):
        with tempfile.TemporaryDirectory(prefix="hotline-chromium-") as profile:
            async with async_playwright() as playwright:
                context = await launch(playwright, Path(profile))
                page = context.pages[0] if context.pages else await context.new_page()
                await log_in_seat(page, url, seat_token(env, "1001"))
                await talking(url, env, "1001")
                await expect(page.get_by_test_id("pop")).to_have_attribute("data-phase", "talking")
                await expect(page.get_by_test_id("history-state")).not_to_have_text("查询中…")
                await page.get_by_test_id("draft-summary").fill(
                    "市民反映小区门口餐馆油烟扰民，晚间尤甚，希望相关部门尽快处理。"
                )
                await page.get_by_test_id("handling-dispatch").check()
                await expect(page.get_by_test_id("draft-status")).to_contain_text("已保存")
                await page.screenshot(path=out)
                await context.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    problem = missing_chromium()
    if problem:
        sys.exit(problem)
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "workbench.png"))
