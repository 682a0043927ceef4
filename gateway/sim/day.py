"""A day at the centre, for the demo: calls that follow the day, seats that follow their shifts.

``DayPlan`` owns the demo's clock and demand. Every simulated second is a Beijing moment (from
``start``; ``day_s`` simulated seconds make a day, 86,400 for real time, fewer to watch a day in
minutes; calls still last as long as real ones). Per half hour each queue is offered the calls its
rostered seats (the YAML's shifts) answer at the queue's service-level target, by Erlang C, times
the day's ``LOAD`` curve: 70-90 % of that most of the day, 104 % at the 09:00-10:30 morning peak,
where the staffing check (``gateway.reports.staffing``) duly reports the half hours short of
seats. A queue's calls are shared by the numbers routed to it (12345 itself takes most of the
general seats' calls, the merged numbers a little each); a queue with nobody on duty gets none.

``Shifts`` logs the roster's seats in and out of their queues as shifts start and end (a seat on a
call finishes it first) and sends idle seats on breaks with the YAML's ``workbench.pause_reasons``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.dialplan.routing import RoutingPlan
from gateway.merge.schema import HotlineConfig
from gateway.queues.stats import CHINA_TZ
from gateway.reports.aggregate import SLOT_MIN, SLOTS_PER_DAY, Cell, slot_label, slot_of
from gateway.reports.erlang import traffic_carried
from gateway.reports.staffing import SLOT_S, StaffingRow, on_duty, staffing
from gateway.sim.clock import Timer
from gateway.sim.people import SeatBehaviour

if TYPE_CHECKING:
    from gateway.sim.server import Simulator

DAY_S = 86_400


PEAK = 1.04  # the 09:00-10:30 peak: a little more than the seats answer at target


def _load_curve() -> tuple[float, ...]:
    """The share of the rostered seats' capacity offered per half hour: the shape of the day."""
    spans = [  # (from hour, to hour, load)
        (0, 7, 0.7), (7, 8, 0.75), (8, 9, 0.85), (9, 10.5, PEAK), (10.5, 12, 0.9),
        (12, 13.5, 0.7), (13.5, 17, 0.85), (17, 22, 0.8), (22, 24, 0.7),
    ]  # fmt: skip
    return tuple(
        next(load for first, last, load in spans if first * 60 <= slot * SLOT_MIN < last * 60)
        for slot in range(SLOTS_PER_DAY)
    )


LOAD = _load_curve()
HOTLINE_SHARE = 0.8  # of the general seats' calls: 12345 itself; the merged numbers share the rest


def handling_s(config: HotlineConfig, queue: str, seats: SeatBehaviour) -> float:
    """A call's average handling time in the simulator: ringing, talking, the queue's wrap-up."""
    ring = (seats.ring_min_s + seats.ring_max_s) / 2
    return ring + seats.talk_mean_s + config.queue(queue).wrapup_s


@dataclass
class DayPlan:
    config: HotlineConfig
    routing: RoutingPlan
    start: dt.datetime  # the Beijing moment at simulated time ``t0``
    t0: float = 0.0
    day_s: float = DAY_S  # simulated seconds per day
    load: float = 1.0  # times LOAD
    seats: SeatBehaviour = field(default_factory=SeatBehaviour)
    _cache: dict[tuple[dt.date, int], dict[str, float]] = field(default_factory=dict, repr=False)

    def moment(self, now: float) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(now - self.t0) * DAY_S / self.day_s)

    def sim_seconds(self, day_seconds: float) -> float:
        """How many simulated seconds ``day_seconds`` of the demo's day take."""
        return day_seconds * self.day_s / DAY_S

    def queue_rates(self, day: dt.date, slot: int) -> dict[str, float]:
        """Calls per second offered to each queue in the half hour (Erlang C on its rostered seats)."""
        key = (day, slot)
        if key not in self._cache:
            rates = {}
            called = {route.queue for route in self.routing.routes.values()}
            for queue in (q for q in self.config.queues if q.name in called):
                duty = on_duty(queue, day, slot)
                aht = handling_s(self.config, queue.name, self.seats)
                goal = queue.service_level_target_pct / 100
                carried = traffic_carried(duty, aht, queue.service_level_s, goal) if duty else 0.0
                rates[queue.name] = carried / aht * LOAD[slot] * self.load
            self._cache = {key: rates}  # one half hour at a time
        return self._cache[key]

    def demand(self, now: float) -> dict[str, float]:
        """Calls per simulated second by dialled number, at simulated time ``now``."""
        return self.line_rates(*slot_of(self.moment(now)))

    def line_rates(self, day: dt.date, slot: int) -> dict[str, float]:
        queues = self.queue_rates(day, slot)
        general = self.config.general_queue.name
        by_queue: dict[str, list[str]] = {}
        for number, route in self.routing.routes.items():
            by_queue.setdefault(route.queue, []).append(number)
        rates: dict[str, float] = {}
        for queue, numbers in by_queue.items():
            rate = queues.get(queue, 0.0)
            if queue == general and self.routing.hotline_number in numbers and len(numbers) > 1:
                others = [n for n in numbers if n != self.routing.hotline_number]
                rates[self.routing.hotline_number] = rate * HOTLINE_SHARE
                rates.update(dict.fromkeys(others, rate * (1 - HOTLINE_SHARE) / len(others)))
            else:
                rates.update(dict.fromkeys(numbers, rate / len(numbers)))
        return rates

    def staffing_check(self, day: dt.date) -> list[StaffingRow]:
        """The reports' staffing check on this day's demand, as if it had been measured."""
        cells: dict[Cell, Counter[str]] = {}
        for slot in range(SLOTS_PER_DAY):
            for name, rate in self.queue_rates(day, slot).items():
                offered = round(rate * SLOT_S)
                if offered:
                    work_ms = round(offered * handling_s(self.config, name, self.seats) * 1000)
                    cells[Cell(day, slot, f"queue:{name}")] = Counter(
                        offered=offered, answered=offered, talk_ms=work_ms
                    )
        return staffing(cells, self.config)


def summary(rows: list[StaffingRow]) -> str:
    """What the staffing check says of the demo's day, a line per queue short of seats."""
    halves = {(r.day, r.slot) for r in rows}
    short = [r for r in rows if r.understaffed]
    lines = [
        f"Erlang C (the staffing check) on the demo's day: {len(halves) - len({(r.day, r.slot) for r in short})} "
        f"of {len(halves)} half hours meet every queue's service-level target with the rostered seats"
    ]
    for queue in sorted({r.queue for r in short}):
        mine = [r for r in short if r.queue == queue]
        lines.append(
            f"  {queue} short at {', '.join(slot_label(r.slot) for r in mine)}: up to "
            f"{max(r.needed for r in mine)} seats needed, {min(r.on_duty for r in mine)} on duty, "
            f"predicted service level down to {min(r.service_level_on_duty for r in mine):.0%}"
        )
    return "\n".join(lines)


@dataclass
class _Break:
    until: float  # simulated seconds


class Shifts:
    """The roster's seats follow their shifts and take breaks, on the simulator's clock."""

    def __init__(
        self, sim: Simulator, day: DayPlan, *, seed: int | None = None, check_s: float = 5.0
    ) -> None:
        self.sim = sim
        self.day = day
        self.rng = random.Random(seed)
        self.check_s = check_s
        self.breaks: dict[str, _Break] = {}  # by interface
        self._timer: Timer | None = None
        # Seats by the queue whose shifts they work (their first), in roster order.
        self.groups: dict[str, list[str]] = {}
        for seat in sorted(day.routing.seats.values(), key=lambda s: s.extension):
            self.groups.setdefault(seat.queues[0], []).append(seat.extension)

    def start(self) -> None:
        self._check()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = self.sim.clock.call_later(self.check_s, self._check)
        if not self.sim.running:
            return
        pbx = self.sim.pbx
        pbx.run(self._follow_roster)

    def _follow_roster(self) -> None:
        now = self.sim.clock.now()
        day, slot = slot_of(self.day.moment(now))
        for queue_name, extensions in self.groups.items():
            wanted = min(on_duty(self.day.config.queue(queue_name), day, slot), len(extensions))
            seats = [self.day.routing.seats[e] for e in extensions]
            present = [s for s in seats if self._member(queue_name, s.interface)]
            for seat in reversed(present[wanted:]):  # the last of the roster leave first
                if self._idle(seat.interface):
                    for queue in seat.queues:
                        self._remove(queue, seat.interface)
                    self.breaks.pop(seat.interface, None)
            for seat in [s for s in seats if s not in present][: max(0, wanted - len(present))]:
                for queue in seat.queues:
                    if not self._member(queue, seat.interface):
                        self.sim.pbx.queues.add_member(
                            queue, seat.interface, penalty=seat.penalty, name=seat.name
                        )
            for seat in present[:wanted]:
                self._take_a_break(seat.interface, now)

    def _take_a_break(self, interface: str, now: float) -> None:
        """About one break per seat every two hours of the day, 5 to 15 minutes, when idle."""
        queues = self.sim.pbx.queues
        taken = self.breaks.get(interface)
        if taken is not None:
            if now >= taken.until:
                del self.breaks[interface]
                queues.pause("", interface, False)
            return
        chance = self.check_s / self.day.sim_seconds(2 * 3600)
        if self.rng.random() < chance and self._idle(interface):
            until = now + self.day.sim_seconds(self.rng.uniform(300, 900))
            self.breaks[interface] = _Break(until)
            queues.pause("", interface, True, self.rng.choice(self.day.config.workbench.pause_reasons))

    def _member(self, queue: str, interface: str) -> bool:
        found = self.sim.pbx.queues.queues.get(queue)
        return found is not None and found.member(interface) is not None

    def _idle(self, interface: str) -> bool:
        members = self.sim.pbx.queues.memberships(interface)
        return not any(m.in_call or m.reserved is not None for m in members)

    def _remove(self, queue: str, interface: str) -> None:
        if self._member(queue, interface):
            self.sim.pbx.queues.remove_member(queue, interface)


def start_of(moment: dt.datetime | None, hhmm: str | None) -> dt.datetime:
    """The demo's first moment: today (Beijing) at ``hhmm``, or ``moment`` itself."""
    now = (moment or dt.datetime.now(dt.UTC)).astimezone(CHINA_TZ)
    if hhmm is None:
        return now
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
