"""The one way tests wait: poll a condition until it holds, never sleep for a margin."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def until(
    check: Callable[[], bool | Awaitable[bool]], what: str, *, within: float = 5.0, every: float = 0.01
) -> float:
    """Poll ``check`` (plain or async) until it is true; returns how long it took.

    Fails with an AssertionError naming ``what`` after ``within`` seconds.
    """
    began = time.monotonic()
    while True:
        held = check()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return time.monotonic() - began
        if time.monotonic() - began > within:
            raise AssertionError(f"{what}: not within {within:g} s")
        await asyncio.sleep(every)
