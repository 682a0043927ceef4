"""AstDB in the simulator as in Asterisk: DB() and DBdeltree in the dialplan, hangup handlers, and the
rendered dialplan's log of ended calls; plus the traffic's ground truth of ended calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools

import aiohttp

from gateway.contract import ENDED_LOG_FIELDS
from gateway.sim.cli import ServiceOptions, SimulatorService
from gateway.sim.clock import SimClock
from gateway.sim.dialplan import parse_extensions_conf
from gateway.sim.pbx import OriginateRequest, Pbx
from gateway.sim.pbx_vars import filter_function
from gateway.sim.plan import SimPlan
from tests.sim.support import RecordingSink
from tests.sim.test_rendered import ROOT, dial_in, make_pbx, plan  # noqa: F401 (the plan fixture)

HANDLERS = """
[in]
exten => 1,1,Set(DB(fam/a/b)=one|two)
 same => n,Set(COPY=${DB(fam/a/b)})
 same => n,Set(CHANNEL(hangup_handler_push)=log,s,1)
 same => n,Set(CHANNEL(hangup_handler_push)=log,second,1(ignored args))
 same => n,Set(STEP=queued)
 same => n,Wait(5)
 same => n,Hangup()
exten => 2,1,DBdeltree(fam/a)
 same => n,Hangup()
[log]
exten => s,1,Set(DB(ended/${CHANNEL(linkedid)})=${STEP}|${COPY}|${DB(order)})
 same => n,Return()
 same => n,Set(DB(never)=reached)
exten => second,1,Set(DB(order)=second first)
 same => n,Wait(10)
 same => n,Set(DB(never)=reached)
"""


def _pbx(conf: str) -> tuple[Pbx, RecordingSink]:
    sink = RecordingSink()
    return Pbx(parse_extensions_conf(conf), SimClock(manual=True), sink, seed=1), sink


def _call(pbx: Pbx, exten: str, context: str = "in") -> str:
    linkedids: list[str] = []
    pbx.run(lambda: pbx.originate(OriginateRequest(
        target=f"Local/{exten}@{context}", application="Wait", app_data="60", report=False,
        on_channels=lambda one, two: linkedids.append(one.linkedid),
    )))  # fmt: skip
    pbx.clock.advance(0.01)
    return linkedids[0]


def test_db_function_reads_and_writes_and_hangup_handlers_run_last_pushed_first() -> None:
    pbx, sink = _pbx(HANDLERS)
    linkedid = _call(pbx, "1")
    assert pbx.astdb["/fam/a/b"] == "one|two"
    pbx.clock.advance(6)
    assert pbx.astdb[f"/ended/{linkedid}"] == "queued|one|two|second first"
    assert "/never" not in pbx.astdb, "Return() ends a handler; a Wait ends it on a hung-up channel"
    names = sink.names()
    handler_steps = [h for n, h in sink.events if n == "Newexten" and h["Context"] == "log"]
    assert handler_steps, "handler steps are published like any dialplan"
    last_step = max(i for i, (n, h) in enumerate(sink.events) if n == "Newexten" and h["Context"] == "log")
    hangup = next(i for i, (n, h) in enumerate(sink.events) if n == "Hangup" and h["Channel"].endswith(";2"))
    assert last_step < hangup, "handlers run before the channel's Hangup event"
    assert names.count("Hangup") == 2


def test_dbdeltree_removes_a_family_or_a_subtree() -> None:
    pbx, _ = _pbx(HANDLERS)
    pbx.astdb.update({"/fam/a": "x", "/fam/a/b": "y", "/fam/ab": "kept", "/other/a": "kept"})
    _call(pbx, "2")
    assert pbx.astdb == {"/fam/ab": "kept", "/other/a": "kept"}


def test_filter_keeps_the_allowed_characters_with_ranges() -> None:
    assert filter_function("0-9+,+86 138|0013-8000") == "+8613800138000"
    assert filter_function("a-c,abcdz") == "abc"


def test_the_rendered_dialplan_logs_every_ended_citizen_call(plan: SimPlan) -> None:  # noqa: F811
    pbx, _ = make_pbx(plan)
    answered = dial_in(pbx, "12331", keys="1")[0].linkedid
    pbx.clock.advance(80.0)
    for member in pbx.queues.queues["subcenter-tax"].members:
        pbx.run(functools.partial(pbx.queues.pause, "subcenter-tax", member.interface, True))
    abandoned = dial_in(pbx, "12366")
    pbx.clock.advance(10.0)
    pbx.run(lambda: pbx.softhangup(abandoned[0], 16))
    names = ["version", *(name for name, _ in ENDED_LOG_FIELDS)]
    log = {key: dict(zip(names, value.split("|"), strict=True)) for key, value in pbx.astdb.items()}
    day = dt.datetime.fromtimestamp(pbx.clock.wall(), dt.UTC).strftime("%Y%m%d")
    assert {key.rsplit("/", 1)[0] for key in log} <= {
        f"/hotline-ended-{day}/{hour:02d}" for hour in range(24)
    }
    by_call = {key.rsplit("/", 1)[1]: fields for key, fields in log.items()}
    assert set(by_call) == {answered, abandoned[0].linkedid}
    call = by_call[answered]
    assert {k: call[k] for k in ("version", "line", "mode", "department", "caller", "queue", "seat")} == {
        "version": "v1", "line": "12331", "mode": "merged", "department": "市场监督管理局",
        "caller": "13912345678", "queue": "hotline-general", "seat": "Local/1001@agents/n",
    }  # fmt: skip
    assert int(call["arrived"]) <= int(call["joined"]) <= int(call["queued"]) < int(call["ended"])
    assert (call["held"], call["talk"], call["survey_key"], call["survey"]) == ("2", "20", "1", "satisfied")
    assert call["recording"].startswith("calls/")
    gone = by_call[abandoned[0].linkedid]
    assert (gone["queue"], gone["held"], gone["seat"], gone["survey"]) == ("subcenter-tax", "", "", "")


def test_intake_prunes_the_log_of_three_days_ago(plan: SimPlan) -> None:  # noqa: F811
    pbx, _ = make_pbx(plan)
    old = dt.datetime.fromtimestamp(pbx.clock.wall() - 3 * 86400, dt.UTC).strftime("%Y%m%d")
    pbx.astdb.update({f"/hotline-ended-{old}/10/x": "v1", "/hotline-ended-19990101/10/y": "v1"})
    dial_in(pbx, "12345")
    assert f"/hotline-ended-{old}/10/x" not in pbx.astdb
    assert "/hotline-ended-19990101/10/y" in pbx.astdb, "only the family that just expired goes"


async def test_control_lists_ended_calls_including_those_a_restart_cut() -> None:
    options = ServiceOptions(config=ROOT / "hotline_merge.yaml", port=0, rate=5, seats_per_queue=2, seed=4,
                             control_port=0, time_scale=0.02)  # fmt: skip
    service = SimulatorService(options, env={"HOTLINE_AMI_SECRET": "secret"})
    await service.start()
    try:
        async with aiohttp.ClientSession(service.control_url) as http:
            await asyncio.sleep(1.0)
            async with http.post("/faults/restart", params={"downtime": "5"}) as answer:
                assert answer.status == 200
            await asyncio.sleep(0.5)
            async with http.post("/traffic/stop") as answer:
                assert (await answer.json()) == {"traffic": False}
            async with http.get("/calls/ended") as answer:
                body = await answer.json()
        cut = [call for call in body["ended"] if call["cut_by_restart"]]
        assert cut, "the calls up at the restart are over, without a Hangup"
        assert len({c["linkedid"] for c in body["ended"]}) == len(body["ended"])
        assert all(c["number"] in service.sim.plan.inbound for c in body["ended"])
        assert not set(body["live"]) & {c["linkedid"] for c in body["ended"]}
    finally:
        await service.stop()
