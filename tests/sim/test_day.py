"""The demo's day: demand sized to the roster by Erlang C, shared over the numbers, on its clock."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.dialplan.routing import build_routing
from gateway.merge.loader import load_config
from gateway.queues.stats import CHINA_TZ
from gateway.reports.staffing import on_duty
from gateway.sim.day import HOTLINE_SHARE, DayPlan, summary
from tests.conftest import ROOT

WEDNESDAY = dt.date(2026, 12, 2)
SATURDAY = dt.date(2026, 12, 5)


@pytest.fixture(scope="module")
def day() -> DayPlan:
    config = load_config(ROOT / "hotline_merge.yaml")
    start = dt.datetime.combine(WEDNESDAY, dt.time(0), CHINA_TZ)
    return DayPlan(config, build_routing(config), start, t0=1000.0, day_s=1440.0)


def test_most_half_hours_meet_the_target_and_the_morning_peak_strains_it(day: DayPlan) -> None:
    rows = day.staffing_check(WEDNESDAY)
    short = sorted({r.slot for r in rows if r.understaffed})
    assert short == [18, 19, 20]  # 09:00-10:30, and nothing else of the 48
    assert {r.slot for r in rows} == set(range(48))
    general = [r for r in rows if r.queue == "hotline-general" and r.slot in short]
    assert all(0.5 < r.service_level_on_duty < 0.8 for r in general)  # strained, not collapsed
    assert "45 of 48 half hours" in summary(rows)
    offered = sum(r.offered for r in rows)
    assert 15_000 < offered < 25_000  # a city centre's day for this roster


def test_each_number_gets_its_share_of_its_queue(day: DayPlan) -> None:
    queues, lines = day.queue_rates(WEDNESDAY, 22), day.line_rates(WEDNESDAY, 22)
    assert lines["12345"] == pytest.approx(queues["hotline-general"] * HOTLINE_SHARE)
    assert lines["12366"] == pytest.approx(queues["subcenter-tax"])  # the sub-centre's own number
    assert lines["12320"] == pytest.approx(lines["12356"])  # two numbers, one department queue
    assert sum(lines.values()) == pytest.approx(sum(queues.values()))
    assert "policy-specialist" not in queues  # nobody dials it: hand-overs only


def test_a_queue_with_nobody_on_duty_gets_no_calls(day: DayPlan) -> None:
    hrss = day.config.queue("expert-hrss")
    assert on_duty(hrss, SATURDAY, 22) == 0
    assert day.line_rates(SATURDAY, 22)["12333"] == 0
    assert day.line_rates(WEDNESDAY, 22)["12333"] > 0


def test_the_clock_runs_a_day_in_day_s(day: DayPlan) -> None:
    assert day.moment(1000.0 + 720.0) == dt.datetime.combine(WEDNESDAY, dt.time(12), CHINA_TZ)
    assert day.sim_seconds(3600) == 60.0
    assert day.demand(1000.0 + 570.0) == day.line_rates(WEDNESDAY, 19)  # 09:30
