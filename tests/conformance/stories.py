"""A call as the gateway sees it, in a form a real PBX's trace and a simulator run can both give.

The real traces (``tests/fixtures/ami-traces-real``) come from a real Asterisk with SIP seats and
a SIP carrier; the simulator runs the same rendered dialplan with simulated phones. Byte-level
comparison (``compare.py``) does not apply: the channel technologies, ids and the actions' senders
differ. What must agree is what the gateway decides on: the events its manager user receives
(read classes and eventfilter of ``gateway.contract``) for one call, per party, in order, with
the fields that carry meaning. Parties are named by role, in order of appearance: ``caller``
(the citizen's channel that runs the dialplan), ``seat1;1``/``seat1;2``/``phone1`` (the first
seat's Local pair and its phone), ``seat2...``, ``consult;1``/``consult;2`` (an Atxfer's leg).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.ami.protocol import MessageParser
from gateway.contract import CONTROLLER_USER_READ, TRACKED_EVENTS

# Per event, the fields compared (beside the event's name and its party).
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "QueueCallerJoin": ("Queue",), "QueueCallerAbandon": ("Queue",), "QueueCallerLeave": ("Queue",),
    "AgentCalled": ("Queue",), "AgentConnect": ("Queue",), "AgentRingNoAnswer": ("Queue",),
    "DialBegin": (), "DialEnd": ("DialStatus",), "Hold": (), "Unhold": (), "Hangup": (),
    "AttendedTransfer": ("Result",), "BlindTransfer": ("Result",), "UserEvent": ("UserEvent",),
    "QueueMemberPause": ("Queue", "Paused", "PausedReason"), "Newchannel": (),
}  # fmt: skip
_CLASSES = set(CONTROLLER_USER_READ.split(","))
_AGENTS = re.compile(r"^Local/(\d+)@agents-[0-9a-f]+;([12])$")
_PHONE = re.compile(r"^PJSIP/(\d+)-[0-9a-f]+$")
_CONSULT = re.compile(r"^Local/\d+@hotline-handover-[0-9a-f]+;([12])$")
_INTERFACE = re.compile(r"^Local/(\d+)@agents")

Step = tuple[str, tuple[tuple[str, str], ...]]  # event name, compared fields


@dataclass
class Story:
    """One call's gateway-visible events per party; ``order``: the parties' first appearance."""

    parties: dict[str, list[Step]] = field(default_factory=dict)

    def add(self, party: str, step: Step) -> None:
        self.parties.setdefault(party, []).append(step)


def visible(events: Iterable[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
    """What the controller user receives: a tracked event of a class it reads."""
    return [
        (name, headers)
        for name, headers in events
        if name in TRACKED_EVENTS and _CLASSES & set(headers.get("Privilege", "").split(","))
    ]


def read_trace(data: bytes) -> list[tuple[str, dict[str, str]]]:
    messages = MessageParser(expect_banner=True).feed(data)
    return [(m.event, m.as_dict()) for m in messages if m.event is not None]


def story_of(events: list[tuple[str, dict[str, str]]], linkedid: str, caller: str) -> Story:
    """The call ``linkedid`` (``caller``: its citizen channel) told party by party."""
    seats: dict[str, str] = {}  # extension -> seatN

    def seat(ext: str) -> str:
        return seats.setdefault(ext, f"seat{len(seats) + 1}")

    def party(channel: str) -> str | None:
        if channel == caller:
            return "caller"
        if m := _AGENTS.match(channel):
            return f"{seat(m[1])};{m[2]}"
        if (m := _PHONE.match(channel)) and m[1] in seats:
            return f"phone{seats[m[1]][4:]}"
        if m := _CONSULT.match(channel):
            return f"consult;{m[1]}"
        return None

    story = Story()
    for name, f in events:
        fields = tuple((k, f.get(k, "")) for k in KEY_FIELDS.get(name, ()))
        if name == "QueueMemberPause":
            m = _INTERFACE.match(f.get("Interface", ""))
            if m and m[1] in seats:
                story.add(seats[m[1]], (name, fields))
            continue
        if name in ("AttendedTransfer", "BlindTransfer"):  # about several channels: the call's own line
            if linkedid in (f.get("OrigTransfererLinkedid"), f.get("TransfererLinkedid")):
                story.add("transfer", (name, fields))
            continue
        if name not in KEY_FIELDS or f.get("Linkedid") != linkedid:
            continue
        who = party(f.get("Channel", ""))
        if who is not None:
            story.add(who, (name, fields))
    return story


def differences(real: Story, sim: Story) -> list[str]:
    """Per party: what the real PBX sent that the simulator did not, and the other way round."""
    found = []
    for who in sorted(real.parties.keys() | sim.parties.keys()):
        a, b = real.parties.get(who, []), sim.parties.get(who, [])
        if a != b:
            found.append(f"{who}: real {_text(a)} / simulator {_text(b)}")
    return found


def _text(steps: list[Step]) -> str:
    return "[" + ", ".join(name + "".join(f" {k}={v}" for k, v in fields) for name, fields in steps) + "]"
