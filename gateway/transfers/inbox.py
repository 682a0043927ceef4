"""Work the AMI read path hands to a background task, and stopping such tasks for sure.

A timeout (``asyncio.timeout``, or the one inside redis-py's calls) can turn a cancellation that
lands as it expires into a TimeoutError (Python 3.11); a loop that survives timeouts then never
stops, and the app's shutdown waits for it forever. ``Inbox.next`` waits with ``asyncio.wait``,
which leaves cancellations alone, and ``gateway.tasks.stop_if_cancelled`` ends a loop whose
cancellation some library swallowed.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[T] = asyncio.Queue()
        self._getter: asyncio.Task[T] | None = None

    def put(self, item: T) -> None:
        """From synchronous code (an AMI listener): never blocks."""
        self._queue.put_nowait(item)

    async def next(self, within_s: float) -> T | None:
        """The next item, or None after ``within_s`` seconds."""
        if self._getter is None:
            self._getter = asyncio.ensure_future(self._queue.get())
        try:
            done, _ = await asyncio.wait({self._getter}, timeout=max(0.0, within_s))
        except asyncio.CancelledError:
            self._getter.cancel()
            self._getter = None
            raise
        if not done:
            return None
        item = self._getter.result()
        self._getter = None
        return item
