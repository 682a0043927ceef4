"""The tracker on synthetic event flows for what the recorded traces do not show: the dialplan's
UserEvents (intake, callback, survey, hand-over), emergency linkage, cancelled consultations,
ring-all, wrap-up, logging out, and the resync after an outage."""

from __future__ import annotations

import datetime as dt
import itertools

from gateway.ami.protocol import Message
from gateway.calls.model import Call, DeviceStatus, SeatState
from gateway.calls.tracker import CallEnded, CallUpdate, Output, QueueRules, Tracker, UpdateKind
from gateway.vocabulary import (
    DispositionKind,
    HandoverMode,
    HandoverOutcome,
    PartyKind,
    QueueResult,
    TargetKind,
)

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


class Flow:
    """Drives a tracker with hand-written events at chosen seconds."""

    def __init__(self, tracker: Tracker | None = None) -> None:
        self.tracker = tracker or Tracker(
            inbound_contexts=("from-pstn",),
            queue_rules={"hotline-general": QueueRules(service_level_s=15, wrapup_s=10)},
        )
        self.now = 0.0
        self.outputs: list[Output] = []
        self._serial = itertools.count(1)

    def at(self, seconds: float) -> Flow:
        self.now = seconds
        return self

    def send(self, name: str, **headers: str | int) -> None:
        self.outputs += self.tracker.apply(
            Message.of(("Event", name), **headers), self.now, T0 + dt.timedelta(seconds=self.now)
        )

    def snapshot(self, name: str, headers: list[tuple[str, str]]) -> None:
        wall = T0 + dt.timedelta(seconds=self.now)
        self.tracker.apply_snapshot([Message([("Event", name), *headers])], self.now, wall)

    def channel(
        self, device: str, linkedid: str, uniqueid: str | None = None, **extra: str
    ) -> tuple[str, str]:
        uniqueid = uniqueid or f"{linkedid}.{next(self._serial)}"
        channel = f"{device}-{next(self._serial):08x}"
        self.send("Newchannel", Channel=channel, Uniqueid=uniqueid, Linkedid=linkedid, **extra)
        return channel, uniqueid

    def member(self, seat: str, queue: str = "hotline-general", **extra: str | int) -> None:
        fields: dict[str, str | int] = {"Status": 1, "Paused": 0, "Membership": "dynamic", **extra}
        self.send(
            "QueueMemberAdded", Queue=queue, Interface=f"PJSIP/{seat}", MemberName=f"Seat {seat}", **fields
        )

    def inbound(self, linkedid: str, caller: str = "13800000001", line: str = "12345") -> tuple[str, str]:
        return self.channel(
            "PJSIP/carrier-trunk", linkedid, linkedid, Context="from-pstn", Exten=line, CallerIDNum=caller
        )

    def join(self, linkedid: str, uniqueid: str, queue: str = "hotline-general") -> None:
        self.send("QueueCallerJoin", Queue=queue, Uniqueid=uniqueid, Linkedid=linkedid, Position=1, Count=1)

    def ring(self, linkedid: str, via: str, seat: str, queue: str = "hotline-general") -> str:
        _, seat_leg = self.channel(f"PJSIP/{seat}", linkedid)
        self.send(
            "AgentCalled", Queue=queue, Uniqueid=via, Linkedid=linkedid, DestUniqueid=seat_leg,
            DestLinkedid=linkedid, Interface=f"PJSIP/{seat}", MemberName=f"Seat {seat}",
        )  # fmt: skip
        return seat_leg

    def answer(
        self, linkedid: str, via: str, seat_leg: str, seat: str, queue: str = "hotline-general"
    ) -> None:
        self.send("QueueCallerLeave", Queue=queue, Uniqueid=via, Linkedid=linkedid, Count=0)
        self.send(
            "AgentConnect", Queue=queue, Uniqueid=via, Linkedid=linkedid, DestUniqueid=seat_leg,
            DestLinkedid=linkedid, Interface=f"PJSIP/{seat}", HoldTime=0, RingTime=0,
        )  # fmt: skip

    def hangup(self, linkedid: str, uniqueid: str) -> None:
        self.send("Hangup", Uniqueid=uniqueid, Linkedid=linkedid, Cause=16)

    def user_event(self, kind: str, linkedid: str, uniqueid: str, **headers: str) -> None:
        self.send("UserEvent", UserEvent=kind, Uniqueid=uniqueid, Linkedid=linkedid, **headers)

    def answered_call(self, linkedid: str, seat: str = "1001") -> tuple[str, str]:
        """A caller queued, rang ``seat`` for 3 s and was answered at t+8; returns (caller, seat) legs."""
        start = self.now
        self.member(seat)
        _, caller = self.inbound(linkedid)
        self.at(start + 5).join(linkedid, caller)
        seat_leg = self.ring(linkedid, caller, seat)
        self.at(start + 8).answer(linkedid, caller, seat_leg, seat)
        return caller, seat_leg

    def state(self, seat: str) -> SeatState:
        return self.tracker.seats[seat].state

    def ended(self) -> list[Call]:
        return [o.call for o in self.outputs if isinstance(o, CallEnded)]

    def updates(self) -> list[CallUpdate]:
        return [o for o in self.outputs if isinstance(o, CallUpdate)]


def test_intake_user_event_fills_the_record_facts_and_recording() -> None:
    flow = Flow()
    _, caller = flow.inbound("c1", line="12315")
    flow.user_event(
        "HotlineIntake", "c1", caller, LegacyLine="12315", MergeMode="merged", Department="市场监管局",
        Category="010203", Queue="hotline-general", Recording="calls/20261127/c1.wav",
    )  # fmt: skip
    call = flow.tracker.calls["c1"]
    assert (call.legacy_line, call.merge_mode, call.department, call.category_code) == (
        "12315",
        "merged",
        "市场监管局",
        "010203",
    )
    assert call.recordings == ["calls/20261127/c1.wav"]
    # MixMonitor's own argument names the same file with the absolute root: still one recording.
    flow.send(
        "Newexten", Uniqueid=caller, Linkedid="c1", Application="MixMonitor",
        AppData="/var/lib/hotline/recordings/calls/20261127/c1.wav,b",
    )  # fmt: skip
    assert call.recordings == ["calls/20261127/c1.wav"]


def test_callback_request_is_reported_at_once_and_becomes_the_disposition() -> None:
    flow = Flow()
    _, caller = flow.inbound("c1", caller="13900000001")
    flow.at(2).join("c1", caller)
    flow.at(40).send("QueueCallerLeave", Queue="hotline-general", Uniqueid=caller, Linkedid="c1", Count=0)
    flow.user_event(
        "HotlineCallback", "c1", caller, LegacyLine="12345", Queue="hotline-general", JoinTime="1"
    )
    (update,) = flow.updates()
    assert update.kind is UpdateKind.CALLBACK_REQUESTED
    assert update.call is not None
    assert update.call.callback is not None
    assert update.call.callback.number == "13900000001"
    flow.at(45).hangup("c1", caller)
    (call,) = flow.ended()
    assert call.disposition is not None
    assert call.disposition.kind is DispositionKind.CALLBACK_REQUESTED
    assert call.disposition.callback_number == "13900000001"
    assert call.queues[0].result is QueueResult.CALLBACK_REQUESTED
    assert round(call.wait.total) == 38


def test_survey_after_the_seat_hung_up_and_a_late_or_forged_one() -> None:
    flow = Flow()
    caller, seat_leg = flow.answered_call("c1")
    flow.at(60).hangup("c1", seat_leg)
    flow.at(62).user_event("HotlineSurvey", "c1", caller, LegacyLine="12345", Key="1", Result="satisfied")
    flow.user_event("HotlineSurvey", "forged", "x", LegacyLine="12345", Key="1", Result="satisfied")
    flow.at(65).hangup("c1", caller)
    (call,) = flow.ended()
    assert call.survey is not None
    assert (call.survey.result, call.survey.key) == ("satisfied", "1")
    flow.at(66).user_event("HotlineSurvey", "c1", caller, Key="3", Result="dissatisfied")
    flow.user_event("HotlineSurvey", "c1", caller, Key="9", Result="x\nEvent: Hangup")
    (late,) = flow.updates()
    assert late.kind is UpdateKind.LATE_SURVEY
    assert late.survey is not None
    assert late.survey.result == "dissatisfied"


def test_blind_emergency_handover_to_110() -> None:
    flow = Flow()
    caller, seat_leg = flow.answered_call("c1")
    flow.at(30).user_event(
        "HotlineHandover", "c1", caller, Target="110", Kind="emergency", Recording="calls/c1-handover.wav"
    )
    (update,) = flow.updates()
    assert update.kind is UpdateKind.EMERGENCY_HANDOVER
    flow.hangup("c1", seat_leg)  # the Redirect broke the seat's bridge
    _, police = flow.channel("PJSIP/carrier-trunk", "c1")
    flow.send(
        "DialBegin",
        Uniqueid=caller,
        Linkedid="c1",
        DestUniqueid=police,
        DestLinkedid="c1",
        DialString="PJSIP/110@carrier-trunk",
    )
    flow.at(36).send("DialEnd", Uniqueid=caller, DestUniqueid=police, DialStatus="ANSWER")
    flow.at(96).hangup("c1", police)
    flow.hangup("c1", caller)
    (call,) = flow.ended()
    assert call.disposition is not None
    assert call.disposition.kind is DispositionKind.EMERGENCY_HANDOVER
    assert call.disposition.emergency_service == "110"
    (handover,) = call.handovers
    assert (handover.mode, handover.from_seat, handover.target_kind, handover.target, handover.outcome) == (
        HandoverMode.BLIND,
        "1001",
        TargetKind.EMERGENCY,
        "110",
        HandoverOutcome.COMPLETED,
    )
    assert handover.recording == "calls/c1-handover.wav"
    seat, external = call.parties
    assert (external.kind, external.party) == (PartyKind.EXTERNAL, "110")
    assert round(seat.talk.total) == 22  # answered at 8, handed over at 30
    assert round(external.ring.total) == 6
    assert round(external.talk.total) == 60
    assert "calls/c1-handover.wav" in external.recordings


def test_emergency_that_never_answers_is_not_an_emergency_disposition() -> None:
    flow = Flow()
    caller, seat_leg = flow.answered_call("c1")
    flow.at(30).user_event("HotlineHandover", "c1", caller, Target="119", Kind="emergency")
    _, fire = flow.channel("PJSIP/carrier-trunk", "c1")
    flow.send(
        "DialBegin",
        Uniqueid=caller,
        Linkedid="c1",
        DestUniqueid=fire,
        DestLinkedid="c1",
        DialString="119@carrier-trunk",
    )
    flow.at(50).send("DialEnd", Uniqueid=caller, DestUniqueid=fire, DialStatus="BUSY")
    flow.at(51).hangup("c1", seat_leg)
    flow.hangup("c1", caller)
    (call,) = flow.ended()
    assert call.handovers[0].outcome is HandoverOutcome.BUSY
    assert call.disposition is not None
    assert call.disposition.kind is DispositionKind.ANSWERED


def test_consultation_cancelled_when_the_consult_leg_hangs_up_without_transfer() -> None:
    flow = Flow()
    flow.member("1004", queue="policy-specialist")
    caller, seat_leg = flow.answered_call("c1")
    flow.at(20).send("Hold", Uniqueid=seat_leg, Linkedid="c1")
    _, consult = flow.channel("Local/7004@hotline-handover", "c1")
    flow.join("c1", consult, queue="policy-specialist")
    (handover,) = flow.tracker.calls["c1"].handovers
    assert (handover.mode, handover.outcome) == (HandoverMode.CONSULT, HandoverOutcome.PENDING)
    assert flow.tracker.queues["policy-specialist"].offered == 1
    flow.at(50).hangup("c1", consult)
    assert handover.outcome is HandoverOutcome.CANCELLED
    flow.send("Unhold", Uniqueid=seat_leg, Linkedid="c1")
    flow.at(70).hangup("c1", caller)
    flow.hangup("c1", seat_leg)
    (call,) = flow.ended()
    assert round(call.hold.total) == 30
    assert round(call.wait.total) == 3  # the consultation's 30 s in policy-specialist is not the caller's
    assert call.seat_ids == ["1001"]


def test_ring_all_other_seats_are_offered_but_not_billed() -> None:
    flow = Flow()
    flow.member("1001")
    flow.member("1002")
    _, caller = flow.inbound("c1")
    flow.join("c1", caller)
    leg1 = flow.ring("c1", caller, "1001")
    leg2 = flow.ring("c1", caller, "1002")
    assert {flow.tracker.seats[s].state for s in ("1001", "1002")} == {SeatState.RINGING}
    flow.at(4).answer("c1", caller, leg2, "1002")
    flow.hangup("c1", leg1)  # app_queue hangs up the losers
    assert flow.tracker.seats["1001"].state is SeatState.READY
    assert flow.tracker.seats["1002"].state is SeatState.ON_CALL
    call = flow.tracker.calls["c1"]
    loser = call.parties[0]
    assert loser.no_answer
    assert loser.talk.total == 0.0
    assert round(call.ring.seconds(4)) == 4  # both rang at once: counted once


def test_wrap_up_then_ready_and_time_in_state() -> None:
    flow = Flow()
    caller, seat_leg = flow.answered_call("c1")
    flow.at(100).hangup("c1", caller)
    flow.hangup("c1", seat_leg)
    seat = flow.tracker.seats["1001"]
    assert flow.state("1001") is SeatState.WRAP_UP  # hotline-general wrapup_s=10
    (call,) = flow.ended()
    assert call.wrap_up_s == 10.0
    flow.tracker.tick(105, T0)
    assert flow.state("1001") is SeatState.WRAP_UP
    flow.tracker.tick(110, T0)
    assert flow.state("1001") is SeatState.READY
    assert seat.seconds_in[SeatState.ON_CALL] == 92.0
    assert seat.seconds_in[SeatState.WRAP_UP] == 10.0
    assert seat.calls_taken == 1


def test_pause_with_reason_logout_and_unavailable_device() -> None:
    flow = Flow()
    flow.member("1001")
    seat = flow.tracker.seats["1001"]
    assert flow.state("1001") is SeatState.READY
    flow.at(5).send(
        "QueueMemberPause", Queue="hotline-general", Interface="PJSIP/1001", Paused=1, PausedReason="培训"
    )
    assert (seat.state, seat.paused_reason, seat.state_since) == (SeatState.PAUSED, "培训", 5.0)
    flow.send("QueueMemberStatus", Queue="hotline-general", Interface="PJSIP/1001", Status=5)
    assert flow.state("1001") is SeatState.LOGGED_OUT
    assert seat.device_status is DeviceStatus.UNAVAILABLE
    flow.send("QueueMemberStatus", Queue="hotline-general", Interface="PJSIP/1001", Status=1, Paused=0)
    assert flow.state("1001") is SeatState.READY
    flow.send("QueueMemberRemoved", Queue="hotline-general", Interface="PJSIP/1001")
    assert flow.state("1001") is SeatState.LOGGED_OUT


def test_queue_figures_state_their_denominators() -> None:
    flow = Flow()
    flow.member("1001")
    for n, answer_after in enumerate((10, 20)):
        _, caller = flow.at(n * 100).inbound(f"c{n}")
        flow.join(f"c{n}", caller)
        leg = flow.ring(f"c{n}", caller, "1001")
        flow.at(n * 100 + answer_after).answer(f"c{n}", caller, leg, "1001")
    _, waiting = flow.at(300).inbound("c9")
    flow.join("c9", waiting)
    figures = flow.tracker.queues["hotline-general"]
    assert (figures.offered, figures.answered, figures.answered_within_sl) == (3, 2, 1)
    assert figures.service_level_of_answered == 0.5
    assert figures.average_wait_of_answered_s == 15.0
    assert figures.longest_wait_s(312) == 12.0


def test_threeway_with_an_emergency_service_originated_into_the_conference() -> None:
    flow = Flow()
    caller, seat_leg = flow.answered_call("c1")
    for leg in (seat_leg, caller):
        flow.send("ConfbridgeJoin", Conference="7107", Uniqueid=leg, Linkedid="c1")
    _, police = flow.channel("Local/110@hotline-outbound", "o1", "o1", Exten="110")
    flow.at(20).send(
        "ConfbridgeJoin",
        Conference="7107",
        Uniqueid=police,
        Linkedid="o1",
        Channel="Local/110@hotline-outbound-0000000a;1",
    )
    (update,) = flow.updates()
    assert update.kind is UpdateKind.EMERGENCY_HANDOVER
    flow.at(80).hangup("c1", caller)
    (call,) = flow.ended()
    (handover,) = call.handovers
    assert (handover.mode, handover.target_kind, handover.target, handover.outcome) == (
        HandoverMode.THREEWAY,
        TargetKind.EMERGENCY,
        "110",
        HandoverOutcome.COMPLETED,
    )
    assert call.disposition is not None
    assert call.disposition.emergency_service == "110"
    assert round(call.parties[-1].talk.total) == 60


def test_unknown_ids_and_events_change_nothing() -> None:
    flow = Flow()
    flow.send("Hangup", Uniqueid="nope", Linkedid="nope")
    flow.send("AgentConnect", Queue="q", Uniqueid="x", DestUniqueid="y", Interface="PJSIP/1")
    flow.send("QueueCallerLeave", Queue="q", Uniqueid="x")
    flow.send("AttendedTransfer", Result="Success", TransfereeUniqueid="x")
    flow.send("FakeEvent2")
    flow.send("UserEvent", UserEvent="HotlineCallback", Linkedid="nope")
    assert flow.tracker.calls == {}
    assert flow.outputs == []
    assert flow.tracker.live_legs == 0


def test_ended_calls_are_forgotten_after_a_while() -> None:
    flow = Flow(Tracker(ended_memory=2))
    for n in range(3):
        _, leg = flow.inbound(f"c{n}")
        flow.hangup(f"c{n}", leg)
    assert list(flow.tracker.state.ended) == ["c1", "c2"]


def test_resync_rebuilds_from_snapshot_and_closes_what_vanished() -> None:
    flow = Flow()
    flow.member("1001")
    flow.member("1002")
    _, gone = flow.inbound("gone")
    flow.at(1).join("gone", gone)
    _, seat_leg = flow.at(2).answered_call("kept")

    flow.at(100)
    flow.tracker.begin_resync()
    assert flow.tracker.stale
    for uniqueid, channel, application in (
        ("kept", "PJSIP/carrier-trunk-00000002", "Queue"),
        (seat_leg, "PJSIP/1001-00000004", "AppQueue"),
        ("new", "PJSIP/carrier-trunk-00000009", "Queue"),
    ):
        flow.snapshot(
            "CoreShowChannel",
            [("Channel", channel), ("Uniqueid", uniqueid), ("Linkedid", "kept" if uniqueid != "new" else "new"),
             ("Context", "from-pstn"), ("Exten", "12345"), ("CallerIDNum", "13700000000"),
             ("Application", application), ("Duration", "00:00:30")],
        )  # fmt: skip
    flow.snapshot(
        "QueueEntry", [("Queue", "hotline-general"), ("Uniqueid", "new"), ("Wait", "30"), ("Position", "1")]
    )
    flow.snapshot(
        "QueueMember",
        [
            ("Queue", "hotline-general"),
            ("Location", "PJSIP/1001"),
            ("Name", "Seat 1001"),
            ("Status", "2"),
            ("Paused", "0"),
        ],
    )
    outputs = flow.tracker.end_resync(100, T0 + dt.timedelta(seconds=100))

    assert not flow.tracker.stale
    (vanished,) = [o.call for o in outputs if isinstance(o, CallEnded)]
    assert vanished.call_id == "gone"
    assert vanished.disposition is not None
    assert vanished.disposition.kind is DispositionKind.PBX_OUTAGE
    assert vanished.queues[0].result is QueueResult.PBX_OUTAGE
    assert set(flow.tracker.calls) == {"kept", "new"}
    assert flow.tracker.calls["kept"].seat_ids == ["1001"]
    assert flow.tracker.queues["hotline-general"].longest_wait_s(100) == 30.0
    assert set(flow.tracker.seats["1002"].memberships) == set()  # not listed by QueueStatus: gone
    assert flow.tracker.seats["1001"].state is SeatState.ON_CALL


def test_resync_counts_a_caller_already_talking_to_a_seat_as_answered_in_its_queue() -> None:
    """Defect 4 (issue 13): QueueStatus lists only waiting callers; a caller the gateway never saw
    join, already bridged with a seat, is a channel in Queue() sharing a bridge with the seat's
    AppQueue leg (trace 08's Status answer). It counts as offered and answered, once."""
    flow = Flow()
    flow.member("1001")
    flow.at(500)

    def resync() -> None:
        flow.tracker.begin_resync()
        rows = [
            ("Local/12345@from-pstn-16;1", "old", "Wait", "60", "", "40"),
            ("Local/12345@from-pstn-16;2", "old-2", "Queue", "hotline-general,tT,,,120", "b1", "40"),
            ("PJSIP/1001-00000017", "old-3", "AppQueue", "(Outgoing Line)", "b1", "30"),
        ]
        flow.tracker.apply_snapshot(
            [
                Message([("Event", "Status"), ("Channel", channel), ("Uniqueid", uniqueid), ("Linkedid", "old"),
                         ("Context", "from-pstn"), ("Exten", "12345"), ("Application", application),
                         ("Data", data), ("BridgeID", bridge), ("Seconds", seconds)])
                for channel, uniqueid, application, data, bridge, seconds in rows
            ],
            flow.now, T0,
        )  # fmt: skip
        flow.tracker.end_resync(flow.now, T0)

    resync()
    call = flow.tracker.calls["old"]
    (visit,) = call.queues
    assert (visit.queue, visit.leg, visit.result) == ("hotline-general", "old-2", QueueResult.ANSWERED)
    assert visit.wait_s(500) == 10.0  # joined with its channel, answered when the seat was rung
    (party,) = call.parties
    assert (party.party, party.queue) == ("1001", "hotline-general")
    figures = flow.tracker.queues["hotline-general"]
    assert (figures.offered, figures.answered, figures.answered_within_sl) == (1, 1, 1)
    assert not figures.waiting

    flow.at(510)
    resync()  # the next snapshot finds the same call: counted once
    assert (figures.offered, figures.answered) == (1, 1)
    flow.hangup("old", "old-3")
    flow.hangup("old", "old-2")
    flow.hangup("old", "old")
    (ended,) = flow.ended()
    assert ended.disposition is not None
    assert ended.disposition.kind is DispositionKind.ANSWERED
    assert [v.result for v in ended.queues] == [QueueResult.ANSWERED]


def test_a_call_that_hangs_up_while_the_snapshot_is_collected_stays_ended() -> None:
    """Its Hangup events arrive after the Status answer, before the snapshot is applied (the resync
    still waits for QueueStatus): the snapshot, taken before, must not bring the call back."""
    flow = Flow()
    flow.at(500)
    flow.tracker.begin_resync()
    flow.hangup("late", "late.2")
    flow.hangup("late", "late")
    for uniqueid, channel in (
        ("late", "PJSIP/carrier-trunk-00000001"),
        ("late.2", "Local/12345@from-pstn-01;2"),
    ):
        flow.snapshot(
            "CoreShowChannel",
            [("Channel", channel), ("Uniqueid", uniqueid), ("Linkedid", "late"), ("Context", "from-pstn"),
             ("Exten", "12345"), ("Application", "Playback"), ("Duration", "00:01:00")],
        )  # fmt: skip
    flow.tracker.end_resync(500, T0)
    assert "late" not in flow.tracker.calls
    assert flow.tracker.live_legs == 0


def test_resync_adopts_a_call_it_never_saw_with_its_seat() -> None:
    flow = Flow()
    flow.member("1003")
    flow.at(500)
    flow.tracker.begin_resync()
    flow.snapshot(
        "CoreShowChannel",
        [("Channel", "PJSIP/carrier-trunk-00000001"), ("Uniqueid", "old"), ("Linkedid", "old"), ("Context", "from-pstn"),
         ("Exten", "12345"), ("CallerIDNum", "13600000000"), ("Application", "Queue"), ("Duration", "00:02:00")],
    )  # fmt: skip
    flow.snapshot(
        "CoreShowChannel",
        [("Channel", "PJSIP/1003-00000002"), ("Uniqueid", "old.2"), ("Linkedid", "old"), ("Context", "agents"),
         ("Application", "AppQueue"), ("Duration", "00:01:30")],
    )  # fmt: skip
    flow.snapshot(
        "QueueMember",
        [("Queue", "hotline-general"), ("Location", "PJSIP/1003"), ("Status", "2"), ("Paused", "0")],
    )
    flow.tracker.end_resync(500, T0)
    call = flow.tracker.calls["old"]
    assert call.caller_number == "13600000000"
    assert call.seat_ids == ["1003"]
    assert call.parties[0].talk.seconds(500) == 90.0
    flow.at(510).hangup("old", "old.2")
    flow.hangup("old", "old")
    (ended,) = flow.ended()
    assert ended.disposition is not None
    assert ended.disposition.kind is DispositionKind.ANSWERED
