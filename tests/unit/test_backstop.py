"""The records backstop's pure parts: reading the PBX's log of ended calls, deciding what to report,
and the record it builds."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ami import safety
from gateway.ami.errors import UnsafeValueError
from gateway.contract import ENDED_CONTEXT, ENDED_LOG_FIELDS, ENDED_LOG_VERSION
from gateway.records.backstop import (
    LoggedCall,
    Recorded,
    build_record,
    ghosts,
    hours,
    parse_entry,
    report_as_of,
)
from gateway.records.model import CallbackOutcome, Origin, Stage, SurveyResult, record_id_for, revision_for
from gateway.vocabulary import DispositionKind, MergeMode, QueueResult
from tests.unit.test_render import DIALPLAN

KEY = "/hotline-ended-20261127/02/1795753200.41"
ARRIVED = 1795753200  # 2026-11-27 02:20:00 UTC


def entry(**fields: str) -> str:
    """A log value as the dialplan writes it; an answered call with a survey unless told otherwise."""
    values = {
        "line": "12315", "mode": "parallel", "department": "市场监督管理局", "category": "020100",
        "caller": "13912345678", "queue": "hotline-general", "arrived": str(ARRIVED),
        "joined": str(ARRIVED + 9), "queued": str(ARRIVED + 39), "held": "12", "talk": "95",
        "seat": "Local/1001@agents/n", "handed_from": "", "survey_key": "2", "survey": "basic",
        "callback": "", "recording": "calls/20261127/1795753200.42.wav", "ended": str(ARRIVED + 160),
    } | fields  # fmt: skip
    return "|".join((ENDED_LOG_VERSION, *(values[name] for name, _ in ENDED_LOG_FIELDS)))


def parsed(**fields: str) -> LoggedCall:
    found = parse_entry(KEY, entry(**fields))
    assert found is not None
    return found


def at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ARRIVED + seconds, dt.UTC)


def test_the_rendered_handler_writes_the_fields_the_backstop_reads() -> None:
    [write] = [step for step in DIALPLAN[ENDED_CONTEXT]["s"] if step.data.startswith("DB(")]
    key, _, value = write.data.partition("=")
    assert re.fullmatch(r"DB\(hotline-ended-\$\{STRFTIME\(.*,UTC,%Y%m%d\)\}/\$\{STRFTIME\(.*,UTC,%H\)\}"
                        r"/\$\{CHANNEL\(linkedid\)\}\)", key)  # fmt: skip
    assert value == "|".join((ENDED_LOG_VERSION, *(expression for _, expression in ENDED_LOG_FIELDS)))
    intake = [step.data for step in DIALPLAN["hotline-intake"]["s"]]
    assert f"CHANNEL(hangup_handler_push)={ENDED_CONTEXT},s,1" in intake


def test_parse_reads_the_linkedid_and_every_field() -> None:
    call = parsed()
    assert call.linkedid == "1795753200.41"
    assert call.text("department") == "市场监督管理局"
    assert call.text("handed_from") is None
    assert (call.epoch("joined"), call.ended) == (ARRIVED + 9, ARRIVED + 160)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (KEY, entry().replace("v1|", "v2|", 1)),  # a newer dialplan than this gateway
        (KEY, entry() + "|extra"),
        (KEY, entry(ended="")),
        (KEY, entry(ended="nan")),
        ("/hotline-ended-20261127/02", entry()),
        ("/other-family/02/1795753200.41", entry()),
        ("/hotline-ended-20261127/02/has space", entry()),
    ],
)
def test_parse_refuses_what_it_cannot_read(key: str, value: str) -> None:
    assert parse_entry(key, value) is None


def test_hours_cover_every_utc_hour_across_midnight() -> None:
    start = dt.datetime(2026, 11, 27, 22, 59, 59, tzinfo=dt.UTC).timestamp()
    assert hours(start, start + 3600 + 2) == [
        ("hotline-ended-20261127", "22"), ("hotline-ended-20261127", "23"), ("hotline-ended-20261128", "00"),
    ]  # fmt: skip
    assert hours(start, start) == [("hotline-ended-20261127", "22")]


def test_what_the_backstop_reports() -> None:
    call = parsed()
    ended = at(160)
    assert report_as_of(call, live=False, recorded=None) == ended, "nobody recorded it"
    assert report_as_of(call, live=True, recorded=None) is None, "the live path ends it"
    live_record = Recorded(revision_for(ended + dt.timedelta(seconds=1), Stage.FINAL))
    assert report_as_of(call, live=False, recorded=live_record) is None
    guessed = ended + dt.timedelta(seconds=30)  # closed as an outage when the link came back
    outage = Recorded(revision_for(guessed, Stage.FINAL), outage=True)
    corrected = report_as_of(call, live=False, recorded=outage)
    assert corrected == guessed + dt.timedelta(milliseconds=1)
    assert revision_for(corrected, Stage.FINAL) > outage.revision, "the correction outranks the guess"
    early_guess = Recorded(revision_for(ended - dt.timedelta(seconds=5), Stage.FINAL), outage=True)
    assert report_as_of(call, live=False, recorded=early_guess) == ended


@given(st.integers(min_value=1_000_000_000_000, max_value=4_000_000_000_000))
def test_a_correction_always_outranks_the_guess(millis: int) -> None:
    outage = Recorded(millis * 10 + 2, outage=True)
    as_of = report_as_of(parsed(), live=False, recorded=outage)
    assert as_of is not None
    assert revision_for(as_of, Stage.FINAL) > outage.revision
    assert as_of >= at(160)


def test_calls_the_tracker_still_holds_long_after_their_logged_end_are_ghosts() -> None:
    call = parsed()
    live = {call.linkedid}
    assert ghosts([call], live, now=ARRIVED + 160 + 30) == [], "its Hangup may still be on its way"
    assert ghosts([call], live, now=ARRIVED + 160 + 61) == [call.linkedid]
    assert ghosts([call], set(), now=ARRIVED + 999) == [], "not live: nothing to fix"


def test_markers_round_trip() -> None:
    for recorded in (Recorded(17724385130002), Recorded(17724385130002, outage=True)):
        assert Recorded.from_marker(recorded.marker()) == recorded
    assert Recorded.from_marker("garbage") is None


def test_an_answered_call_with_its_seat_times_survey_and_recording() -> None:
    record = build_record(parsed(), "pbx-1", at(160))
    assert record.record_id == record_id_for("pbx-1", "1795753200.41")
    assert (record.stage, record.origin, record.revision) == (
        Stage.FINAL,
        Origin.PBX_LOG,
        revision_for(at(160), Stage.FINAL),
    )
    assert (record.caller_number, record.legacy_line, record.merge_mode) == (
        "13912345678",
        "12315",
        MergeMode.PARALLEL,
    )
    assert (record.department, record.category_code) == ("市场监督管理局", "020100")
    assert record.times.model_dump() == {
        "arrived_at": at(0), "queue_joined_at": at(9), "answered_at": at(51), "ended_at": at(160),
    }  # fmt: skip
    assert (record.durations.wait_s, record.durations.talk_s) == (42.0, 95.0)
    assert record.seat_ids == ["1001"]
    [leg] = record.legs
    assert (leg.party, leg.answered_at, leg.ended_at, leg.talk_s) == ("1001", at(51), at(146), 95.0)
    [visit] = record.queues
    assert (visit.queue, visit.joined_at, visit.left_at, visit.result) == (
        "hotline-general", at(9), at(51), QueueResult.ANSWERED)  # fmt: skip
    assert record.survey is not None
    assert (record.survey.result, record.survey.key) == (SurveyResult.BASIC, "2")
    assert record.disposition.kind is DispositionKind.ANSWERED
    assert record.recordings == ["calls/20261127/1795753200.42.wav"]


def test_an_abandoned_call() -> None:
    call = parsed(held="", talk="", seat="", survey_key="", survey="", ended=str(ARRIVED + 70))
    record = build_record(call, "pbx-1", at(70))
    assert record.disposition.kind is DispositionKind.ABANDONED
    assert record.disposition.abandoned_after_s == 61.0
    assert (record.seat_ids, record.legs, record.survey, record.times.answered_at) == ([], [], None, None)
    assert record.queues[0].result is QueueResult.ABANDONED


def test_a_caller_who_left_before_the_queue() -> None:
    call = parsed(
        joined="", queued="", held="", talk="", seat="", survey="", survey_key="", ended=str(ARRIVED + 4)
    )
    record = build_record(call, "pbx-1", at(4))
    assert (record.queues, record.durations.wait_s, record.disposition.abandoned_after_s) == ([], 0.0, 4.0)


def test_a_callback_request_names_the_number_to_call_back() -> None:
    call = parsed(held="", talk="", seat="", survey="", survey_key="", callback=str(ARRIVED + 100))
    record = build_record(call, "pbx-1", at(160))
    assert record.disposition.kind is DispositionKind.CALLBACK_REQUESTED
    assert record.disposition.callback_number == "13912345678"
    assert record.callback is not None
    assert (record.callback.requested_at, record.callback.outcome) == (at(100), CallbackOutcome.PENDING)
    assert record.queues[0].result is QueueResult.CALLBACK_REQUESTED


def test_a_handed_over_call_keeps_both_seats() -> None:
    call = parsed(handed_from="Local/1001@agents/n", seat="Local/2002@agents/n")
    assert build_record(call, "pbx-1", at(160)).seat_ids == ["1001", "2002"]
    nobody_took_it = parsed(handed_from="Local/1001@agents/n", seat="")
    record = build_record(nobody_took_it, "pbx-1", at(160))
    assert (record.seat_ids, record.disposition.kind) == (["1001"], DispositionKind.ANSWERED)


def test_odd_values_become_null_never_a_lost_record() -> None:
    call = parsed(caller="", line="1x", mode="teleport", category="12", survey="maybe", recording="x" * 300,
                  queue="bad queue", arrived="", seat="SIP/")  # fmt: skip
    record = build_record(call, "pbx-1", at(160))
    assert (record.caller_number, record.legacy_line, record.merge_mode, record.category_code) == (None,) * 4
    assert (record.survey, record.recordings, record.queues) == (None, [], [])
    assert record.times.arrived_at == at(160), "an unknown arrival is the end"


def test_db_get_tree_is_a_reporting_action_with_checked_names() -> None:
    action = safety.db_get_tree("hotline-ended-20261127", "02")
    assert "reporting" in action.privileges
    assert action.headers == (("Family", "hotline-ended-20261127"), ("Key", "02"))
    for family in ("fam\r\nAction: DBDelTree", "fam*", ""):
        with pytest.raises(UnsafeValueError):
            safety.db_get_tree(family)
