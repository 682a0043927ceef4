"""Reconnect delays grow exponentially, stay within the jitter band and the cap, and reset."""

from __future__ import annotations

import pytest

from gateway.ami.backoff import Backoff


def test_delays_double_up_to_the_cap_without_jitter() -> None:
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.75), (0.5, 1.0), (1.0, 1.25)])
def test_jitter_spreads_each_delay_within_its_band(draw: float, factor: float) -> None:
    backoff = Backoff(1.0, 100.0, jitter=0.25, rng=lambda: draw)
    assert [backoff.next() for _ in range(3)] == pytest.approx([1.0 * factor, 2.0 * factor, 4.0 * factor])


def test_jitter_never_exceeds_the_cap() -> None:
    backoff = Backoff(1.0, 2.0, jitter=0.25, rng=lambda: 1.0)
    assert max(backoff.next() for _ in range(5)) == 2.0


def test_reset_after_a_good_session_starts_small_again() -> None:
    backoff = Backoff(0.5, 30.0, jitter=0.0)
    for _ in range(10):
        backoff.next()
    backoff.reset()
    assert backoff.next() == 0.5


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="0 < initial <= maximum"):
        Backoff(5.0, 1.0)
