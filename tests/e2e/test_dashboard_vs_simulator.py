"""Issue 8's proof in a real headless Chromium: the page's figures equal the API's and the
simulator's own app_queue counters, and killing the PBX puts up the stale banner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from gateway.sim.people import CallerBehaviour
from gateway.sim.traffic import TrafficGenerator
from tests.browser.chromium import Console, launch, log_in, missing_chromium
from tests.e2e.conftest import Stack, StackOptions
from tests.support.polling import until

CALLS = 80


@pytest.fixture
def stack_options() -> StackOptions:
    """No traffic until the gateway and the page are up (the test starts its own, ``CALLS`` calls)."""
    return StackOptions(rate=0)


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    problem = missing_chromium()
    if problem:
        pytest.fail(problem)
    console = Console()
    async with async_playwright() as playwright:
        context = await launch(playwright, tmp_path / "profile")
        context.set_default_timeout(15_000)
        page = context.pages[0] if context.pages else await context.new_page()
        page.on("pageerror", console.on_page_error)
        yield page
        await context.close()
    assert console.errors == []


async def number(page: Page, selector: str) -> int:
    text = await page.locator(selector).inner_text()
    return int(text.replace(",", ""))


async def test_page_equals_api_and_simulator_then_shows_stale_banner(stack: Stack, page: Page) -> None:
    server = stack.client.server
    base = f"http://127.0.0.1:{server.port}"
    await log_in(page, base, stack.env["HOTLINE_SUPERVISOR_TOKENS"])
    # The rolling 24 h window, not "today": a run across midnight in Beijing (16:00 UTC) must not
    # start a new day half way through the calls it compares.
    await page.get_by_test_id("window-24h").click()
    # A fixed number of calls: the simulator offers them as fast as its time runs, whatever the load.
    # No callback key: app_queue counts the gateway's calls back as completed, the KPIs leave them out.
    options = StackOptions()
    traffic = TrafficGenerator(
        stack.sim, rate=options.rate, seed=12345, limit=CALLS,
        callers=CallerBehaviour(patience_mean_s=options.patience_mean_s, callback_rate=0.0),
    )  # fmt: skip
    traffic.start()

    await until(lambda: _placed(traffic), within=30, what=f"{CALLS} calls offered", every=0.1)
    await until(lambda: _idle(stack), within=60, what="every call ended", every=0.1)

    async def shown(name: str) -> dict[str, int]:
        card = f'[data-testid="queue-{name}"]'
        return {
            k: await number(page, f'{card} [data-testid="{k}"]') for k in ("offered", "answered", "abandoned")
        }

    async def page_caught_up() -> bool:
        # Each figure arrives with its own push: wait until the page shows every one of them. The
        # API is read again each time: the last calls' figures may land after the calls ended.
        api = {q["name"]: q["rates"]["24h"] for q in (await stack.get("/api/queues"))["queues"]}
        if await number(page, '[data-testid="overall-offered"]') != sum(r["offered"] for r in api.values()):
            return False
        for name in api:
            if await shown(name) != {k: api[name][k] for k in ("offered", "answered", "abandoned")}:
                return False
        return True

    await until(page_caught_up, within=10, what="the page shows the API's figures", every=0.1)
    for name, sim_queue in stack.sim.pbx.queues.queues.items():
        figures = await shown(name)
        assert (figures["answered"], figures["abandoned"]) == (
            sim_queue.completed,
            sim_queue.abandoned - sim_queue.timed_out,
        ), name

    await stack.sim.shutdown(restart=False)
    banner = page.get_by_test_id("link-banner")
    await banner.wait_for(state="visible")
    assert "Asterisk" in await banner.inner_text()


async def _placed(traffic: TrafficGenerator) -> bool:
    return not traffic.running and traffic.stats.offered == CALLS


async def _idle(stack: Stack) -> bool:
    return not stack.sim.pbx.channels and not stack.gateway.tracker.calls and stack.gateway.outputs.empty()
