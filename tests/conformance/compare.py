"""Normalise two AMI streams and compare them the way the conformance tests promise.

What must be equal:
- per channel (``Channel`` or ``DestChannel``, names with the ``-XXXXXXXX`` counter renumbered by
  first appearance): the same events in the same order, each with the same header names in the same
  order and the same values for the fields that carry meaning (application, variable, cause, queue,
  position, reason, dial status, state; Linkedid after renumbering), times within 1 s;
- per action (ActionID): the same response (Response, header names, Message, number of Output
  lines) and the same list items as a multiset (Asterisk lists queues and channels in hash order);
- per bridge, queue member, conference, transfer and "global" (session, security, system events):
  the same sequence and shapes.
What is deliberately looser, because Asterisk itself is not deterministic there:
- ``AgentComplete`` is compared per queue and interface and its channel blocks are optional: it
  is sent from a stasis callback and carries snapshots of whatever channels still exist;
- ``DeviceStateChange``: only the set of devices and their final state;
- ``ListCommands``: the simulator lists the actions it implements, a subset of Asterisk's;
- values that are ids, timestamps, addresses, counters and statistics are not compared.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.ami.protocol import Message, MessageParser

_COUNTER = re.compile(r"^((?:Local|CBAnn)/[^;]*?)-([0-9a-f]{8});(\d)$")
TIME_FIELDS = {"HoldTime", "TalkTime", "RingTime", "Wait", "Seconds", "AnsweredTime", "LongestHoldTime"}
MEANINGFUL = {
    "Application", "AppData@Newexten", "Variable", "Cause", "Queue", "Position", "Count", "OriginalPosition",
    "Reason", "DialStatus", "ChannelStateDesc", "Interface", "MemberName", "Membership", "Paused",
    "PausedReason", "Conference", "UserEvent", "Result", "DestType", "IsExternal", "BridgeType",
    "BridgeTechnology", "BridgeCreator", "BridgeNumChannels", "Context", "Extension", "Exten", "Priority",
    "Response", "Message", "EventList", "ListItems", "Module", "Status", "Shutdown", "Restart", "Digit",
    "Class", "Linkedid", "Penalty", "Ringinuse", "Events", "Ping", "Family", "Key", "Val",
}  # fmt: skip
# Fields whose value is a channel name (renumbered, then compared).
CHANNEL_FIELDS = {"Channel", "DestChannel", "TransfererChannel", "TransfereeChannel", "OrigTransfererChannel",
                  "SecondTransfererChannel", "TransferTargetChannel", "LocalOneChannel", "LocalTwoChannel",
                  "SpyerChannel", "SpyeeChannel"}  # fmt: skip
# Snapshot fields that race in Asterisk (taken by another thread a moment earlier or later).
RACY = {"Exten", "Context", "Priority", "ChannelStateDesc", "Status"}


def banner_of(stream: bytes) -> str:
    return stream.split(b"\r\n", 1)[0].decode()


class Renumber:
    """Counters, Uniqueids and bridge ids replaced by their order of first appearance."""

    def __init__(self) -> None:
        self.counters: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    def channel(self, name: str) -> str:
        match = _COUNTER.match(name)
        if not match:
            return name
        key = f"{match.group(1)}-{match.group(2)}"
        number = self.counters.setdefault(key, f"#{len(self.counters) + 1}")
        return f"{match.group(1)}-{number};{match.group(3)}"

    def ident(self, value: str) -> str:
        return self.ids.setdefault(value, f"id{len(self.ids) + 1}") if value else value


@dataclass
class Item:
    name: str
    fields: tuple[str, ...]
    values: dict[str, str]

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.values.items() if k not in ("Linkedid",))
        return f"{self.name}[{shown}]"


@dataclass
class Normalised:
    groups: dict[tuple[str, ...], list[Item]] = field(default_factory=lambda: defaultdict(list))
    devices: dict[str, str] = field(default_factory=dict)


def _item(message: Message, renumber: Renumber, *, optional_channels: bool = False) -> Item:
    name = message.event or f"Response:{message.response}"
    fields: list[str] = []
    values: dict[str, str] = {}
    outputs = 0
    for key, value in message.headers:
        if key in ("Event", "Response"):
            continue
        if key == "Output":
            outputs += 1
            continue
        fields.append(key)
        if key in CHANNEL_FIELDS:
            values[key] = renumber.channel(value)
        elif key == "Linkedid" or key.endswith("BridgeUniqueid"):
            values[key] = renumber.ident(value)
        elif key in TIME_FIELDS:
            values[key] = value
        elif key in MEANINGFUL or (key == "AppData" and message.event == "Newexten"):
            values.setdefault(key, value)
    if outputs:
        values["Output lines"] = str(outputs)
    if optional_channels:
        fields = [f for f in fields if not _in_channel_block(f)]
        values = {k: v for k, v in values.items() if not _in_channel_block(k)}
    return Item(name, tuple(fields), values)


_BLOCK = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
          "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid", "Linkedid")  # fmt: skip


def _in_channel_block(key: str) -> bool:
    return key in _BLOCK or (key.startswith("Dest") and key[4:] in _BLOCK)


def normalise(messages: Iterable[Message]) -> Normalised:
    out = Normalised()
    renumber = Renumber()
    for message in messages:
        event = message.event
        if event is None or message.action_id is not None:
            # Responses and the list events they announce are compared per action.
            out.groups[("action", message.action_id or "")].append(_item(message, renumber))
            continue
        if event == "DeviceStateChange":
            out.devices[message.get("Device") or ""] = message.get("State") or ""
            continue
        if event == "AgentComplete":
            by_member = ("complete", message.get("Queue") or "", message.get("Interface") or "")
            out.groups[by_member].append(_item(message, renumber, optional_channels=True))
            continue
        item = _item(message, renumber)
        # ChanSpyStart/Stop belong to both the spy's and the spied-on channel's sequence.
        keys: list[tuple[str, ...]] = [("channel", item.values[h]) for h in ("Channel", "DestChannel",
                                       "SpyerChannel", "SpyeeChannel") if h in item.values]  # fmt: skip
        if not keys:
            keys = [_other_group(message, item)]
        for key in keys:
            out.groups[key].append(item)
    return out


def _other_group(message: Message, item: Item) -> tuple[str, ...]:
    event = message.event or ""
    if event.startswith("Bridge"):
        return ("bridge", item.values.get("BridgeUniqueid") or item.values.get("ToBridgeUniqueid", ""))
    if event == "LocalBridge":
        return ("channel", item.values.get("LocalOneChannel", ""))
    if event in ("BlindTransfer", "AttendedTransfer"):
        return (
            "transfer",
            item.values.get("TransfererChannel") or item.values.get("OrigTransfererChannel", ""),
        )
    if event.startswith("QueueMember"):
        return ("member", message.get("Queue") or "", message.get("Interface") or "")
    if event.startswith("Confbridge"):
        return ("conference", message.get("Conference") or "")
    return ("global",)


def _same(expected: Item, actual: Item, *, where: str) -> list[str]:
    problems = []
    if expected.name != actual.name:
        return [f"{where}: expected {expected.describe()}, got {actual.describe()}"]
    if expected.fields != actual.fields:
        problems.append(f"{where}: {expected.name} fields differ\n    expected {list(expected.fields)}\n"
                        f"    got      {list(actual.fields)}")  # fmt: skip
    for key, value in expected.values.items():
        got = actual.values.get(key)
        if key in TIME_FIELDS:
            if got is None or abs(int(got or 0) - int(value or 0)) > 1:
                problems.append(f"{where}: {expected.name}.{key} expected {value}, got {got}")
        elif key in RACY and expected.name not in ("Newexten", "Newstate", "QueueMemberPause"):
            continue
        elif got != value:
            problems.append(f"{where}: {expected.name}.{key} expected {value!r}, got {got!r}")
    return problems


# Adjacent events that Asterisk sends from two threads, so either order is right (trace 12, recorded
# three times): the bridge thread re-announcing BRIDGEPEER vs ChanSpy's ChanSpyStop; the Local
# channel's Ringing state vs dial.c's DialBegin. Both streams get the first of each pair second.
RACES = {("VarSet", "ChanSpyStop"), ("Newstate", "DialBegin")}


def _canonical(items: list[Item]) -> list[Item]:
    out = list(items)
    for _ in range(len(out)):
        swapped = False
        for i in range(len(out) - 1):
            if (out[i].name, out[i + 1].name) in RACES:
                out[i], out[i + 1] = out[i + 1], out[i]
                swapped = True
        if not swapped:
            break
    return out


def _compare_sequence(key: tuple[str, ...], expected: list[Item], actual: list[Item]) -> list[str]:
    where = "/".join(key)
    expected, actual = _canonical(expected), _canonical(actual)
    names_e = [i.name for i in expected]
    names_a = [i.name for i in actual]
    if names_e != names_a:
        return [f"{where}: event sequence differs\n    expected {names_e}\n    got      {names_a}"]
    problems: list[str] = []
    for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
        problems += _same(e, a, where=f"{where}#{index}")
    return problems


def _compare_action(key: tuple[str, ...], expected: list[Item], actual: list[Item]) -> list[str]:
    """Response first, then list items as a multiset, the *Complete event last."""
    if not expected or not actual:
        return [f"{'/'.join(key)}: expected {len(expected)} messages, got {len(actual)}"]
    if "ListCommands" in expected[0].fields:
        missing = set(actual[0].fields) - set(expected[0].fields)
        return (
            [f"{'/'.join(key)}: ListCommands names actions Asterisk lacks: {sorted(missing)}"]
            if missing
            else []
        )
    problems = _same(expected[0], actual[0], where="/".join(key) + " response")
    tail_e, tail_a = expected[1:], actual[1:]
    complete = [i for i in tail_e if i.name.endswith("Complete")]
    if complete:
        if not tail_a or tail_a[-1].name != complete[-1].name:
            problems.append(f"{'/'.join(key)}: list does not end with {complete[-1].name}")
        else:
            problems += _same(complete[-1], tail_a[-1], where="/".join(key) + " complete")
        tail_e, tail_a = [i for i in tail_e if i not in complete], tail_a[:-1]

    def signature(item: Item) -> tuple[str, tuple[str, ...]]:
        return item.name, item.fields

    if Counter(map(signature, tail_e)) != Counter(map(signature, tail_a)):
        problems.append(f"{'/'.join(key)}: list items differ\n    expected {[i.describe() for i in tail_e]}\n"
                        f"    got      {[i.describe() for i in tail_a]}")  # fmt: skip
    return problems


def compare(recorded: bytes, simulated: bytes) -> list[str]:
    """Every difference between the recorded and the simulated stream, as readable lines."""
    problems: list[str] = []
    if banner_of(recorded) != banner_of(simulated):
        problems.append(f"banner: expected {banner_of(recorded)!r}, got {banner_of(simulated)!r}")
    expected = normalise(_messages(recorded))
    actual = normalise(_messages(simulated))
    for key in sorted(set(expected.groups) | set(actual.groups)):
        e, a = expected.groups.get(key, []), actual.groups.get(key, [])
        if key[0] == "action":
            problems += _compare_action(key, e, a)
        else:
            problems += _compare_sequence(key, e, a)
    if set(expected.devices) != set(actual.devices):
        missing = sorted(set(expected.devices) - set(actual.devices))
        extra = sorted(set(actual.devices) - set(expected.devices))
        problems.append(f"DeviceStateChange devices differ: missing {missing}, extra {extra}")
    for device, state in expected.devices.items():
        if device in actual.devices and actual.devices[device] != state:
            problems.append(f"device {device}: final state expected {state}, got {actual.devices[device]}")
    return problems


def _messages(stream: bytes) -> list[Message]:
    return list(MessageParser(expect_banner=True).feed(stream))
