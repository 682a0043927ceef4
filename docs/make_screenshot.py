"""Render docs/dashboard.png and docs/reports.png from the demo, in headless Chromium.

Starts ``hotline-gateway demo`` (everything on 127.0.0.1; its day from now, Beijing time, in real
time, so that the reports' half hours and the shifts on duty are the demo's), lets it run ``--minutes``, logs in through the form, saves the dashboard (today's
window) and then the reports page of today, with what the demo's calls and the order system's
feedback put there, and stops the demo. Run from the repository root:

    .venv/bin/python docs/make_screenshot.py [--minutes 6] [--out docs]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the browser helpers live with the browser tests

from playwright.async_api import async_playwright  # noqa: E402

from gateway.localredis import free_port  # noqa: E402
from tests.browser.chromium import launch, log_in, missing_chromium  # noqa: E402

TOKEN = "screenshot-token"


def ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def offered_today(base: str) -> int:
    request = urllib.request.Request(f"{base}/api/queues", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return int(json.loads(answer.read())["overall"]["today"]["offered"])


async def shoot(base: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="hotline-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await launch(playwright, Path(profile))
            page = context.pages[0] if context.pages else await context.new_page()
            await log_in(page, base, TOKEN)
            await page.get_by_test_id("window-today").click()
            await page.get_by_test_id("queue-hotline-general").wait_for()
            await page.screenshot(path=out / "dashboard.png", full_page=True)
            await page.goto(f"{base}/reports")
            await page.wait_for_selector('body[data-loaded="true"]')
            await page.screenshot(path=out / "reports.png", full_page=True)
            await context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="docs/dashboard.png and docs/reports.png from the demo")
    parser.add_argument(
        "--start",
        default=None,
        help="Beijing time of day the demo's day starts at (default: now, as the reports' clock)",
    )
    parser.add_argument("--minutes", type=float, default=6.0, help="how long the demo runs first")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    problem = missing_chromium()
    if problem:
        sys.exit(problem)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_SUPERVISOR_TOKENS"] = TOKEN
    command = [sys.executable, "-m", "gateway.cli", "demo", "--http-port", str(port), "--seed", "16"]
    demo = subprocess.Popen(
        command + (["--start", args.start] if args.start else []),
        cwd=ROOT,
        env=env,
    )
    try:
        while not ready(base):
            if demo.poll() is not None:
                sys.exit("the demo stopped before it was ready")
            time.sleep(1)
        time.sleep(args.minutes * 60)  # a picture of the demo after this long, not a test
        print(f"{offered_today(base)} calls offered so far; taking the screenshots", flush=True)
        asyncio.run(shoot(base, args.out))
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    print(f"wrote {args.out / 'dashboard.png'} and {args.out / 'reports.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
