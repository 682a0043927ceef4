"""The local spool: durable appends, two-phase draining, torn lines kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.records.spool import Spool, SpoolError


def test_appended_records_come_back_in_order_after_a_claim(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool" / "records.jsonl")
    assert not spool.has_records()
    spool.append([b'{"n":1}', b'{"n":2}'])
    spool.append([b'{"n":3}'])
    assert spool.has_records()
    (claimed,) = spool.claim()
    assert not spool.path.exists()
    assert spool.read(claimed) == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    spool.release(claimed)
    assert not spool.has_records()


def test_appends_during_a_drain_go_to_a_fresh_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "records.jsonl")
    spool.append([b'{"n":1}'])
    (claimed,) = spool.claim()
    spool.append([b'{"n":2}'])
    spool.release(claimed)
    (second,) = spool.claim()
    assert spool.read(second) == [b'{"n":2}']


def test_a_claimed_file_left_by_a_crash_is_drained_next_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "records.jsonl")
    spool.append([b'{"n":1}'])
    spool.claim()  # then the process died before release
    spool.append([b'{"n":2}'])
    reopened = Spool(tmp_path / "records.jsonl")
    claimed = reopened.claim()
    assert [line for path in claimed for line in reopened.read(path)] == [b'{"n":1}', b'{"n":2}']


def test_a_torn_last_line_is_kept_apart_and_never_glued_to_the_next_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "records.jsonl")
    spool.append([b'{"n":1}'])
    with spool.path.open("ab") as raw:
        raw.write(b'{"n":2, "cut')  # a crash in the middle of a write
    spool.append([b'{"n":3}'])
    (claimed,) = spool.claim()
    assert spool.read(claimed) == [b'{"n":1}', b'{"n":3}']
    assert (tmp_path / "records.jsonl.corrupt").read_bytes() == b'{"n":2, "cut\n'


def test_an_unwritable_spool_raises_a_gateway_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(SpoolError, match="cannot append to spool"):
        Spool(blocker / "records.jsonl").append([b"{}"])
