"""The AMI parser's guarantees, whatever the reads look like: split characters are never lost,
LF works like CRLF, oversized messages are refused, and a consumer may stop and resume."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ami.protocol import MAX_MESSAGE_BYTES, FramingError, Message, MessageParser
from tests.support.ami_peer import TRACES

STREAM = (TRACES / "08-actions.ami").read_bytes() + (TRACES / "10-crlf-injection.ami").read_bytes().partition(
    b"\r\n"
)[2]


def whole(stream: bytes) -> list[Message]:
    return list(MessageParser(expect_banner=True).feed(stream))


def test_chinese_split_byte_by_byte() -> None:
    data = "Event: UserEvent\r\nCaller: 张三李四\r\n\r\n".encode()
    parser = MessageParser()
    messages = [m for i in range(len(data)) for m in parser.feed(data[i : i + 1])]
    assert messages == [Message([("Event", "UserEvent"), ("Caller", "张三李四")])]


@settings(max_examples=60)
@given(st.lists(st.integers(1, len(STREAM) - 1), max_size=40))
def test_any_split_of_a_real_stream_gives_the_same_messages(cuts: list[int]) -> None:
    parser = MessageParser(expect_banner=True)
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    pieces = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert [m for piece in pieces for m in parser.feed(piece)] == whole(STREAM)
    assert parser.banner == "Asterisk Call Manager/11.0.0"


def test_bare_lf_and_text_lines_and_values_with_colons() -> None:
    messages = list(MessageParser().feed(b"Event: X\nData: a: b\nno colon here\n\nEvent: Y\n\n"))
    assert messages == [
        Message([("Event", "X"), ("Data", "a: b"), ("", "no colon here")]),
        Message([("Event", "Y")]),
    ]


def test_a_consumer_may_stop_after_any_message_and_resume() -> None:
    parser = MessageParser()
    first = parser.feed(b"Event: A\r\n\r\nEvent: B\r\n\r\nEvent: C")
    assert next(first).event == "A"
    del first  # the consumer walks away after one message
    assert [m.event for m in parser.feed(b"\r\n\r\n")] == ["B", "C"]


def test_a_message_that_never_ends_is_refused() -> None:
    parser = MessageParser()
    line = b"Output: " + b"x" * 1000 + b"\r\n"
    lines = line * (MAX_MESSAGE_BYTES // len(line) + 2)
    with pytest.raises(FramingError, match="larger than 1 MiB"):
        list(parser.feed(lines))
    with pytest.raises(FramingError, match="without an end"):
        list(MessageParser().feed(b"x" * (MAX_MESSAGE_BYTES + 1)))
