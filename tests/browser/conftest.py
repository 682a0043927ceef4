"""Fixtures for the dashboard in a real headless Chromium: a hub, its server on loopback, a page.

A missing Chromium fails the tests (it never skips them): CI installs Debian's package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from playwright.async_api import Page

from gateway.web.live import LiveHub
from tests.browser.chromium import Console, missing_chromium, open_page
from tests.browser.scene import make_app


@pytest.fixture
def hub() -> LiveHub:
    return LiveHub()


@pytest.fixture
async def server(hub: LiveHub, redis_client: aioredis.Redis) -> AsyncIterator[TestServer]:
    server = TestServer(make_app(hub, redis_client), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()  # a no-op when the test stopped it already


@pytest.fixture
def base_url(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
async def page(tmp_path: Path, console: Console) -> AsyncIterator[Page]:
    problem = missing_chromium()
    if problem:
        pytest.fail(problem)
    async with open_page(tmp_path / "chromium-profile", console) as opened:
        yield opened
