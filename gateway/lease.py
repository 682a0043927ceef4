"""Who controls which Asterisk node: a lease in Redis per node, renewed while its holder lives.

``SET NX PX`` takes a free lease; renewing and releasing check the holder in a Lua script, so an
instance never extends or drops a lease another instance took over. When the holder dies its
lease expires within ``ttl_ms`` and a standby takes the node. While Redis is unreachable nobody
can take anything over, so the holder keeps controlling its node (better than no controller);
two controllers for a moment are harmless, because every call record is idempotent by key.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis.asyncio as aioredis

from gateway import keys

DEFAULT_TTL_MS = 5000

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def instance_id() -> str:
    """Unique per process, readable in Redis: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class NodeLease:
    def __init__(
        self, redis: aioredis.Redis, node: str, holder: str, *, ttl_ms: int = DEFAULT_TTL_MS
    ) -> None:
        self.redis = redis
        self.node = node
        self.holder = holder
        self.ttl_ms = ttl_ms
        self.key = keys.lease(node)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self) -> bool:
        """Take the lease if it is free (or already ours); renews it when ours."""
        if await self.redis.set(self.key, self.holder, nx=True, px=self.ttl_ms):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[self.key], args=[self.holder, self.ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.holder])

    async def owner(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value
