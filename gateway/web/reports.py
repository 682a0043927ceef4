"""The supervisors' reports: the ``/reports`` page, its JSON API and the CSV/XLSX exports.

Routes (supervisor or admin; the page wants the dashboard's session, the API also takes a bearer
token): ``GET /reports``; ``GET /api/reports?from=&to=&scope=`` (half-hour intervals of one scope,
totals by queue, line and department, understaffed intervals); ``GET
/api/reports/ranking?month=&sort=`` (the departments' three rates against the month before);
``GET /api/reports/export?format=csv|xlsx&table=...`` (the same tables as files). Dates are local
(Beijing) days, ``from`` and ``to`` inclusive. The page's static files are served with the
dashboard's (``gateway.web.dashboard``).

Narrow dependencies: the report store and a function returning the config in force.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from gateway.merge.schema import HotlineConfig
from gateway.reports.aggregate import ALL, ReportRangeError, check_range, local, month_of, previous_month
from gateway.reports.export import XLSX_TYPE, to_csv, to_xlsx
from gateway.reports.staffing import staffing
from gateway.reports.store import ReportStore
from gateway.reports.tables import (
    RANKING_SORTS,
    Roster,
    Table,
    interval_table,
    ranking_table,
    scope_names,
    scope_table,
    staffing_table,
)
from gateway.web.auth import Role, require
from gateway.web.dashboard import STATIC_DIR
from gateway.web.errors import HttpError

ROLES = (Role.SUPERVISOR,)  # admin is always allowed too
DEFAULT_DAYS = 7
MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
RANGE_TABLES = ("intervals", "queues", "lines", "departments", "staffing")


@dataclass(frozen=True)
class Reports:
    store: ReportStore
    config: Callable[[], HotlineConfig]
    page: str


REPORTS = web.AppKey("reports", Reports)


def setup_reports(app: web.Application, store: ReportStore, config: Callable[[], HotlineConfig]) -> None:
    app[REPORTS] = Reports(store, config, (STATIC_DIR / "reports.html").read_text(encoding="utf-8"))
    app.router.add_get("/reports", _page)
    app.router.add_get("/api/reports", _range_report)
    app.router.add_get("/api/reports/ranking", _ranking)
    app.router.add_get("/api/reports/export", _export)


def _today() -> dt.date:
    return local(dt.datetime.now(dt.UTC)).date()


def _date(request: web.Request, name: str, default: dt.date) -> dt.date:
    text = request.query.get(name)
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise HttpError(400, "reports.invalid", f"{name}={text!r} is not a date (YYYY-MM-DD)") from None


def _range(request: web.Request) -> tuple[dt.date, dt.date]:
    last = _date(request, "to", _today())
    first = _date(request, "from", last - dt.timedelta(days=DEFAULT_DAYS - 1))
    try:
        check_range(first, last)
    except ReportRangeError as exc:
        raise HttpError(400, exc.code, exc.message) from None
    return first, last


def _month(request: web.Request) -> str:
    month = request.query.get("month") or month_of(_today())
    if not MONTH.match(month):
        raise HttpError(400, "reports.invalid", f"month={month!r} is not a month (YYYY-MM)")
    return month


def _choice(request: web.Request, name: str, choices: tuple[str, ...] | list[str], default: str) -> str:
    value = request.query.get(name, default)
    if value not in choices:
        raise HttpError(400, "reports.invalid", f"{name}={value!r}: choose one of {', '.join(choices)}")
    return value


async def _range_tables(request: web.Request) -> tuple[dict[str, Table], dict[str, Any]]:
    reports = request.app[REPORTS]
    config = reports.config()
    first, last = _range(request)
    names = scope_names(config)
    scope = request.query.get("scope", ALL)
    try:
        cells = await reports.store.cells(first, last)
    except (RedisError, OSError) as exc:
        raise HttpError(503, "reports.redis_unavailable", f"report data unreachable: {exc}") from None
    known = names | {c.scope: c.scope.partition(":")[2] for c in cells if c.scope not in names}
    if scope not in known:
        raise HttpError(400, "reports.invalid", f"scope={scope!r} is not a queue, line or department")
    roster = Roster(config)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    tables = {
        "intervals": interval_table(cells, scope, roster),
        "queues": scope_table(cells, "queue", names, roster, days),
        "lines": scope_table(cells, "line", names, roster, days),
        "departments": scope_table(cells, "dept", names, roster, days),
        "staffing": staffing_table(staffing(cells, config), names),
    }
    meta = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "scope": scope,
        "scopes": [{"key": key, "name": name} for key, name in known.items()],
        "service_level_s": {q.name: q.service_level_s for q in config.queues},
        "service_level_target": _target(config, scope),
    }
    return tables, meta


def _target(config: HotlineConfig, scope: str) -> float:
    """The service level goal the chart draws: the queue's, or the general seats' for other scopes."""
    queues = {q.name: q for q in config.queues}
    queue = queues.get(scope.removeprefix("queue:"), config.general_queue)
    return queue.service_level_target_pct / 100


async def _ranking_table(request: web.Request) -> Table:
    month = _month(request)
    sort = _choice(request, "sort", list(RANKING_SORTS), "response")
    store = request.app[REPORTS].store
    try:
        this, before = await store.month(month), await store.month(previous_month(month))
    except (RedisError, OSError) as exc:
        raise HttpError(503, "reports.redis_unavailable", f"report data unreachable: {exc}") from None
    return ranking_table(month, this, before, sort)


async def _page(request: web.Request) -> web.Response:
    try:
        await require(request, *ROLES)
    except HttpError:
        raise web.HTTPFound("/login") from None
    return web.Response(
        text=request.app[REPORTS].page, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


async def _range_report(request: web.Request) -> web.Response:
    await require(request, *ROLES)
    tables, meta = await _range_tables(request)
    body = meta | {"tables": {name: table.as_json() for name, table in tables.items()}}
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def _ranking(request: web.Request) -> web.Response:
    await require(request, *ROLES)
    table = await _ranking_table(request)
    month = _month(request)
    body = {"month": month, "previous": previous_month(month), "sort": request.query.get("sort", "response")}
    return web.json_response(body | {"table": table.as_json()}, headers={"Cache-Control": "no-store"})


async def _export(request: web.Request) -> web.Response:
    """One table as CSV, or as XLSX one table or ``table=all`` (the range's tables and the ranking)."""
    await require(request, *ROLES)
    kind = _choice(request, "format", ("csv", "xlsx"), "xlsx")
    names = (*RANGE_TABLES, "ranking", *(("all",) if kind == "xlsx" else ()))
    which = _choice(request, "table", names, "all" if kind == "xlsx" else "intervals")
    chosen: list[Table] = []
    if which != "ranking":
        tables, meta = await _range_tables(request)
        chosen = list(tables.values()) if which == "all" else [tables[which]]
        stem = f"12345-{which}-{meta['from']}_{meta['to']}"
    if which in ("ranking", "all"):
        chosen.append(await _ranking_table(request))
        stem = f"12345-{which}-{_month(request)}" if which == "ranking" else stem
    if kind == "csv":
        body, content_type = to_csv(chosen[0]), "text/csv; charset=utf-8"
    else:
        body, content_type = to_xlsx(chosen), XLSX_TYPE
    return web.Response(
        body=body,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{stem}.{kind}"',
            "Cache-Control": "no-store",
        },
    )
