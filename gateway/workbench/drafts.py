"""The seats' work-order drafts (工单草稿) in Redis: saved as the seat types, never lost with the browser.

One draft per call (``hotline:draft:<call id>``), shared by every seat on the call: the expert a
call is handed to finds what the first seat wrote. Each save gets the next ``version`` and the
server's time, atomically (a Lua script), so the newest save wins whatever order requests land
in. The seat's latest call is kept beside it, so a reloaded page finds its draft again. Drafts
live a week: long enough for every record of the call, short enough not to pile up.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from gateway import keys
from gateway.records.model import Handling, ShortText, WorkOrderDraft
from gateway.vocabulary import CATEGORY, anchored

KEEP_S = 7 * 86_400

# KEYS: the draft hash, the seat's last-call key. ARGV: draft JSON (version 0), TTL, call id.
_SAVE = """
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
local draft = cjson.decode(ARGV[1])
draft['version'] = v
local text = cjson.encode(draft)
redis.call('HSET', KEYS[1], 'draft', text)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[2])
return text
"""


class DraftInput(BaseModel):
    """What the page sends: the form as typed. Checked here; the category against the tree by the caller."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    summary: Annotated[str, Field(max_length=2000)] = ""
    category_code: Annotated[str, Field(pattern=anchored(CATEGORY))] | None = None
    handling: Handling | None = None
    department: ShortText | None = None
    urgent: bool = False


class DraftStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._save = redis.register_script(_SAVE)

    async def save(self, call_id: str, seat: str, draft: DraftInput, now: dt.datetime) -> WorkOrderDraft:
        body = WorkOrderDraft(seat_id=seat, version=1, saved_at=now, **draft.model_dump())
        text = await self._save(
            keys=[keys.draft(call_id), keys.seat_last_call(seat)],
            args=[body.model_dump_json(), KEEP_S, call_id],
        )
        return WorkOrderDraft.model_validate_json(text)

    async def get(self, call_id: str) -> WorkOrderDraft | None:
        return (await self.get_many([call_id])).get(call_id)

    async def get_many(self, call_ids: list[str]) -> dict[str, WorkOrderDraft]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for call_id in call_ids:
                pipe.hget(keys.draft(call_id), "draft")
            found = await pipe.execute()
        return {
            call_id: WorkOrderDraft.model_validate_json(text)
            for call_id, text in zip(call_ids, found, strict=True)
            if text
        }

    async def last_call(self, seat: str) -> str | None:
        found = await self._redis.get(keys.seat_last_call(seat))
        return found.decode() if isinstance(found, bytes) else found
