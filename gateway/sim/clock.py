"""Simulated time for the embedded PBX: one timer heap, driven by the event loop or by a test.

Every delay in the simulator (ringing, talking, waiting, announcements, the failed-login pause) is
a timer on this clock, so one knob decides how fast the whole PBX runs:

- real mode: ``time_scale`` real seconds per simulated second (1.0 for the demo, 0.05 in tests);
  a single ``loop.call_at`` handle is armed for the earliest timer, however many calls are up;
- manual mode: time stands still until a test calls ``advance``; conformance tests use it to
  replay a recorded trace deterministically;
- ``hold``/``resume`` stop real-mode time at a chosen moment (e.g. when a phone is dialled) and let
  it go on later, so a test can act between two simulated moments however busy the machine is.

A timer callback runs inside the event loop's callback handler, which logs and drops whatever it
raises. The clock keeps running after an error, and a BaseException that is not an Exception (a
pytest timeout's ``Failed``, raised by a signal handler in whatever frame is running) leaves the
loop as SystemExit, the one kind the loop lets through, so the test fails instead of hanging on.

Wall-clock values (Uniqueids, Timestamps) come from ``wall()``: the start epoch plus simulated time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any


class Timer:
    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimClock:
    """Simulated seconds since ``start``; timers fire in deadline order (FIFO for equal deadlines)."""

    def __init__(self, *, time_scale: float = 1.0, manual: bool = False, epoch: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self.manual = manual
        self.epoch = time.time() if epoch is None else epoch
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._now = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._origin = 0.0  # loop.time() at simulated 0.0 (real mode)
        self._armed: asyncio.TimerHandle | None = None
        self._armed_for = float("inf")
        self._running = False
        self._held = False
        self._in_run = False  # timers added while running due ones are armed once, afterwards

    # -- time -------------------------------------------------------------------------------
    def now(self) -> float:
        if self.manual or self._loop is None or self._held:
            return self._now
        return max(self._now, (self._loop.time() - self._origin) / self.time_scale)

    def wall(self) -> float:
        return self.epoch + self.now()

    def real_seconds(self, simulated: float) -> float:
        return simulated * self.time_scale

    # -- timers -----------------------------------------------------------------------------
    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> Timer:
        timer = Timer(when, callback, args)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        if not self.manual and not self._in_run and self._loop is not None and when < self._armed_for:
            self._arm()
        return timer

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
        return self.call_at(self.now() + max(delay, 0.0), callback, *args)

    def clear(self) -> None:
        """Drop every timer (a PBX restart loses all state)."""
        self._heap.clear()

    # -- drivers ----------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._origin = self._loop.time() - self._now * self.time_scale
        self._running = True
        if not self.manual:
            self._arm()

    def stop(self) -> None:
        self._running = False
        if self._armed is not None:
            self._armed.cancel()
        self._armed, self._armed_for = None, float("inf")

    def hold(self) -> None:
        """Real mode: simulated time stands still (no timer fires) until ``resume``."""
        self._now = self.now()
        self._held = True
        self.stop()

    def resume(self) -> None:
        if self._held:
            self._held = False
            self.start(self._loop)

    def advance(self, seconds: float) -> None:
        """Manual mode: run every timer due within ``seconds`` of simulated time, in order."""
        if not self.manual:
            raise RuntimeError("advance() is for a manual clock")
        self._run_until(self._now + seconds)

    def advance_to(self, when: float) -> None:
        if when > self._now:
            self.advance(when - self._now)

    def catch_up(self) -> None:
        """Real mode: run every timer due by now at once, not when the loop gets to its handle.

        The AMI server calls it before it reads actions, so on a late loop an action's answer
        still follows every event of the moments before it, as with Asterisk (a client's Ping
        is then a barrier: see ``gateway.transfers.service``). An error in a timer goes to the
        loop's exception handler, as when the loop runs the timer, never to the caller.
        """
        if self.manual or self._in_run or not self._running or self._loop is None:
            return
        if not self._heap or self._heap[0][0] > self.now():
            return
        if self._armed is not None:
            self._armed.cancel()
        try:
            self._wake()
        except Exception as exc:
            self._loop.call_exception_handler({"message": "error in a simulator timer", "exception": exc})

    def _run_until(self, target: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= target and not self._held:  # a timer may hold the clock
            when, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            if when > self._now:
                self._now = when
            timer.callback(*timer.args)
        if target > self._now and not self._held:
            self._now = target

    def _arm(self) -> None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        if self._armed is not None:
            self._armed.cancel()
            self._armed, self._armed_for = None, float("inf")
        if not heap or self._loop is None or not self._running:
            return
        when = heap[0][0]
        self._armed_for = when
        self._armed = self._loop.call_at(self._origin + when * self.time_scale, self._wake)

    def _wake(self) -> None:
        self._armed, self._armed_for = None, float("inf")
        self._in_run = True
        try:
            self._run_until(self.now())
        except Exception:
            raise  # logged by the loop; the finally below keeps the clock going
        except BaseException as exc:
            raise SystemExit(f"{exc!r} in a simulator timer") from exc
        finally:
            self._in_run = False
            self._arm()
