"""Reports end to end on loopback: records through a real outbox into real Redis, the order
system's feedback through its real route, and the JSON API, exports and CLI reading them back."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook

from gateway.cli import main
from gateway.localredis import LocalRedis
from gateway.merge.loader import load_config
from gateway.merge.schema import HotlineConfig
from gateway.records.feedback import FEEDBACK_PATH
from gateway.records.model import CallRecord, Stage, Survey, SurveyResult, revision_for
from gateway.records.outbox import Outbox
from gateway.records.spool import Spool
from gateway.reports.store import FEEDBACK_DAYS, REPLACE_DAYS, ReportStore
from tests.browser.scene import SEAT_TOKEN, SUPERVISOR_TOKEN
from tests.conftest import ROOT
from tests.support.report_calls import ORDER_TOKEN, beijing, call, reports_app

Client = TestClient[web.Request, web.Application]
BEARER = {"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}
RETENTION_DAYS = 30


@pytest.fixture(scope="module")
def config() -> HotlineConfig:
    return load_config(ROOT / "hotline_merge.yaml")


@pytest.fixture
def store(redis_client: aioredis.Redis, config: HotlineConfig) -> ReportStore:
    levels = {q.name: q.service_level_s for q in config.queues}
    return ReportStore(redis_client, lambda: levels, retention_days=RETENTION_DAYS)


@pytest.fixture
def outbox(redis_client: aioredis.Redis, store: ReportStore, tmp_path: Path) -> Outbox:
    outbox = Outbox(redis_client, Spool(tmp_path / "records.jsonl"))
    outbox.listeners.append(store.add)
    return outbox


@pytest.fixture
async def client(
    redis_client: aioredis.Redis, store: ReportStore, config: HotlineConfig
) -> AsyncIterator[Client]:
    async with TestClient(TestServer(reports_app(redis_client, store, config), host="127.0.0.1")) as client:
        yield client


def with_survey(record: CallRecord, result: SurveyResult, after_s: float) -> CallRecord:
    """The final record amended by a survey answer that came after the end (a new revision)."""
    at = record.as_of + dt.timedelta(seconds=after_s)
    return CallRecord.model_validate(
        record.model_dump()
        | {
            "survey": Survey(result=result, key="1", at=at),
            "as_of": at,
            "revision": revision_for(at, Stage.FINAL),
        }
    )


async def report(client: Client, **query: str) -> dict[str, object]:
    answer = await client.get("/api/reports", params=query, headers=BEARER)
    assert answer.status == 200, await answer.text()
    body: dict[str, object] = await answer.json()
    return body


def rows(body: dict[str, object], table: str) -> list[dict[str, object]]:
    tables = body["tables"]
    assert isinstance(tables, dict)
    found: list[dict[str, object]] = tables[table]["rows"]
    return found


async def test_each_record_counts_once_and_a_newer_revision_replaces_it(
    client: Client, outbox: Outbox, store: ReportStore
) -> None:
    first = call(beijing(2026, 3, 2, 9, 0), linkedid="r.1", wait_s=10)
    second = call(beijing(2026, 3, 2, 9, 40), linkedid="r.2", wait_s=30)
    abandoned = call(beijing(2026, 3, 2, 9, 41), linkedid="r.3", wait_s=2, answered=False)
    await outbox.append_many([first, second, abandoned])
    await outbox.append(first)  # the tracker emitted it twice
    assert await store.flush()
    await outbox.append(with_survey(first, SurveyResult.SATISFIED, 20))  # the survey came late
    await outbox.append(first)  # and an older revision after it changes nothing
    assert await store.flush()

    body = await report(client, **{"from": "2026-03-02", "to": "2026-03-02"})
    got = [
        (r["interval"], r["offered"], r["answered"], r["abandoned"], r["short_abandoned"])
        for r in rows(body, "intervals")
    ]
    assert got == [("09:00-09:30", 1, 1, 0, 0), ("09:30-10:00", 2, 1, 1, 1)]
    assert rows(body, "intervals")[1]["sl_of_offered"] == 0.0  # 30 s is over 15 s
    assert [(r["scope"], r["offered"]) for r in rows(body, "queues")] == [("12345综合坐席", 3)]
    assert rows(body, "departments")[0]["scope"] == "市场监督管理局"
    ranking = await client.get("/api/reports/ranking", params={"month": "2026-03"}, headers=BEARER)
    table = (await ranking.json())["table"]
    assert (table["rows"][0]["satisfied"], table["rows"][0]["rated"]) == (1, 1)


async def test_feedback_lands_in_the_calls_month_whichever_comes_first(
    client: Client, outbox: Outbox, store: ReportStore
) -> None:
    early = call(beijing(2026, 2, 27, 10, 0), linkedid="f.1")  # February
    late = call(
        beijing(2026, 3, 3, 10, 0),
        linkedid="f.2",
        line="12366",
        department="税务局",
        queues=("subcenter-tax",),
    )
    auth = {"Authorization": f"Bearer {ORDER_TOKEN}"}

    async def post(record: CallRecord, body: dict[str, object]) -> None:
        answer = await client.post(FEEDBACK_PATH.format(record_id=record.record_id), json=body, headers=auth)
        assert answer.status == 200, await answer.text()

    # The resolution of the March call arrives before its record reached the reports (the outbox
    # has it, the order system answered, the reports' flush has not run yet).
    await outbox.append_many([early, late])
    await post(late, {"kind": "resolution", "resolved": False, "at": "2026-03-04T01:00:00Z"})
    assert await store.flush()
    await post(
        late, {"kind": "resolution", "resolved": True, "at": "2026-03-05T01:00:00Z"}
    )  # changed its mind
    await post(late, {"kind": "resolution", "resolved": True, "at": "2026-03-05T01:00:00Z"})  # retried
    await post(early, {"kind": "resolution", "resolved": True, "at": "2026-03-02T01:00:00Z"})
    await post(early, {"kind": "follow_up", "result": "dissatisfied", "at": "2026-03-02T02:00:00Z"})

    answer = await client.get(
        "/api/reports/ranking", params={"month": "2026-03", "sort": "resolution"}, headers=BEARER
    )
    body = await answer.json()
    assert (body["month"], body["previous"]) == ("2026-03", "2026-02")
    march = {r["department"]: r for r in body["table"]["rows"]}
    assert set(march) == {"税务局"}
    assert (march["税务局"]["resolved"], march["税务局"]["with_resolution"]) == (1, 1)
    assert march["税务局"]["prev_resolution_rate"] is None
    february = await client.get("/api/reports/ranking", params={"month": "2026-02"}, headers=BEARER)
    row = (await february.json())["table"]["rows"][0]
    assert (row["department"], row["resolution_rate"], row["followup_reached"], row["followup_satisfaction_rate"]) == (
        "市场监督管理局", 1.0, 1, 0.0,
    )  # fmt: skip


async def test_spooled_records_are_counted_when_recovered_and_buckets_expire(
    redis_client: aioredis.Redis, store: ReportStore, tmp_path: Path, client: Client
) -> None:
    # A gateway died while Redis was away: its records are in the spool, the reports never saw them.
    spool = Spool(tmp_path / "dead.jsonl")
    record = call(beijing(2026, 3, 2, 23, 45), linkedid="s.1")
    spool.append([record.model_dump_json().encode()])
    restarted = Outbox(redis_client, spool)
    restarted.listeners.append(store.add)
    assert await restarted.recover_spool() == 1
    assert await store.flush()
    body = await report(client, **{"from": "2026-03-02", "to": "2026-03-02"})
    assert [(r["interval"], r["offered"]) for r in rows(body, "intervals")] == [("23:30-24:00", 1)]
    keys = sorted(
        k.decode() if isinstance(k, bytes) else k for k in await redis_client.keys("hotline:reports:*")
    )
    for key in keys:
        days = (
            REPLACE_DAYS
            if key.endswith(":increments")
            else FEEDBACK_DAYS
            if ":record:" in key
            else RETENTION_DAYS
        )
        assert days * 86_400 - 60 < await redis_client.ttl(key) <= days * 86_400, key
    assert len(keys) == 4  # the day, the month, the record's marker and its increments
    # Past REPLACE_DAYS a newer revision can no longer replace the counts: the first ones stay.
    await redis_client.delete(store.keys.increments(record.record_id))
    store.add([with_survey(record, SurveyResult.BASIC, 60)])
    assert await store.flush()
    assert await redis_client.hget(store.keys.month("2026-03"), "all|calls") == b"1"
    assert await redis_client.hget(store.keys.month("2026-03"), "all|survey_basic") is None


async def test_a_record_keeps_two_compact_strings_and_a_scope_with_a_separator_is_refused(
    redis_client: aioredis.Redis, store: ReportStore, client: Client
) -> None:
    good = call(beijing(2026, 3, 2, 9, 0), linkedid="c.1")
    odd = call(beijing(2026, 3, 2, 9, 5), linkedid="c.2", department="市场监督管理局|稽查")
    store.add([good, odd])  # the outbox's listener never raises: the odd one is logged and left out
    assert await store.flush()
    body = await report(client, **{"from": "2026-03-02", "to": "2026-03-02"})
    assert [(r["interval"], r["offered"]) for r in rows(body, "intervals")] == [("09:00-09:30", 1)]
    assert await redis_client.get(store.keys.record(odd.record_id)) is None
    # The bench's figures (bench/reports.py), as a bound: one string each, a few hundred bytes.
    marker, increments = store.keys.record(good.record_id), store.keys.increments(good.record_id)
    assert await redis_client.type(marker) == await redis_client.type(increments) == b"string"
    sizes = [await redis_client.memory_usage(key, samples=0) or 0 for key in (marker, increments)]
    assert 0 < sizes[0] < 300
    assert 0 < sizes[1] < 700


async def test_flush_keeps_what_redis_did_not_take(config: HotlineConfig) -> None:
    with LocalRedis() as server:
        redis = aioredis.Redis.from_url(server.url)
        store = ReportStore(redis, dict, retention_days=1)
        store.add([call(beijing(2026, 3, 2, 9, 0), linkedid="k.1")])
        server.stop()
        assert not await store.flush()
        assert store.pending == 1
        server.start()
        with contextlib.suppress(Exception):
            await redis.ping()  # the pool notices the restart
        assert await store.flush()
        assert store.pending == 0
        assert await redis.hlen("hotline:reports:day:20260302") > 0
        await redis.aclose()


async def test_exports_over_http(client: Client, outbox: Outbox, store: ReportStore) -> None:
    await outbox.append_many(
        [call(beijing(2026, 3, 2, 9, n), linkedid=f"e.{n}", wait_s=5 + n) for n in range(0, 30, 3)]
    )
    assert await store.flush()
    query = {"from": "2026-03-02", "to": "2026-03-02", "month": "2026-03"}
    answer = await client.get(
        "/api/reports/export", params=query | {"format": "csv", "table": "queues"}, headers=BEARER
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        answer.headers["Content-Disposition"]
        == 'attachment; filename="12345-queues-2026-03-02_2026-03-02.csv"'
    )
    lines = (await answer.read()).decode("utf-8-sig").splitlines()
    assert lines[0].startswith("名称,呼入,接通,放弃")
    assert lines[1].startswith("12345综合坐席,10,10,0,0,0,1.0,")

    answer = await client.get("/api/reports/export", params=query | {"format": "xlsx"}, headers=BEARER)
    assert answer.status == 200
    book = load_workbook(io.BytesIO(await answer.read()))
    assert book.sheetnames == [
        "按半小时",
        "按队列",
        "按原热线号码",
        "按部门",
        "人手不足时段（Erlang C）",
        "2026-03 部门三率排名（上月 2026-02）",
    ]
    sheet = book["按半小时"]
    assert [c.value for c in sheet[2]][:5] == ["2026-03-02", "09:00-09:30", 10, 10, 0]
    assert sheet.cell(row=2, column=8).value == 1.0  # response rate, shown as 100.0%
    assert sheet.cell(row=2, column=8).number_format == "0.0%"


async def test_bad_requests_and_roles(client: Client) -> None:
    for query, code in [
        ({"from": "2026-03-40"}, "reports.invalid"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "reports.range"),
        ({"from": "2026-01-01", "to": "2026-06-01"}, "reports.range"),
        ({"scope": "queue:nope"}, "reports.invalid"),
    ]:
        answer = await client.get("/api/reports", params=query, headers=BEARER)
        assert (answer.status, (await answer.json())["error"]["code"]) == (400, code), query
    answer = await client.get("/api/reports/ranking", params={"month": "2026-13"}, headers=BEARER)
    assert answer.status == 400
    answer = await client.get("/api/reports/export", params={"format": "pdf"}, headers=BEARER)
    assert answer.status == 400
    assert (await client.get("/api/reports")).status == 401
    seat = await client.get("/api/reports", headers={"Authorization": f"Bearer {SEAT_TOKEN}"})
    assert seat.status == 403
    page = await client.get("/reports", allow_redirects=False)
    assert (page.status, page.headers["Location"]) == (302, "/login")


async def test_staffing_subcommand_lists_understaffed_intervals(
    outbox: Outbox, store: ReportStore, redis_server: LocalRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    start = beijing(2026, 3, 7, 10, 0)  # Saturday: 6 health experts on duty
    await outbox.append_many(
        [
            call(
                start + dt.timedelta(seconds=n * 17), linkedid=f"h.{n}", queues=("expert-health",), talk_s=150
            )
            for n in range(100)
        ]
    )
    assert await store.flush()
    argv = ["staffing", "--config", str(ROOT / "hotline_merge.yaml"), "--redis-url", redis_server.url]
    # The command runs its own event loop, as from a shell.
    assert await asyncio.to_thread(main, [*argv, "--from", "2026-03-07", "--to", "2026-03-07"]) == 0
    out = capsys.readouterr().out
    assert "1 intervals with calls, 1 understaffed" in out
    assert "expert-health" in out
    assert "10:00-10:30" in out
    line = next(line for line in out.splitlines() if "expert-health" in line).split()
    assert line[-4:-1] == ["10.00", "14", "6"]  # Erlangs, needed, on duty
    assert await asyncio.to_thread(main, [*argv, "--from", "2026-03-08", "--to", "2026-03-01"]) == 2
    assert "reports.range" in capsys.readouterr().err
