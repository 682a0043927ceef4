"""The dashboard's snapshot: every node's live state added up, and the deltas the page receives."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.calls.model import Seat, SeatState
from gateway.dialplan.routing import build_routing
from gateway.merge.loader import load_config
from gateway.queues.stats import CHINA_TZ, KpiBook
from gateway.web.snapshot import (
    LinkView,
    NodeLive,
    QueueLive,
    SeatCounts,
    SeatJson,
    SeatView,
    SeatViews,
    Snapshot,
    Wire,
    build_snapshot,
    read_live,
)
from tests.conftest import ROOT

NOON = dt.datetime(2026, 11, 27, 12, 0, tzinfo=CHINA_TZ).timestamp()
CONFIG = load_config(ROOT / "hotline_merge.yaml")
PLAN = build_routing(CONFIG)
READY = LinkView("ready", False, "")


def seat(node: str, extension: str, state: str = "ready", since: float = NOON - 60) -> SeatView:
    return SeatView(node, extension, f"坐席{extension}", state, "", since, 3, ["hotline-general"])


def node(
    name: str, waiting: int, longest: float, ready: int, at: float = NOON, link: LinkView = READY
) -> NodeLive:
    counts = SeatCounts(logged_in=ready, ready=ready)
    seats = [seat(name, str(1001 + i)) for i in range(ready)]
    return NodeLive(name, at, link, [QueueLive("hotline-general", waiting, longest, counts)], seats)


def picture(*live: NodeLive, link: LinkView = READY) -> Snapshot:
    return build_snapshot(
        home="pbx-1",
        link=link,
        live=list(live),
        plan=PLAN,
        config=CONFIG,
        book=KpiBook(),
        wall=dt.datetime.fromtimestamp(NOON, dt.UTC),
    )


def test_nodes_add_up_per_queue_and_seats_keep_their_node() -> None:
    snap = picture(node("pbx-2", 5, 40.0, 4), node("pbx-1", 2, 10.0, 3))
    general = next(q for q in snap.queues if q.name == "hotline-general")
    assert (general.waiting, general.longest_wait_s, general.seats.ready, general.seats.logged_in) == (
        7,
        40.0,
        7,
        7,
    )
    assert not snap.link.stale
    # Both cities have a seat 1001: one tile each, by node then extension.
    assert [(s.node, s.extension) for s in snap.seats][:4] == [
        ("pbx-1", "1001"), ("pbx-1", "1002"), ("pbx-1", "1003"), ("pbx-2", "1001"),
    ]  # fmt: skip
    assert next(q for q in snap.queues if q.name != "hotline-general").waiting == 0


def test_a_late_or_broken_node_makes_the_picture_stale_naming_it() -> None:
    late = node("pbx-3", 1, 1.0, 1, at=NOON - 30)
    broken = node("pbx-2", 0, 0.0, 1, link=LinkView("ready", True, "正在与Asterisk重新同步"))
    snap = picture(node("pbx-1", 0, 0.0, 1), late, broken)
    assert snap.link.stale
    assert "节点 pbx-3 的数据已 30 秒未更新" in snap.link.reason
    assert "节点 pbx-2: 正在与Asterisk重新同步" in snap.link.reason
    # The home node's own problem reads as it is, and its AMI phase is the page's.
    home = picture(node("pbx-1", 0, 0.0, 1), link=LinkView("connecting", True, "与Asterisk的连接中断"))
    assert (home.link.ami, home.link.reason) == ("connecting", "与Asterisk的连接中断")


def test_a_mirror_reads_back_equal() -> None:
    live = node("pbx-2", 5, 40.0, 4)
    text = live.to_json(SeatJson())
    assert read_live("hotline:live:pbx-2", text, node="pbx-2") == live
    assert read_live("hotline:live:pbx-3", text, node="pbx-3") is None  # under another node's name
    forged = json.loads(text)
    forged["seats"][0]["extension"] = "1001\r\nAction: Hangup"
    assert read_live("hotline:live:pbx-2", json.dumps(forged), node="pbx-2") is None


def test_an_unchanged_seat_keeps_its_view_and_a_change_makes_a_new_one() -> None:
    wall = dt.datetime.fromtimestamp(NOON, dt.UTC)
    tracked = Seat("1001", "PJSIP/1001", "张三", SeatState.READY, 100.0, wall)
    views = SeatViews("pbx-1")
    [first] = views([tracked])
    assert (first.node, first.state, first.since) == ("pbx-1", "ready", NOON)
    assert views([tracked])[0] is first
    tracked.state, tracked.state_since = SeatState.ON_CALL, 130.0
    tracked.state_since_wall = wall + dt.timedelta(seconds=30)
    [second] = views([tracked])
    assert (second.state, second.since) == ("on_call", NOON + 30)


def test_seat_views_follow_seats_that_come_and_go_in_extension_order() -> None:
    wall = dt.datetime.fromtimestamp(NOON, dt.UTC)
    seats = {e: Seat(e, f"PJSIP/{e}", e, SeatState.READY, 100.0, wall) for e in ("1003", "1001", "1002")}
    views = SeatViews("pbx-1")
    assert [v.extension for v in views(seats.values())] == ["1001", "1002", "1003"]
    del seats["1002"]
    seats["1000"] = Seat("1000", "PJSIP/1000", "1000", SeatState.READY, 100.0, wall)
    assert [v.extension for v in views(seats.values())] == ["1000", "1001", "1003"]
    assert views([]) == []


def apply(whole: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """What the page does with a delta (gateway/web/static/dashboard.js ``applyDelta``)."""
    out = whole | {k: v for k, v in delta.items() if k not in ("base", "seats", "gone")}
    seats = {(s["node"], s["extension"]): s for s in whole["seats"]}
    seats |= {(s["node"], s["extension"]): s for s in delta["seats"]}
    for gone in delta["gone"]:
        del seats[tuple(gone)]
    out["seats"] = [seats[key] for key in sorted(seats)]
    return out


seat_sets = st.dictionaries(
    st.tuples(st.sampled_from(["pbx-1", "pbx-2"]), st.sampled_from(["1001", "1002", "1003", "2001"])),
    st.tuples(st.sampled_from(["ready", "on_call", "paused"]), st.integers(0, 3)),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(seat_sets, st.sampled_from(["", "正在与Asterisk重新同步"])), min_size=1, max_size=6)
)
def test_deltas_applied_in_turn_give_each_snapshot_whole(steps: list[tuple[dict[Any, Any], str]]) -> None:
    wire = Wire()
    shown: dict[str, Any] | None = None
    for number, (seats, reason) in enumerate(steps, start=1):
        views = [seat(n, e, state, NOON - 60 * since) for (n, e), (state, since) in sorted(seats.items())]
        snap = Snapshot(
            f"2026-11-27T04:00:{number:02d}Z", LinkView("ready", bool(reason), reason), [], views, [], {}
        )
        delta = json.loads(wire.advance(snap, base=number - 1))
        assert delta["base"] == number - 1
        whole = wire.whole()
        assert whole == snap.to_json()
        shown = json.loads(whole) if shown is None else apply(shown, delta)
        assert shown == json.loads(whole)
