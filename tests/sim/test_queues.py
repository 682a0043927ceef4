"""app_queue behaviour of the simulated PBX, on a small dialplan, without TCP (events recorded)."""

from __future__ import annotations

import functools

import pytest

from gateway.sim.clock import SimClock
from gateway.sim.dialplan import parse_extensions_conf
from gateway.sim.pbx import OriginateRequest, Pbx
from gateway.sim.queues import MemberSpec, QueueError, QueueSpec
from tests.sim.support import RecordingSink

DIALPLAN = """
[from-pstn]
exten => _X.,1,Answer()
 same => n,Queue(${QNAME},${QOPTS},,,${QTIMEOUT})
 same => n,Set(AFTER=${QUEUESTATUS})
 same => n,Hangup()

[agents]
; 1xxx answer after 2 s and talk 30 s; 9xxx ring forever
exten => _1XXX,1,Ringing()
 same => n,Wait(2)
 same => n,Answer()
 same => n,Wait(30)
 same => n,Hangup()
exten => _9XXX,1,Ringing()
 same => n,Wait(3600)
"""


def member(ext: str, penalty: int = 0) -> MemberSpec:
    return MemberSpec(f"Local/{ext}@agents/n", f"Agent {ext}", penalty)


def make_pbx(*queues: QueueSpec, seed: int = 1) -> tuple[Pbx, RecordingSink]:
    sink = RecordingSink()
    pbx = Pbx(parse_extensions_conf(DIALPLAN), SimClock(manual=True), sink, seed=seed)
    pbx.queues.configure(list(queues))
    return pbx, sink


def call(
    pbx: Pbx, queue: str = "q", *, prio: int | None = None, options: str = "tT", timeout: str = ""
) -> None:
    variables = [("QNAME", queue), ("QOPTS", options), ("QTIMEOUT", timeout)]
    if prio is not None:
        variables.append(("QUEUE_PRIO", str(prio)))
    pbx.run(lambda: pbx.originate(OriginateRequest(target="Local/100@from-pstn", application="Wait", app_data="600",
                                                   caller_num="13800000000", variables=variables)))  # fmt: skip


def called(sink: RecordingSink) -> list[str]:
    return [e["Interface"].split("/")[1].split("@")[0] for e in sink.named("AgentCalled")]


def test_ringall_rings_every_free_member_and_cancels_the_others() -> None:
    pbx, sink = make_pbx(
        QueueSpec("q", strategy="ringall", members=[member("1001"), member("1002"), member("1003")])
    )
    call(pbx)
    pbx.clock.advance(1.0)
    assert called(sink) == ["1001", "1002", "1003"]
    pbx.clock.advance(2.0)
    assert len(sink.named("AgentConnect")) == 1
    assert [e["DialStatus"] for e in sink.named("DialEnd") if e.get("Channel")].count("CANCEL") == 2


def test_linear_ring_timeout_then_retry_the_next_member() -> None:
    pbx, sink = make_pbx(
        QueueSpec("q", strategy="linear", timeout=5, retry=1, members=[member("9001"), member("1002")])
    )
    call(pbx)
    pbx.clock.advance(12.0)
    assert called(sink) == ["9001", "1002"]
    [rna] = sink.named("AgentRingNoAnswer")
    assert rna["RingTime"] == "5000", "milliseconds, unlike AgentConnect"
    [connect] = sink.named("AgentConnect")
    assert (connect["HoldTime"], connect["RingTime"]) == ("8", "2")


def _three_calls(strategy: str, members: list[MemberSpec], seed: int = 1) -> list[str]:
    pbx, sink = make_pbx(QueueSpec("q", strategy=strategy, members=members), seed=seed)
    for _ in range(3):
        call(pbx)
        pbx.clock.advance(40.0)  # answered after 2 s, the seat hangs up after 30 s
    assert len(sink.named("AgentComplete")) == 3
    return called(sink)


def test_rrmemory_goes_round() -> None:
    assert _three_calls("rrmemory", [member("1001"), member("1002"), member("1003")]) == [
        "1001",
        "1002",
        "1003",
    ]


def test_leastrecent_and_fewestcalls_prefer_the_idle_member() -> None:
    assert _three_calls("leastrecent", [member("1001"), member("1002")]) == ["1001", "1002", "1001"]
    assert _three_calls("fewestcalls", [member("1001"), member("1002")]) == ["1001", "1002", "1001"]


def test_random_is_reproducible_from_the_seed() -> None:
    members = [member(str(1001 + i)) for i in range(6)]
    assert _three_calls("random", members, seed=5) == _three_calls("random", members, seed=5)


def test_lower_penalty_first_higher_only_when_needed() -> None:
    pbx, sink = make_pbx(
        QueueSpec("q", strategy="linear", members=[member("1001", penalty=1), member("1002")])
    )
    call(pbx)
    pbx.clock.advance(1.0)
    assert called(sink) == ["1002"]
    pbx.queues.pause("q", "Local/1001@agents/n", True, "lunch")
    pbx.queues.pause("q", "Local/1001@agents/n", False)
    call(pbx)
    pbx.clock.advance(2.0)
    assert called(sink) == ["1002", "1001"]


def test_paused_member_with_reason_is_not_rung_until_unpaused() -> None:
    pbx, sink = make_pbx(QueueSpec("q", members=[member("1001")]))
    pbx.run(lambda: pbx.queues.pause("q", "Local/1001@agents/n", True, "training"))
    [pause] = sink.named("QueueMemberPause")
    assert (pause["Paused"], pause["PausedReason"]) == ("1", "training")
    call(pbx)
    pbx.clock.advance(10.0)
    assert not called(sink)
    pbx.run(lambda: pbx.queues.pause("", "Local/1001@agents/n", False))
    pbx.clock.advance(1.0)
    assert called(sink) == ["1001"], "noticed at the caller's next once-a-second check"


def test_wrapup_keeps_a_member_off_the_queue() -> None:
    pbx, sink = make_pbx(QueueSpec("q", wrapuptime=20, members=[member("1001")]))
    call(pbx)
    pbx.clock.advance(33.0)  # answered at ~2 s, the seat hangs up at ~32 s
    call(pbx)
    pbx.clock.advance(10.0)
    assert len(sink.named("AgentCalled")) == 1
    pbx.clock.advance(15.0)
    assert len(sink.named("AgentCalled")) == 2


def test_joinempty_and_leavewhenempty() -> None:
    """joinempty=no refuses a queue with nobody to take calls; leavewhenempty=yes sends waiters off."""
    pbx, sink = make_pbx(
        QueueSpec("strict", joinempty="no", members=[member("1001")]),
        QueueSpec("leaving", joinempty="yes", leavewhenempty="yes", members=[member("1002")]),
    )
    for queue, ext in (("strict", "1001"), ("leaving", "1002")):
        pbx.run(functools.partial(pbx.queues.pause, queue, f"Local/{ext}@agents/n", True))
    call(pbx, "strict")
    call(pbx, "leaving")
    pbx.clock.advance(1.0)
    assert [e["Queue"] for e in sink.named("QueueCallerJoin")] == ["leaving"]
    assert [e["Value"] for e in sink.named("VarSet") if e["Variable"] == "AFTER"] == [
        "JOINEMPTY",
        "LEAVEEMPTY",
    ]
    assert not sink.named("QueueCallerAbandon")


def test_priority_callers_go_ahead() -> None:
    pbx, sink = make_pbx(QueueSpec("q", members=[member("1001")]))
    pbx.run(lambda: pbx.queues.pause("q", "Local/1001@agents/n", True))
    call(pbx)
    call(pbx, prio=10)
    pbx.clock.advance(1.0)
    assert [(e["Position"], e["Count"]) for e in sink.named("QueueCallerJoin")] == [("1", "1"), ("1", "2")]


def test_queue_timeout_is_reported_as_an_abandon_and_the_caller_goes_on() -> None:
    """As real app_queue does (real trace 01): QueueCallerAbandon with the whole wait as HoldTime,
    then QueueCallerLeave, and the caller's dialplan goes on (no hang-up)."""
    pbx, sink = make_pbx(QueueSpec("q", members=[member("9001")]))
    call(pbx, timeout="10")
    pbx.clock.advance(11.0)
    names = [n for n in sink.names() if n in ("QueueCallerAbandon", "QueueCallerLeave")]
    assert names == ["QueueCallerAbandon", "QueueCallerLeave"]
    assert sink.named("QueueCallerAbandon")[0]["HoldTime"] == "10"
    assert [e["Value"] for e in sink.named("VarSet") if e["Variable"] == "AFTER"] == ["TIMEOUT"]


def test_autofill_rings_for_several_callers_at_once() -> None:
    pbx, sink = make_pbx(QueueSpec("q", strategy="linear", members=[member("1001"), member("1002")]))
    call(pbx)
    call(pbx)
    pbx.clock.advance(1.0)
    assert sorted(called(sink)) == ["1001", "1002"]


def test_member_management_errors_use_asterisk_words() -> None:
    pbx, _ = make_pbx(QueueSpec("q", members=[member("1001")]))
    with pytest.raises(QueueError, match="Already there"):
        pbx.queues.add_member("q", "Local/1001@agents/n")
    with pytest.raises(QueueError, match="Member not dynamic"):
        pbx.queues.remove_member("q", "Local/1001@agents/n")
    with pytest.raises(QueueError, match="Interface not found"):
        pbx.queues.pause("nope", "Local/1001@agents/n", True)
    with pytest.raises(QueueError, match="unknown strategy"):
        QueueSpec("bad", strategy="wrandom")
