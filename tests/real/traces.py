"""Recording raw AMI traces from the real PBX into ``tests/fixtures/ami-traces-real/``.

A scenario runs inside ``recorded(stack, "NN-name", about)``: a fresh AMI session of the PBX's
read-all recorder user keeps every byte. With ``HOTLINE_RECORD_TRACES=1`` the session is written
out as ``NN-name.ami`` (bytes received), ``NN-name.sent.ami`` (bytes sent; the bench's random
secret replaced by ``recorder-secret``) and ``NN-name.md`` (what was done, the key events);
otherwise nothing is written, so a test run never rewrites the fixtures.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from tests.conftest import FIXTURES
from tests.real.ami import Ami, parse
from tests.real.asterisk import RECORDER_USER
from tests.real.conftest import RealStack

TRACES_REAL = FIXTURES / "ami-traces-real"
# Events that say what happened to calls, queues and seats (the .md lists these, in order).
KEY_EVENTS = {
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled", "AgentConnect",
    "AgentComplete", "AgentRingNoAnswer", "QueueMemberPause", "QueueMemberStatus", "QueueMemberAdded",
    "QueueMemberRemoved", "BlindTransfer", "AttendedTransfer", "ChanSpyStart", "ChanSpyStop",
    "UserEvent", "Hangup", "OriginateResponse", "ConfbridgeJoin", "ConfbridgeLeave", "Hold", "Unhold",
    "BridgeMerge", "DialBegin", "DialEnd",
}  # fmt: skip


@contextlib.asynccontextmanager
async def recorded(stack: RealStack, name: str, about: str) -> AsyncIterator[Ami]:
    secret = stack.pbx_secrets_recorder
    async with Ami(stack.pbx.ami_port, RECORDER_USER, secret) as ami:
        try:
            yield ami
        finally:  # a scenario that shows a known defect is worth recording too
            if os.environ.get("HOTLINE_RECORD_TRACES") == "1":
                _save(ami, name, about, secret)


def _save(ami: Ami, name: str, about: str, secret: str) -> None:
    ami.sent[:] = bytes(ami.sent).replace(secret.encode(), b"recorder-secret")
    ami.save(TRACES_REAL, name)
    blocks = bytes(ami.received).split(b"\r\n\r\n")
    lines = []
    for block in blocks:
        message = parse(block)
        event = message.get("Event", "")
        if event in KEY_EVENTS:
            fields = ", ".join(
                f"{k}={message[k]}"
                for k in ("Queue", "Channel", "UserEvent", "Reason", "Paused", "PausedReason", "Status",
                          "HoldTime", "RingTime", "TalkTime", "Result", "DialStatus", "Cause")
                if k in message
            )  # fmt: skip
            lines.append(f"{event}  [{fields}]")
    (TRACES_REAL / f"{name}.md").write_text(
        f"# {name}\n\n{about}\n\nRecorded by `tests/real` (HOTLINE_RECORD_TRACES=1) from a real Asterisk 22 "
        "running the repo's `docker/asterisk/` + `dialplans/` over SIP (seats and carrier are a second "
        f"Asterisk), as manager user `{RECORDER_USER}` (read=all). The gateway acted through its own "
        "session; this one only listened.\n\n"
        f"Size: {len(ami.received)} bytes received, {len(blocks) - 1} messages.\n\n"
        "## What was done\n\n```\n" + "\n".join(ami.notes) + "\n```\n\n"
        "## Key events, in order\n\n```\n" + "\n".join(lines) + "\n```\n",
        encoding="utf-8",
    )
