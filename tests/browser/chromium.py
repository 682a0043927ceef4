"""Debian's Chromium driven by Playwright: never a downloaded browser, never the network.

Shared by the browser tests and ``docs/make_screenshot.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import BrowserContext, ConsoleMessage, Error, Page, Playwright, async_playwright

CHROMIUM = Path(os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WALL_SCREEN = {"width": 1920, "height": 1080}


def missing_chromium() -> str | None:
    """Why the browser cannot run here, or None."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return None
    return (
        f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium) or set "
        "HOTLINE_CHROMIUM; the dashboard tests never download a browser"
    )


async def launch(
    playwright: Playwright, profile: Path, viewport: dict[str, int] = WALL_SCREEN
) -> BrowserContext:
    """A fresh profile in ``profile`` (an empty directory), so no state leaks between runs."""
    return await playwright.chromium.launch_persistent_context(
        profile,
        executable_path=CHROMIUM,
        headless=True,
        args=ARGS,
        viewport={"width": viewport["width"], "height": viewport["height"]},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )


async def log_in(page: Page, base_url: str, token: str) -> None:
    """Open the dashboard, get sent to the login form, fill it in, and land on the dashboard."""
    await page.goto(f"{base_url}/dashboard")
    await page.wait_for_url(f"{base_url}/login")
    await page.get_by_test_id("token").fill(token)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(re.escape(base_url) + r"/dashboard(#.*)?$"))  # #window is the page's


@contextlib.asynccontextmanager
async def open_page(profile: Path, console: Console, timeout_ms: float = 10_000) -> AsyncIterator[Page]:
    """One page of a fresh Chromium whose complaints go to ``console``; the browser ends on exit."""
    async with async_playwright() as playwright:
        context = await launch(playwright, profile)
        context.set_default_timeout(timeout_ms)
        page = context.pages[0] if context.pages else await context.new_page()
        page.on("console", console.on_message)
        page.on("pageerror", console.on_page_error)
        try:
            yield page
        finally:
            await context.close()


async def log_in_seat(page: Page, base_url: str, token: str) -> None:
    """Log in with a seat's own token: a seat lands on its workbench (/seat)."""
    await page.goto(f"{base_url}/login")
    await page.get_by_test_id("token").fill(token)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(re.escape(base_url) + r"/seat$"))


class Console:
    """What the page complained about: script errors, CSP refusals, failed requests."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def on_page_error(self, error: Error) -> None:
        self.errors.append(f"{error.name}: {error.message}")
