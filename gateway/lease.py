"""Who controls which Asterisk node: a lease in Redis per node, renewed while its holder lives.

Taking, renewing and releasing are Lua scripts that check the holder, so an instance never
extends or drops a lease another instance took over. When the holder dies its
lease expires within ``ttl_ms`` and a standby takes the node. While Redis is unreachable nobody
can take anything over, so the holder keeps controlling its node (better than no controller);
two controllers for a moment are harmless, because every call record is idempotent by key.
A lease value that is no lease (not a holder id, no expiry or a longer one than any instance
sets, not a string) is refused (``gateway.readback``) and cleared, so it cannot keep a node
without a controller for ever.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import uuid
from pathlib import Path
from typing import IO

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway import keys
from gateway.readback import Source, refuse

DEFAULT_TTL_MS = 5000
MAX_TTL_MS = 60_000  # the longest HOTLINE_LEASE_TTL_MS allowed (gateway.settings)
HOLDER = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII without spaces, as ``instance_id`` makes

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
return {holder, redis.call('PTTL', KEYS[1])}
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Deletes a refused value only if it is still the one refused (a live holder may have replaced it).
_CLEAR = """
if redis.call('TYPE', KEYS[1]).ok ~= 'string' or redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


_HELD: dict[str, IO[str]] = {}  # instance id -> its id file, held open and locked while it runs


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
    _HELD[kept] = handle
    return kept


def release_instance_id(holder: str) -> None:
    """Unlock the id file (the instance stops): the next start on this directory takes it."""
    handle = _HELD.pop(holder, None)
    if handle is not None:
        handle.close()


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
        self._clear = redis.register_script(_CLEAR)

    async def acquire(self) -> bool:
        """Take the lease if it is free (or already ours); renews it when ours."""
        try:
            answer = await self._acquire(keys=[self.key], args=[self.holder, self.ttl_ms])
        except ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            refuse(Source.LEASE, self.key, "(type)", "not a string")
            answer = await self._cleared("")
        if isinstance(answer, list):  # held by another: a lease, or a value to refuse?
            holder, pttl = answer
            problem = self._problem(holder, pttl)
            if problem is None:
                return False
            refuse(Source.LEASE, self.key, problem[0], problem[1])
            answer = await self._cleared(holder)
        return bool(answer)

    async def _cleared(self, refused: bytes | str) -> object:
        """Delete the refused value (if still there) and try to take the lease once more."""
        await self._clear(keys=[self.key], args=[refused])
        answer: object = await self._acquire(keys=[self.key], args=[self.holder, self.ttl_ms])
        return 0 if isinstance(answer, list) else answer  # someone else was quicker

    def _problem(self, holder: bytes | str, pttl: int) -> tuple[str, str] | None:
        """Why a held lease's value is no lease (field, problem), or None."""
        if not HOLDER.fullmatch(name := _decoded(holder)):
            return "holder", f"{name[:40]!r} is not an instance id"
        if not 0 <= pttl <= MAX_TTL_MS:
            return "ttl", f"expiry {pttl} ms is not in 0..{MAX_TTL_MS}"
        return None

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[self.key], args=[self.holder, self.ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.holder])

    async def owner(self) -> str | None:
        """The holder, or None if the lease is free or its value is refused."""
        value = await self.redis.get(self.key)
        if value is None:
            return None
        if not HOLDER.fullmatch(name := _decoded(value)):
            refuse(Source.LEASE, self.key, "holder", f"{name[:40]!r} is not an instance id")
            return None
        return name


def _decoded(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
