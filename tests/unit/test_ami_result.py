"""Answer collection: one ``ActionResult`` whatever shape Asterisk answered in (trace 08)."""

from __future__ import annotations

import asyncio

from gateway.ami.protocol import Message, MessageParser
from gateway.ami.result import ActionResult, PendingAction
from tests.support.ami_peer import TRACES


def recorded(action_id: str) -> list[Message]:
    stream = (TRACES / "08-actions.ami").read_bytes()
    return [m for m in MessageParser(expect_banner=True).feed(stream) if m.action_id == action_id]


async def collect(action: str, messages: list[Message]) -> tuple[ActionResult | None, list[bool]]:
    pending = PendingAction(action, "x", asyncio.get_running_loop().create_future())
    taken = [pending.feed(m) for m in messages]
    return (pending.future.result() if pending.future.done() else None), taken


async def test_list_with_complete_event() -> None:
    result, taken = await collect("CoreShowChannels", recorded("coreshowchannels-64"))
    assert result is not None
    assert all(taken)
    assert len(result.events) == 6
    assert result.complete is not None
    assert result.complete["ListItems"] == "6"


async def test_hangup_by_regex_is_a_list_too() -> None:
    result, _ = await collect("Hangup", recorded("hangup-83"))
    assert result is not None
    assert [e.event for e in result.events] == ["ChannelHungup"]


async def test_a_plain_response_completes_at_once_and_later_events_stay_events() -> None:
    messages = recorded("userevent-90")  # Response "Event Sent", then the UserEvent echo with our ActionID
    result, taken = await collect("UserEvent", messages)
    assert result is not None
    assert result.message == "Event Sent"
    assert taken == [True, False]


async def test_command_output_lines_and_error_text() -> None:
    result, _ = await collect("Command", recorded("command-52"))
    assert result is not None
    assert not result.ok
    assert result.output[0].startswith("No such command 'no such cli command'")


async def test_complete_event_without_eventlist_header_still_ends_the_list() -> None:
    start = Message.of(("Response", "Success"), ActionID="x", EventList="start")
    item = Message.of(("Event", "DBGetResponse"), ActionID="x")
    done = Message.of(("Event", "DBGetComplete"), ActionID="x")
    result, _ = await collect("DBGet", [start, item, done])
    assert result is not None
    assert result.events == (item,)
    assert result.complete == done
