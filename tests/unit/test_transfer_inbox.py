"""The services' background loops stop when cancelled, even if a library swallowed the cancellation."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from gateway.tasks import stop_if_cancelled
from gateway.transfers.inbox import Inbox


async def test_next_returns_items_in_order_or_none_after_the_wait() -> None:
    inbox: Inbox[int] = Inbox()
    assert await inbox.next(0.01) is None
    inbox.put(1)
    inbox.put(2)
    assert [await inbox.next(1.0), await inbox.next(1.0)] == [1, 2]


async def test_a_loop_whose_cancel_was_swallowed_still_stops() -> None:
    inbox: Inbox[int] = Inbox()
    turns = 0

    async def loop() -> None:
        nonlocal turns
        while True:
            stop_if_cancelled()
            turns += 1
            with contextlib.suppress(asyncio.CancelledError):  # what a careless library does
                await asyncio.sleep(0.01)
            await inbox.next(0.01)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)
    assert turns > 0
