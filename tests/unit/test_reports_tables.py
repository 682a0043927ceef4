"""Report tables from known counts: figures and denominators, rosters, the staffing check, the
monthly ranking, and the CSV and XLSX exports read back cell by cell."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter

import pytest
from openpyxl import load_workbook

from gateway.merge.loader import load_config
from gateway.merge.schema import HotlineConfig
from gateway.records.model import CallRecord
from gateway.reports.aggregate import ALL, Cell, ReportRangeError, check_range, contribution
from gateway.reports.export import to_csv, to_xlsx
from gateway.reports.staffing import format_rows, on_duty, staffing
from gateway.reports.tables import (
    Roster,
    figures,
    interval_table,
    ranking_table,
    scope_names,
    scope_table,
    staffing_table,
)
from tests.conftest import ROOT
from tests.support.report_calls import beijing, call

MONDAY = dt.date(2026, 3, 2)
SATURDAY = dt.date(2026, 3, 7)


@pytest.fixture(scope="module")
def config() -> HotlineConfig:
    return load_config(ROOT / "hotline_merge.yaml")


def test_figures_state_their_denominators() -> None:
    counts = Counter(
        offered=10, answered=8, answered_in_sl=6, abandoned=2, short_abandoned=1, wait_answered_ms=80_000,
        talk_ms=800_000, hold_ms=40_000, wrapup_ms=160_000, wrapups=8, handover_blind=1,
    )  # fmt: skip
    got = figures(counts, rostered_s=4 * 1800)
    assert got["response_rate"] == 0.8  # ÷ offered
    assert got["sl_of_offered"] == 0.6
    assert got["sl_of_answered"] == 0.75
    assert (got["asa_s"], got["avg_talk_s"], got["avg_wrapup_s"]) == (10.0, 100.0, 20.0)
    assert got["occupancy"] == round(1000 / 7200, 4)  # (talk + hold + wrap-up) ÷ rostered seat time
    assert (got["abandoned"], got["short_abandoned"], got["handover_blind"]) == (2, 1, 1)
    empty = figures(Counter(), rostered_s=None)
    assert empty["response_rate"] is None
    assert empty["asa_s"] is None
    assert empty["occupancy"] is None


def test_rosters_follow_weekdays_and_shifts_past_midnight(config: HotlineConfig) -> None:
    general, hrss, tax = (config.queue(n) for n in ("hotline-general", "expert-hrss", "subcenter-tax"))
    assert on_duty(general, MONDAY, 47) == 40  # 中班 16:00-24:00
    assert on_duty(general, MONDAY, 0) == 12  # 夜班 00:00-08:00
    assert on_duty(general, MONDAY, 16) == 60  # 08:00 早班 starts
    assert on_duty(hrss, MONDAY, 16) == 0  # 08:30-17:30 on weekdays
    assert on_duty(hrss, MONDAY, 17) == 8
    assert on_duty(hrss, MONDAY, 34) == 8  # 17:00-17:30 is the last slot
    assert on_duty(hrss, MONDAY, 35) == 0
    assert on_duty(hrss, SATURDAY, 20) == 0
    assert on_duty(tax, MONDAY, 4) == 3  # 夜班 20:00-08:00 began on Sunday
    assert on_duty(tax, MONDAY, 40) == 3
    assert on_duty(tax, MONDAY, 39) == 20
    roster = Roster(config)
    assert roster.seconds("queue:expert-hrss", MONDAY, 20) == 8 * 1800
    assert roster.seconds("line:12315", MONDAY, 20) is None
    assert roster.over("queue:expert-hrss", [MONDAY, SATURDAY]) == 18 * 8 * 1800


def test_ranges_are_checked() -> None:
    check_range(MONDAY, MONDAY)
    with pytest.raises(ReportRangeError, match="before it starts"):
        check_range(MONDAY, MONDAY - dt.timedelta(days=1))
    with pytest.raises(ReportRangeError, match="at most 92 days"):
        check_range(MONDAY, MONDAY + dt.timedelta(days=92))


def _cells(*records: CallRecord) -> dict[Cell, Counter[str]]:
    cells: dict[Cell, Counter[str]] = {}
    for record in records:
        for cell, counts in contribution(record, {}).items():
            cells.setdefault(cell, Counter()).update(counts)
    return cells


def test_interval_and_scope_tables(config: HotlineConfig) -> None:
    cells = _cells(
        call(beijing(2026, 3, 2, 9, 0), linkedid="a.1", wait_s=10),
        call(beijing(2026, 3, 2, 9, 10), linkedid="a.2", wait_s=20),
        call(beijing(2026, 3, 2, 9, 40), linkedid="a.3", wait_s=3, answered=False),
        call(
            beijing(2026, 3, 2, 9, 45),
            linkedid="a.4",
            line="12366",
            department="税务局",
            queues=("subcenter-tax",),
        ),
    )
    roster, names = Roster(config), scope_names(config)
    intervals = interval_table(cells, ALL, roster)
    assert [(r["date"], r["interval"], r["offered"], r["answered"]) for r in intervals.rows] == [
        ("2026-03-02", "09:00-09:30", 2, 2),
        ("2026-03-02", "09:30-10:00", 2, 1),
    ]
    first, second = intervals.rows
    assert (first["sl_of_offered"], first["sl_of_answered"], first["asa_s"]) == (0.5, 0.5, 15.0)
    assert (second["abandoned"], second["short_abandoned"], second["response_rate"]) == (1, 1, 0.5)
    # Monday 09:00: 60 general, 12 market, 8 hrss, 6 health, 5 + 5 fund and insurance, 20 tax, 4 policy
    assert roster.seconds(ALL, MONDAY, 18) == 120 * 1800
    assert first["occupancy"] == round((2 * 100 + 2 * 30) / (120 * 1800), 4)
    lines = scope_table(cells, "line", names, roster, [MONDAY])
    assert [(r["scope"], r["offered"]) for r in lines.rows] == [
        ("12315 消费投诉举报", 3),
        ("12366 纳税服务", 1),
    ]
    assert lines.rows[0]["occupancy"] is None  # seats are not rostered per line
    departments = scope_table(cells, "dept", names, roster, [MONDAY])
    assert [r["scope"] for r in departments.rows] == ["市场监督管理局", "税务局"]
    queues = scope_table(cells, "queue", names, roster, [MONDAY])
    assert [(r["scope"], r["offered"]) for r in queues.rows] == [
        ("12345综合坐席", 3),
        ("税务分中心（12366）", 1),
    ]


def test_ranking_sorts_by_the_chosen_rate_with_the_month_before() -> None:
    this = {
        "dept:甲局": Counter(
            offered=10, answered=9, resolved=3, unresolved=1, survey_satisfied=1, survey_dissatisfied=1
        ),
        "dept:乙局": Counter(offered=10, answered=7, resolved=4, survey_satisfied=2, survey_basic=1),
        "dept:丙局": Counter(offered=2),
        ALL: Counter(offered=22),
    }
    before = {"dept:甲局": Counter(offered=4, answered=2)}
    by_response = ranking_table("2026-03", this, before, "response")
    assert [r["department"] for r in by_response.rows] == ["甲局", "乙局", "丙局"]
    assert [r["rank"] for r in by_response.rows] == [1, 2, 3]
    first = by_response.rows[0]
    assert (
        first["response_rate"],
        first["resolved"],
        first["with_resolution"],
        first["resolution_rate"],
    ) == (0.9, 3, 4, 0.75)
    assert (first["satisfied"], first["rated"], first["satisfaction_rate"]) == (1, 2, 0.5)
    assert (first["prev_response_rate"], first["prev_resolution_rate"]) == (0.5, None)
    by_resolution = ranking_table("2026-03", this, before, "resolution")
    assert [r["department"] for r in by_resolution.rows] == ["乙局", "甲局", "丙局"]  # 100 %, 75 %, none
    assert "2026-02" in by_resolution.title


def test_staffing_check_flags_intervals_short_of_erlang_c(config: HotlineConfig) -> None:
    # Saturday 10:00: 100 calls of 150 s + 30 s wrap-up to the health experts (6 seats on duty).
    records = [
        call(
            beijing(2026, 3, 7, 10, 0) + dt.timedelta(seconds=n * 17),
            linkedid=f"s.{n}",
            queues=("expert-health",),
            talk_s=150,
            wrap_up_s=30,
        )
        for n in range(100)
    ]
    rows = staffing(_cells(*records), config)
    assert [(r.queue, r.slot, r.offered) for r in rows] == [("expert-health", 20, 100)]
    row = rows[0]
    assert (row.handling_s, row.traffic) == (180.0, 10.0)
    assert (row.needed, row.on_duty, row.shortfall) == (14, 6, 8)  # 80 % in 15 s needs 14 at 10 Erlangs
    assert row.understaffed
    assert row.service_level_on_duty == 0.0  # 6 seats cannot carry 10 Erlangs
    table = staffing_table(rows, scope_names(config))
    assert table.rows[0]["queue"] == "卫健专席（12320）"
    assert "expert-health" in format_rows(rows)


def test_csv_and_xlsx_carry_the_same_cells(config: HotlineConfig) -> None:
    cells = _cells(
        call(beijing(2026, 3, 2, 9, 0), linkedid="x.1", wait_s=10),
        call(beijing(2026, 3, 2, 9, 5), linkedid="x.2", answered=False, wait_s=2),
    )
    table = interval_table(cells, ALL, Roster(config))
    table.rows.append({"date": "=cmd|' /C calc'!A0", "interval": "-1+1"})  # what a hostile name would be

    text = to_csv(table).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][:4] == ["日期", "时段", "呼入", "接通"]
    assert rows[1][:9] == ["2026-03-02", "09:00-09:30", "2", "1", "1", "1", "0", "0.5", "0.5"]
    assert rows[2][:2] == ["'=cmd|' /C calc'!A0", "'-1+1"]
    assert rows[2][2] == ""  # no figure, no zero

    book = load_workbook(io.BytesIO(to_xlsx([table])))
    sheet = book["按半小时"]
    labels = [c.value for c in sheet[1]]
    assert labels == [c.label for c in table.columns]
    for row_index, row in enumerate(table.rows[:1], start=2):
        for col_index, column in enumerate(table.columns, start=1):
            cell = sheet.cell(row=row_index, column=col_index)
            assert cell.value == row[column.key], column.key
            if column.kind == "rate":
                assert cell.number_format == "0.0%"
            elif column.kind == "seconds":
                assert cell.number_format == "0.0"
    assert sheet.cell(row=3, column=1).value == "'=cmd|' /C calc'!A0"
    assert sheet.cell(row=3, column=3).value is None
    assert sheet.freeze_panes == "A2"
