"""Who controls which Asterisk node: a lease in Redis per node, renewed while its holder lives.

Taking, renewing and releasing are Lua scripts that check the holder, so an instance never
extends or drops a lease another instance took over. When the holder dies its
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

# One script, so the lease cannot expire between "is it free?" and "is it mine?" (a holder that is
# late to renew, e.g. on a busy machine, would otherwise see neither and give up its node).
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
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
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self) -> bool:
        """Take the lease if it is free (or already ours); renews it when ours."""
        return bool(await self._acquire(keys=[self.key], args=[self.holder, self.ttl_ms]))

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[self.key], args=[self.holder, self.ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.holder])

    async def owner(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value
