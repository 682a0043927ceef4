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


def one_line_at_a_time(stream: bytes) -> list[Message]:
    """The parser's rules stated plainly: complete lines, one CR stripped, a message per empty line."""
    messages: list[Message] = []
    pending: list[tuple[str, str]] = []
    for raw in stream.split(b"\n")[:-1]:
        line = raw.decode("utf-8", errors="replace").removesuffix("\r")
        if not line:
            if pending:
                messages.append(Message(pending))
            pending = []
            continue
        name, sep, value = line.partition(":")
        pending.append((name.strip(), value.removeprefix(" ")) if sep else ("", line))
    return messages


_ODD_TEXT = st.text(alphabet="ab: \t\r\n\x0b\x1c\x85\xa0张\xe4", max_size=30)  # \xe4: a bad UTF-8 byte


@settings(max_examples=300, deadline=None)
@given(st.lists(_ODD_TEXT, max_size=12), st.lists(st.integers(0, 400), max_size=8))
def test_odd_text_split_anywhere_parses_like_one_line_at_a_time(lines: list[str], cuts: list[int]) -> None:
    """Stray CRs, spaces around names, colons in values, blank runs, Unicode spaces, bad UTF-8."""
    stream = "\n".join(lines).encode("utf-8").replace("\xe4".encode(), b"\xe4") + b"\r\n\r\n"
    parser = MessageParser()
    bounds = [0, *sorted({c for c in cuts if c < len(stream)}), len(stream)]
    got = [m for a, b in itertools.pairwise(bounds) for m in parser.feed(stream[a:b])]
    assert got == one_line_at_a_time(stream)


def test_lookups_take_the_first_value_and_ignore_case_only_when_spelt_differently() -> None:
    message = Message([("Event", "A"), ("Variable", "x=1"), ("Variable", "y=2"), ("actionid", "7")])
    assert (message.event, message["Variable"], message.action_id) == ("A", "x=1", "7")
    assert message.getall("variable") == ["x=1", "y=2"]
    assert message.as_dict() == {"Event": "A", "Variable": "x=1", "actionid": "7"}
    message.add("Channel", "Local/1")
    assert message.get("CHANNEL") == "Local/1"
    assert "Missing" not in message
