"""Erlang C (M/M/n, callers wait, nobody gives up): probability of waiting, service level, seats.

``traffic`` is the offered load in Erlangs (arrivals per second x average handling time in
seconds). The probability of waiting goes through Erlang B's recursion, which stays stable for
thousands of seats where the textbook factorials overflow:
B(0) = 1, B(k) = A·B(k-1) / (k + A·B(k-1)); C(n) = n·B(n) / (n - A·(1 - B(n))).
Service level within t seconds: 1 - C(n)·exp(-(n - A)·t / AHT). With abandonment (which a real
centre has) Erlang C errs on the safe side: it asks for a few seats too many, never too few.
"""

from __future__ import annotations

import math

MAX_SEATS = 10_000


def probability_of_waiting(seats: int, traffic: float) -> float:
    """C(n, A): the share of callers who wait at all; 1.0 when the seats cannot carry the load."""
    if traffic <= 0:
        return 0.0
    if seats <= traffic:
        return 1.0
    blocking = 1.0
    for k in range(1, seats + 1):
        blocking = traffic * blocking / (k + traffic * blocking)
    return seats * blocking / (seats - traffic * (1 - blocking))


def service_level(seats: int, traffic: float, handling_s: float, target_s: float) -> float:
    """The share of callers answered within ``target_s``."""
    if traffic <= 0:
        return 1.0
    if seats <= traffic:
        return 0.0
    waiting = probability_of_waiting(seats, traffic)
    return 1 - waiting * math.exp(-(seats - traffic) * target_s / handling_s)


def average_speed_of_answer(seats: int, traffic: float, handling_s: float) -> float:
    """ASA in seconds over all callers (those answered at once count as zero)."""
    if traffic <= 0:
        return 0.0
    if seats <= traffic:
        return math.inf
    return probability_of_waiting(seats, traffic) * handling_s / (seats - traffic)


def seats_needed(traffic: float, handling_s: float, target_s: float, goal: float) -> int:
    """The fewest seats whose service level within ``target_s`` reaches ``goal`` (0 to 1)."""
    if traffic <= 0:
        return 0
    seats = max(1, math.floor(traffic) + 1)
    while service_level(seats, traffic, handling_s, target_s) < goal:
        seats += 1
        if seats > MAX_SEATS:
            raise ValueError(f"more than {MAX_SEATS} seats for {traffic:.1f} Erlangs")
    return seats


def traffic_carried(seats: int, handling_s: float, target_s: float, goal: float) -> float:
    """The most Erlangs ``seats`` carry at ``goal`` within ``target_s``: the inverse of
    ``seats_needed`` (``seats_needed`` of the result is ``seats``, or fewer), to 0.01 Erlang."""
    low, high = 0.0, float(seats)
    while high - low > 0.005:
        middle = (low + high) / 2
        if service_level(seats, middle, handling_s, target_s) >= goal:
            low = middle
        else:
            high = middle
    return low
