"""Background tasks: named, logged when they crash, and cancelled with a deadline at shutdown.

A timeout inside a library call (redis-py's socket timeout, ``asyncio.timeout``) can turn a
cancellation that lands as it expires into a TimeoutError, an OSError that a loop surviving Redis
outages catches: such a loop calls ``stop_if_cancelled`` each round, or it never stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog

log = structlog.get_logger(__name__)

STOP_TASKS_S = 3.0


def start_task(work: Awaitable[None], name: str) -> asyncio.Task[None]:
    async def guarded() -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task.crashed", task=name)
            raise

    return asyncio.get_running_loop().create_task(guarded(), name=name)


async def cancel_tasks(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    # A task stuck in a library call must not keep a stopping gateway alive (SIGTERM has a deadline).
    _, stuck = await asyncio.wait(tasks, timeout=STOP_TASKS_S) if tasks else (set(), set())
    for task in stuck:
        log.warning("task.stuck_at_shutdown", task=task.get_name())


def stop_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop, even if something swallowed the request."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
