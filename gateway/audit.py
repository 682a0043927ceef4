"""The audit log: one function (``AuditLog.record``) for every state change and authentication failure.

Each entry (who, role, seat, action, target, result, client, time) goes out as a structured log
line and into the Redis stream ``keys.AUDIT`` (capped, approximately, at ``keys.AUDIT_MAXLEN``).
The log line is written first, so Redis being down loses nothing a log collector keeps. The
web layer writes one entry per state-changing request and per refused authentication
(``gateway.web.audit``); the ``credentials`` command writes its own. ``read`` serves the admins'
``GET /api/audit``, newest first, with filters.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from gateway import keys

log = structlog.get_logger(__name__)

FILTERS = ("who", "role", "seat", "action", "target", "result")


@dataclass(frozen=True)
class AuditEntry:
    who: str  # the credential's name ("anonymous" when authentication failed)
    role: str
    seat: str
    action: str  # e.g. "POST /api/agents/{seat}/{verb}" or "credentials.rotate"
    target: str  # what it acted on: the path's ids
    result: str  # the HTTP status and error code, or "ok"
    client: str  # the peer address
    at: float = field(default_factory=time.time)  # epoch seconds, UTC


class AuditLog:
    def __init__(
        self, redis: aioredis.Redis, stream: str = keys.AUDIT, maxlen: int = keys.AUDIT_MAXLEN
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.maxlen = maxlen

    async def record(self, entry: AuditEntry) -> None:
        fields = {k: str(v) for k, v in asdict(entry).items()}
        log.info("audit", **fields)
        try:
            # redis-py's stubs want a dict keyed by its whole (invariant) union of field types.
            await self.redis.xadd(
                self.stream, cast(dict[Any, Any], fields), maxlen=self.maxlen, approximate=True
            )
        except (RedisError, OSError) as exc:
            log.error("audit.not_stored", error=str(exc), **fields)

    async def read(
        self, filters: Mapping[str, str], *, since: float = 0.0, limit: int = 100, scan: int = 10_000
    ) -> list[dict[str, str]]:
        """Newest first: up to ``limit`` entries at or after ``since`` matching every filter exactly.

        At most ``scan`` entries are looked at, so a query over a year-long stream stays cheap.
        """
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise ValueError(
                f"unknown audit filter(s) {', '.join(sorted(unknown))}; use {', '.join(FILTERS)}"
            )
        min_id = f"{int(since * 1000)}-0" if since else "-"
        out: list[dict[str, str]] = []
        for entry_id, raw in await self.redis.xrevrange(self.stream, "+", min_id, count=scan) or []:
            entry = {_text(k): _text(v) for k, v in (raw or {}).items()}
            if all(entry.get(k) == v for k, v in filters.items()):
                out.append({"id": _text(entry_id), **entry})
                if len(out) >= limit:
                    break
        return out


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
