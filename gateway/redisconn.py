"""How every part of the gateway reaches Redis: one URL, or the master Redis Sentinel names.

With ``HOTLINE_REDIS_SENTINELS`` set, clients are redis-py's Sentinel clients for the master
``HOTLINE_REDIS_MASTER``: each new connection asks the sentinels where the master is now, and a
connection to a demoted master fails (READONLY) and is reopened to the new one, so the gateway,
the dispatchers and the leases follow a failover without a restart.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from gateway.settings import ENV_REDIS_MASTER, ENV_REDIS_SENTINELS, ENV_REDIS_URL, parse_sentinels

TIMEOUT_S = 2.0


def connect(url: str, sentinels: Sequence[tuple[str, int]] = (), master: str = "hotline") -> aioredis.Redis:
    if sentinels:
        # The sentinels answer "where is the master" quickly or not at all: short timeouts.
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(sentinels),
            sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
        )
        client: aioredis.Redis = sentinel.master_for(
            master, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S, health_check_interval=10
        )
        return client
    return aioredis.Redis.from_url(
        url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S, health_check_interval=10
    )


def redis_from_env(url: str | None = None) -> aioredis.Redis:
    """For commands run beside the gateway (credentials, dispatcher): the same variables as ``run``."""
    env = os.environ
    return connect(
        url or env.get(ENV_REDIS_URL, "redis://127.0.0.1:6379/0"),
        () if url else parse_sentinels(env.get(ENV_REDIS_SENTINELS, "")),
        env.get(ENV_REDIS_MASTER, "hotline"),
    )
