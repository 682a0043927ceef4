"""Every Redis key and key prefix the gateway uses, in one place (as arq keeps its own).

All gateway instances of a deployment share one Redis; these names are how they find each
other's data, so they are defined once here and built only through these helpers. Prefixes that
a test or a second deployment may change are dataclass fields with the shipped default.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "hotline"

LEASE: Final = f"{PREFIX}:lease"  # + ":<node>": which instance controls a PBX node
LIVE: Final = f"{PREFIX}:live"  # + ":<node>": the node's latest live snapshot, for other instances
LIVE_NODES: Final = f"{PREFIX}:live-nodes"  # ZSET node -> when it last wrote its live state (epoch s)
TRANSFER: Final = f"{PREFIX}:transfer"  # + ":<id>": a transfer as JSON, for every instance's API
CALLBACK_ORDER: Final = f"{PREFIX}:callbacks:order"  # ZSET call id -> original JoinTime (epoch seconds)
CALLBACK_ENTRIES: Final = f"{PREFIX}:callbacks:entries"  # HASH call id -> entry JSON
CALLBACK_RECORDS: Final = f"{PREFIX}:callbacks:records"  # HASH call id -> the call's final record JSON
RECORDS: Final = f"{PREFIX}:records"
FEEDBACK: Final = f"{RECORDS}:feedback"
KPI: Final = f"{PREFIX}:kpi"
DRAFT: Final = f"{PREFIX}:draft"  # + ":<call id>": HASH version, draft (the seats' work-order draft)
SEAT_LAST_CALL: Final = f"{PREFIX}:seat-last-call"  # + ":<extension>": the call its draft is for
CREDENTIALS: Final = (
    f"{PREFIX}:credentials"  # HASH credential name -> its salted scrypt hash, role, seat, expiry
)
SESSION: Final = f"{PREFIX}:session"  # + ":<id>": a browser session (STRING, expires with it)
SESSIONS_OF: Final = f"{PREFIX}:sessions"  # + ":<credential name>": SET of its session ids
AUDIT: Final = f"{PREFIX}:audit"  # STREAM: who did what to what, and every authentication failure
AUDIT_MAXLEN: Final = 1_000_000  # about a year of a busy centre; trimmed approximately
REPORTS: Final = f"{PREFIX}:reports"


def lease(node: str) -> str:
    return f"{LEASE}:{node}"


def live(node: str) -> str:
    return f"{LIVE}:{node}"


def session(session_id: str) -> str:
    return f"{SESSION}:{session_id}"


def sessions_of(name: str) -> str:
    return f"{SESSIONS_OF}:{name}"


def draft(call_id: str) -> str:
    return f"{DRAFT}:{call_id}"


def seat_last_call(extension: str) -> str:
    return f"{SEAT_LAST_CALL}:{extension}"


def transfer(transfer_id: str) -> str:
    return f"{TRANSFER}:{transfer_id}"


@dataclass(frozen=True)
class OutboxKeys:
    """The call records' keys; one prefix per deployment (all PBX nodes share the stream)."""

    prefix: str = RECORDS
    group: str = "order-system"  # the stream's consumer group (not a key)

    @property
    def stream(self) -> str:
        return f"{self.prefix}:outbox"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    def seen(self, idempotency_key: str) -> str:
        return f"{self.prefix}:seen:{idempotency_key}"

    def alive(self, consumer: str) -> str:
        """A dispatcher's heartbeat (expires soon after it dies): its pending entries are fair game."""
        return f"{self.prefix}:dispatcher:{consumer}:alive"

    def produced(self, record_id: str) -> str:
        """A record with this id went into the outbox: the order system may post feedback on it."""
        return f"{self.prefix}:produced:{record_id}"

    def final(self, record_id: str) -> str:
        """The backstop's marker: a final record of this call is in the outbox."""
        return f"{self.prefix}:final:{record_id}"

    def swept_until(self, pbx_node: str) -> str:
        """PBX epoch seconds up to which the backstop has read the node's ended-call log."""
        return f"{self.prefix}:backstop:{pbx_node}:swept-until"


@dataclass(frozen=True)
class FeedbackKeys:
    """The order system's feedback: one hash per record, one sorted set per kind and outcome."""

    prefix: str = FEEDBACK

    def record(self, record_id: str) -> str:
        return f"{self.prefix}:{record_id}"

    def outcome(self, kind: str, outcome: str) -> str:
        return f"{self.prefix}:{kind}:{outcome}"


@dataclass(frozen=True)
class KpiKeys:
    """KPI minute buckets: one hash per scope and UTC day, one per gauge and day, and their indexes."""

    prefix: str = KPI

    def counts(self, scope: str, day: str) -> str:
        return f"{self.prefix}:{scope}:{day}"

    def gauge(self, name: str, day: str) -> str:
        return f"{self.prefix}:gauge:{name}:{day}"

    @property
    def scopes(self) -> str:
        return f"{self.prefix}:scopes"

    @property
    def gauges(self) -> str:
        return f"{self.prefix}:gauges"


@dataclass(frozen=True)
class ReportKeys:
    """The report buckets (a hash per Beijing day and per month) and each record's two keys.

    The reports' Lua script builds the day and month names from ``prefix`` the same way
    (``gateway.reports.store``).
    """

    prefix: str = REPORTS

    def day(self, day: dt.date) -> str:
        return f"{self.prefix}:day:{day:%Y%m%d}"

    def month(self, month: str) -> str:
        return f"{self.prefix}:month:{month}"

    def record(self, record_id: str) -> str:
        return f"{self.prefix}:record:{record_id}"

    def increments(self, record_id: str) -> str:
        return f"{self.prefix}:record:{record_id}:increments"
