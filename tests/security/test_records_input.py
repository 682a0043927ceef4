"""Issue 17 items 5, 7 and 9: the order system's feedback names only records the gateway produced
and no far-future time; hostile JSON and malformed dead letters never make the API answer 500;
the reference sink takes what the contract allows (null legacy line)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.keys import OutboxKeys
from gateway.localredis import LocalRedis
from gateway.ordersink.examples import answered_call
from gateway.ordersink.sink import OrderSink
from gateway.records.client import OrderSystemClient
from gateway.records.outbox import dead_letters
from gateway.settings import ENV_FEEDBACK_TOKEN
from tests.integration.test_transfers import Stack, open_stack

DEEP = b"[" * 100_000 + b"]" * 100_000
# Routes that read no JSON body (a form, or nothing): they must not fail on one either.
TAKES_NO_BODY = {
    "/api/config/reload",
    "/api/transfers/1/complete",
    "/login",
    "/logout",
    "/api/sessions/1/revoke",
}


@pytest.fixture
async def stack(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Stack]:
    async with open_stack(redis_server, redis_client, tmp_path) as opened:
        yield opened


def token(stack: Stack, path: str) -> str:
    if path.endswith("/feedback"):
        return stack.env[ENV_FEEDBACK_TOKEN]
    # Listening in is the supervisors' alone (an admin gets 403 before the body is read).
    return stack.env["HOTLINE_SUPERVISOR_TOKENS" if path.endswith("/supervise") else "HOTLINE_ADMIN_TOKENS"]


async def test_hostile_bodies_to_every_post_route_answer_400(stack: Stack) -> None:
    values = {"record_id": answered_call(1).record_id, "seat": "1001", "verb": "pause"}
    paths = sorted(
        re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), route.resource.canonical)
        for route in stack.app.router.routes()
        if route.method == "POST" and route.resource is not None
    )
    assert len(paths) >= 5, paths
    for body in (DEEP, b'{"a": ' * 50_000, b"\xff\xfe", b"{not json"):
        for path in paths:
            headers = {"Authorization": f"Bearer {token(stack, path)}", "Content-Type": "application/json"}
            response = await stack.client.post(path, data=body, headers=headers)
            # A route that takes no body ignores it (and answers as for none); every other refuses it.
            ok = response.status < 500 if path in TAKES_NO_BODY else response.status == 400
            assert ok, (path, body[:8], response.status, await response.text())


async def test_feedback_only_for_produced_records_and_not_from_the_future(stack: Stack) -> None:
    produced, forged = answered_call(1), answered_call(2)
    await stack.gateway.outbox.append_many([produced])
    headers = {"Authorization": f"Bearer {stack.env[ENV_FEEDBACK_TOKEN]}"}

    async def post(record_id: str, at: dt.datetime) -> int:
        body = {"kind": "resolution", "resolved": False, "at": at.isoformat()}
        response = await stack.client.post(f"/api/records/{record_id}/feedback", json=body, headers=headers)
        return response.status

    now = dt.datetime.now(dt.UTC)
    assert await post(forged.record_id, now) == 404  # the gateway never produced it
    assert await post(produced.record_id, dt.datetime(9999, 1, 1, tzinfo=dt.UTC)) == 422
    assert await post(produced.record_id, now + dt.timedelta(minutes=10)) == 422
    assert await post(produced.record_id, now + dt.timedelta(minutes=1)) == 200  # clocks differ a little
    assert (await stack.gateway.feedback.get(forged.record_id)).resolution is None


async def test_malformed_dead_letters_are_listed_not_fatal(stack: Stack) -> None:
    keys = OutboxKeys()
    await stack.redis.xadd(keys.dead, {"key": "x:1", "record": "not json", "failed_at": "yesterday"})
    await stack.redis.xadd(keys.dead, {"junk": "\xff"})
    headers = {"Authorization": f"Bearer {stack.env['HOTLINE_ADMIN_TOKENS']}"}
    response = await stack.client.get("/api/records/dead-letters", headers=headers)
    assert response.status == 200
    letters = (await response.json())["dead_letters"]
    assert [letter["malformed"] for letter in letters] == [True, True]
    assert "record is not a JSON object" in letters[1]["problem"]
    assert len(await dead_letters(stack.redis)) == 2


async def test_the_reference_sink_takes_a_record_without_legacy_line(tmp_path: Path) -> None:
    record = answered_call(3).model_copy(update={"legacy_line": None})
    async with (
        OrderSink(tmp_path / "orders.sqlite3", "sink-token") as sink,
        OrderSystemClient(sink.url, 2.0, "T", environ={"T": "sink-token"}) as client,
    ):
        answer = await client.submit(record.idempotency_key, record.model_dump_json().encode())
        assert answer.status == 201, answer
        stored = sink.store.work_order(record.record_id)
        assert stored is not None
        assert stored["record"]["legacy_line"] is None
