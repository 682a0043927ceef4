"""A simulated channel and the header blocks Asterisk prints for it.

Only what AMI shows exists here: name, ids, state, caller id, connected line, dialplan location,
variables and the application it runs. There is no media and no technology driver: every channel
is one half of a Local channel pair (``Local/<exten>@<context>-XXXXXXXX;1`` / ``;2``), as in the
recorded traces.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from gateway.sim.events import Headers

if TYPE_CHECKING:
    from gateway.sim.bridge import Bridge
    from gateway.sim.pbx import Activity

UNKNOWN = "<unknown>"

DOWN, RING, RINGING, UP = 0, 4, 5, 6
STATE_DESC = {DOWN: "Down", RING: "Ring", RINGING: "Ringing", UP: "Up"}

_SNAPSHOT_FIELDS = (
    "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
    "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid", "Linkedid",
)  # fmt: skip


@cache
def snapshot_keys(prefix: str) -> tuple[str, ...]:
    """``Dest`` -> ``DestChannel, DestChannelState, ...`` (Asterisk prefixes every field)."""
    return tuple(prefix + field for field in _SNAPSHOT_FIELDS)


class Channel:
    """One channel. ``activity`` is whatever currently owns it (dialplan, app, queue, bridge)."""

    __slots__ = (
        "accountcode",
        "activity",
        "answered_at",
        "app",
        "appdata",
        "bridge",
        "cid_name",
        "cid_num",
        "conn_name",
        "conn_num",
        "context",
        "created",
        "dead",
        "exten",
        "half",
        "hangup_cause",
        "in_pbx",
        "language",
        "linkedid",
        "name",
        "partner",
        "priority",
        "state",
        "tags",
        "uniqueid",
        "variables",
    )  # fmt: skip

    def __init__(
        self, name: str, uniqueid: str, linkedid: str, *, context: str, exten: str, state: int,
        created: float, language: str = "en",
    ) -> None:  # fmt: skip
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.context = context
        self.exten = exten
        self.priority = 1
        self.state = state
        self.created = created
        self.language = language
        self.accountcode = ""
        self.cid_num = UNKNOWN
        self.cid_name = UNKNOWN
        self.conn_num = UNKNOWN
        self.conn_name = UNKNOWN
        self.variables: dict[str, str] = {}
        self.app = ""
        self.appdata = ""
        self.answered_at: float | None = None
        self.partner: Channel | None = None  # the other half of the Local pair
        self.bridge: Bridge | None = None
        self.activity: Activity | None = None
        self.in_pbx = False  # runs dialplan (matters for SoftHangupRequest)
        self.dead = False
        self.hangup_cause = 0
        self.tags: dict[str, Any] = {}  # simulator-private facts (seat behaviour, call id)

    @property
    def state_desc(self) -> str:
        return STATE_DESC[self.state]

    def snapshot(self, prefix: str = "") -> Headers:
        values = (
            self.name, str(self.state), STATE_DESC[self.state], self.cid_num, self.cid_name, self.conn_num,
            self.conn_name, self.language, self.accountcode, self.context, self.exten, str(self.priority),
            self.uniqueid, self.linkedid,
        )  # fmt: skip
        return list(zip(snapshot_keys(prefix), values, strict=True))

    def __repr__(self) -> str:
        return f"Channel({self.name})"
