"""The report tables people read: counters summed into figures, each rate with its denominator.

One ``Table`` (columns with Chinese labels, rows of plain values) feeds the page, the JSON API, CSV
and XLSX alike, so the four never disagree. Pure: counts in, tables out.

Figures: response rate (接通率/响应率) = answered ÷ offered; service level = answered within the
queue's ``service_level_s`` (15 s) ÷ offered, and ÷ answered; abandoned includes the short
abandons (< 5 s), shown apart; ASA = wait of answered calls ÷ answered; average talk ÷ answered;
average wrap-up ÷ calls with a wrap-up; occupancy = (talk + hold + wrap-up) ÷ seat time the shifts
roster (seats on duty x 30 min); resolution = resolved ÷ work orders the order system reported
on; satisfaction = (satisfied + basic) ÷ rated, for the survey after the call (评价) and for the
order system's follow-up (回访) apart.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gateway.merge.schema import HotlineConfig
from gateway.reports.aggregate import ALL, SLOTS_PER_DAY, Cell, previous_month, slot_label
from gateway.reports.staffing import SLOT_S, StaffingRow, on_duty

Kind = Literal["text", "int", "rate", "seconds", "number"]
Value = str | int | float | None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: Kind


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Value]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "columns": [{"key": c.key, "label": c.label, "kind": c.kind} for c in self.columns],
            "rows": self.rows,
        }


FIGURES = [
    Column("offered", "呼入", "int"),
    Column("answered", "接通", "int"),
    Column("abandoned", "放弃", "int"),
    Column("short_abandoned", "其中5秒内放弃", "int"),
    Column("callbacks", "预约回电", "int"),
    Column("response_rate", "接通率（÷呼入）", "rate"),
    Column("sl_of_offered", "15秒服务水平（÷呼入）", "rate"),
    Column("sl_of_answered", "15秒服务水平（÷接通）", "rate"),
    Column("asa_s", "平均应答速度（秒）", "seconds"),
    Column("avg_talk_s", "平均通话（秒）", "seconds"),
    Column("avg_wrapup_s", "平均话后处理（秒）", "seconds"),
    Column("occupancy", "占用率（÷排班坐席时长）", "rate"),
    Column("handover_blind", "转接", "int"),
    Column("handover_attended", "咨询后转接", "int"),
    Column("handover_threeway", "三方通话", "int"),
    Column("handover_emergency", "其中转110/119/120/122", "int"),
]


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean_s(total_ms: float, count: float) -> float | None:
    return round(total_ms / count / 1000, 1) if count else None


def figures(c: Counter[str], rostered_s: float | None) -> dict[str, Value]:
    work_ms = c["talk_ms"] + c["hold_ms"] + c["wrapup_ms"]
    return {
        "offered": c["offered"],
        "answered": c["answered"],
        "abandoned": c["abandoned"],
        "short_abandoned": c["short_abandoned"],
        "callbacks": c["callbacks"],
        "response_rate": _ratio(c["answered"], c["offered"]),
        "sl_of_offered": _ratio(c["answered_in_sl"], c["offered"]),
        "sl_of_answered": _ratio(c["answered_in_sl"], c["answered"]),
        "asa_s": _mean_s(c["wait_answered_ms"], c["answered"]),
        "avg_talk_s": _mean_s(c["talk_ms"], c["answered"]),
        "avg_wrapup_s": _mean_s(c["wrapup_ms"], c["wrapups"]),
        "occupancy": _ratio(work_ms / 1000, rostered_s) if rostered_s is not None else None,
        "handover_blind": c["handover_blind"],
        "handover_attended": c["handover_attended"],
        "handover_threeway": c["handover_threeway"],
        "handover_emergency": c["handover_emergency"],
    }


class Roster:
    """Seat time the shifts put on duty, by scope and interval (queues and all; None otherwise)."""

    def __init__(self, config: HotlineConfig) -> None:
        self._queues = {q.name: q for q in config.queues}

    def seconds(self, scope: str, day: dt.date, slot: int) -> float | None:
        if scope == ALL:
            return sum(on_duty(q, day, slot) for q in self._queues.values()) * SLOT_S
        queue = self._queues.get(scope.removeprefix("queue:")) if scope.startswith("queue:") else None
        return on_duty(queue, day, slot) * SLOT_S if queue is not None else None

    def over(self, scope: str, days: Iterable[dt.date]) -> float | None:
        total = None
        for day in days:
            for slot in range(SLOTS_PER_DAY):
                seconds = self.seconds(scope, day, slot)
                if seconds is None:
                    return None
                total = (total or 0.0) + seconds
        return total


def scope_names(config: HotlineConfig) -> dict[str, str]:
    """What people call each scope, for the tables and the page's scope picker."""
    names = {ALL: "全部"}
    names |= {f"queue:{q.name}": q.title for q in config.queues}
    names |= {f"line:{config.hotline.number}": f"{config.hotline.number} {config.hotline.name}"}
    names |= {f"line:{line.number}": f"{line.number} {line.title}" for line in config.legacy_lines}
    departments = [q.department for q in config.queues] + [line.department for line in config.legacy_lines]
    names |= {f"dept:{d}": d for d in departments if d}
    return names


def interval_table(cells: Mapping[Cell, Counter[str]], scope: str, roster: Roster) -> Table:
    table = Table(
        "intervals",
        "按半小时",
        [Column("date", "日期", "text"), Column("interval", "时段", "text"), *FIGURES],
    )
    for cell in sorted((c for c in cells if c.scope == scope), key=lambda c: (c.day, c.slot)):
        rostered = roster.seconds(scope, cell.day, cell.slot)
        row: dict[str, Value] = {"date": cell.day.isoformat(), "interval": slot_label(cell.slot)}
        table.rows.append(row | figures(cells[cell], rostered))
    return table


SCOPE_TABLES = {
    "queue": ("queues", "按队列"),
    "line": ("lines", "按原热线号码"),
    "dept": ("departments", "按部门"),
}


def scope_table(
    cells: Mapping[Cell, Counter[str]],
    kind: str,
    names: Mapping[str, str],
    roster: Roster,
    days: list[dt.date],
) -> Table:
    """Totals over the range for every scope of ``kind`` (queue, line, dept) that had calls."""
    name, title = SCOPE_TABLES[kind]
    table = Table(name, title, [Column("scope", "名称", "text"), *FIGURES])
    totals: dict[str, Counter[str]] = {}
    for cell, counts in cells.items():
        if cell.scope.startswith(f"{kind}:"):
            totals.setdefault(cell.scope, Counter()).update(counts)
    for scope in sorted(totals):
        row: dict[str, Value] = {"scope": names.get(scope, scope.partition(":")[2])}
        table.rows.append(row | figures(totals[scope], roster.over(scope, days)))
    return table


RANKING_SORTS = {
    "response": "response_rate",
    "resolution": "resolution_rate",
    "satisfaction": "satisfaction_rate",
}
RANKING = [
    Column("rank", "名次", "int"),
    Column("department", "部门", "text"),
    Column("offered", "呼入", "int"),
    Column("answered", "接通", "int"),
    Column("response_rate", "响应率（接通÷呼入）", "rate"),
    Column("resolved", "已解决", "int"),
    Column("with_resolution", "有办理结果工单", "int"),
    Column("resolution_rate", "解决率（÷有办理结果）", "rate"),
    Column("satisfied", "满意+基本满意", "int"),
    Column("rated", "参评", "int"),
    Column("satisfaction_rate", "满意率（÷参评）", "rate"),
    Column("followup_satisfied", "回访满意+基本满意", "int"),
    Column("followup_reached", "回访接通", "int"),
    Column("followup_satisfaction_rate", "回访满意率（÷回访接通）", "rate"),
    Column("prev_response_rate", "上月响应率", "rate"),
    Column("prev_resolution_rate", "上月解决率", "rate"),
    Column("prev_satisfaction_rate", "上月满意率", "rate"),
]


def three_rates(c: Counter[str]) -> dict[str, Value]:
    with_resolution = c["resolved"] + c["unresolved"]
    satisfied = c["survey_satisfied"] + c["survey_basic"]
    rated = satisfied + c["survey_dissatisfied"]
    follow_happy = c["followup_satisfied"] + c["followup_basic"]
    reached = follow_happy + c["followup_dissatisfied"]
    return {
        "offered": c["offered"],
        "answered": c["answered"],
        "response_rate": _ratio(c["answered"], c["offered"]),
        "resolved": c["resolved"],
        "with_resolution": with_resolution,
        "resolution_rate": _ratio(c["resolved"], with_resolution),
        "satisfied": satisfied,
        "rated": rated,
        "satisfaction_rate": _ratio(satisfied, rated),
        "followup_satisfied": follow_happy,
        "followup_reached": reached,
        "followup_satisfaction_rate": _ratio(follow_happy, reached),
    }


def ranking_table(
    month: str, this: Mapping[str, Counter[str]], before: Mapping[str, Counter[str]], sort: str
) -> Table:
    """Departments by one of the three rates (best first; no figure last), the month before beside."""
    key = RANKING_SORTS[sort]
    table = Table("ranking", f"{month} 部门三率排名（上月 {previous_month(month)}）", RANKING)
    rows = []
    for scope in sorted(s for s in this if s.startswith("dept:")):
        earlier = three_rates(before.get(scope, Counter()))
        row: dict[str, Value] = {"department": scope.removeprefix("dept:"), **three_rates(this[scope])}
        row |= {f"prev_{k}": earlier[k] for k in RANKING_SORTS.values()}
        rows.append(row)
    rows.sort(key=lambda r: (r[key] is None, -float(r[key] or 0), str(r["department"])))
    for rank, row in enumerate(rows, start=1):
        table.rows.append({"rank": rank, **row})
    return table


STAFFING = [
    Column("date", "日期", "text"),
    Column("interval", "时段", "text"),
    Column("queue", "队列", "text"),
    Column("offered", "呼入", "int"),
    Column("handling_s", "平均处理时长（秒）", "seconds"),
    Column("traffic", "话务量（爱尔兰）", "number"),
    Column("needed", "所需坐席（Erlang C）", "int"),
    Column("on_duty", "排班坐席", "int"),
    Column("shortfall", "缺口", "int"),
    Column("service_level_on_duty", "按排班预计服务水平", "rate"),
]


def staffing_table(rows: list[StaffingRow], names: Mapping[str, str]) -> Table:
    table = Table("staffing", "人手不足时段（Erlang C）", STAFFING)
    for r in rows:
        if r.understaffed:
            table.rows.append(
                {
                    "date": r.day.isoformat(),
                    "interval": slot_label(r.slot),
                    "queue": names.get(f"queue:{r.queue}", r.queue),
                    "offered": r.offered,
                    "handling_s": r.handling_s,
                    "traffic": r.traffic,
                    "needed": r.needed,
                    "on_duty": r.on_duty,
                    "shortfall": r.shortfall,
                    "service_level_on_duty": r.service_level_on_duty,
                }
            )
    return table
