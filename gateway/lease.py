"""Who controls which Asterisk node: a lease in Redis per node, renewed while its holder lives.

Taking, renewing and releasing are Lua scripts that check the holder, so an instance never
extends or drops a lease another instance took over. When the holder dies its
lease expires within ``ttl_ms`` and a standby takes the node. While Redis is unreachable nobody
can take anything over, so the holder keeps controlling its node (better than no controller);
two controllers for a moment are harmless, because every call record is idempotent by key.
"""

from __future__ import annotations

import fcntl
import os
import socket
import uuid
from pathlib import Path
from typing import IO

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


_HELD: list[IO[str]] = []  # id files this process holds locked, open for its lifetime


def instance_id(home: Path | None = None) -> str:
    """Unique per instance, readable in Redis: host and a random suffix (plus the pid without ``home``).

    With ``home`` (the instance's spool directory) the id is kept there under an exclusive lock,
    so an instance a supervisor restarts takes its own lease back at once instead of waiting out
    its TTL; a second live process on the same directory cannot take the lock and gets its own id.
    """
    fresh = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if home is None:
        return fresh
    try:
        home.mkdir(parents=True, exist_ok=True)
        handle = (home / "instance-id").open("a+", encoding="ascii")
    except OSError:
        return fresh
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return fresh  # another live instance owns this directory's id
    handle.seek(0)
    kept = handle.read().strip()
    if not (kept and len(kept) <= 200 and kept.isprintable()):
        kept = fresh
        handle.seek(0)
        handle.truncate()
        handle.write(kept + "\n")
        handle.flush()
    _HELD.append(handle)
    return kept


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
