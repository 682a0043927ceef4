import redis

from gateway.localredis import LocalRedis


def test_local_redis_starts_on_loopback_and_survives_restart_with_aof() -> None:
    with LocalRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        server.restart()
        assert redis.Redis.from_url(server.url).get("k") == b"v"
        client.close()
