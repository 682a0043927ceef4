"""Browser sessions kept server-side in Redis, so logging out (or an admin) ends them for real.

The cookie stays signed (``gateway.web.auth``) so a forged one is refused without asking Redis;
what Redis holds decides whether a genuine one is still alive: ``keys.session(id)`` expires with
the session, and ``keys.sessions_of(name)`` lists a credential's sessions for revoking them all.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from gateway import keys


@dataclass(frozen=True)
class SessionData:
    role: str
    name: str  # the credential that logged in
    seat: str | None


class SessionStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def start(self, data: SessionData, seconds: int) -> str:
        session_id = secrets.token_urlsafe(18)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.session(session_id), json.dumps(asdict(data)), ex=seconds)
            pipe.sadd(keys.sessions_of(data.name), session_id)
            pipe.expire(keys.sessions_of(data.name), seconds)
            await pipe.execute()
        return session_id

    async def read(self, session_id: str) -> SessionData | None:
        raw = await self.redis.get(keys.session(session_id))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return SessionData(str(data["role"]), str(data["name"]), data["seat"] and str(data["seat"]))
        except (ValueError, KeyError, TypeError):
            return None  # Redis contents are untrusted: a mangled entry is no session

    async def end(self, session_id: str, name: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.session(session_id))
            pipe.srem(keys.sessions_of(name), session_id)
            await pipe.execute()

    async def end_all(self, name: str) -> int:
        """End every session of credential ``name``; how many there were."""
        members = await self.redis.smembers(keys.sessions_of(name))
        ids = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
        await self.redis.delete(keys.sessions_of(name), *(keys.session(i) for i in ids))
        return len(ids)
