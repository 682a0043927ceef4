"""The order-system contract over real HTTP on loopback: the reference sink's answers, and how
the gateway's client reads every kind of answer (docs/order-system.md)."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web

from gateway.ordersink.examples import answered_call, emergency_handover
from gateway.ordersink.sink import OrderSink
from gateway.records.client import Answer, OrderSystemClient, Result
from gateway.records.tokens import TokenConfigError
from tests.conftest import SINK_TOKEN

TOKEN = SINK_TOKEN  # what the shared ``sink`` fixture expects
ENV = {"ORDER_TOKEN": TOKEN}


def _client(url: str, timeout_s: float = 2.0) -> OrderSystemClient:
    return OrderSystemClient(url, timeout_s, "ORDER_TOKEN", environ=ENV)


async def test_a_record_is_created_once_and_its_repeat_is_a_duplicate(sink: OrderSink) -> None:
    record = answered_call(1)
    async with _client(sink.url) as client:
        first = await client.submit(record.idempotency_key, record.model_dump_json().encode())
        again = await client.submit(record.idempotency_key, record.model_dump_json().encode())
        sink.faults.duplicate_status = 409
        third = await client.submit(record.idempotency_key, record.model_dump_json().encode())
    assert (first.result, first.status) == (Result.CREATED, 201)
    assert (again.result, again.status) == (Result.ACCEPTED, 200)
    assert (third.result, third.status) == (Result.DUPLICATE, 409)
    assert sink.store.counts() == {
        "work_orders": 1, "final_work_orders": 1, "deliveries": 1, "duplicate_posts_absorbed": 2,
    }  # fmt: skip


async def test_the_highest_revision_wins_whatever_the_order_of_arrival(sink: OrderSink) -> None:
    interim, final = emergency_handover(5), answered_call(5)
    async with _client(sink.url) as client:
        for record in (final, interim):  # the interim record was retried and arrives late
            answer = await client.submit(record.idempotency_key, record.model_dump_json().encode())
            assert answer.result.delivered
    order = sink.store.work_order(final.record_id)
    assert order is not None
    assert (order["revision"], order["stage"]) == (final.revision, "final")
    assert sink.store.counts()["deliveries"] == 2


async def test_records_the_sink_cannot_accept_are_rejected(sink: OrderSink) -> None:
    record, other = answered_call(2), answered_call(3)
    async with _client(sink.url) as client:
        await client.submit(record.idempotency_key, record.model_dump_json().encode())
        mismatched = await client.submit(record.idempotency_key, other.model_dump_json().encode())
        garbage = await client.submit("k:1", b'{"schema_version": "call-record/v1"}')
    assert (mismatched.result, mismatched.status) == (Result.REJECT, 422)
    assert "idempotency_key_mismatch" in mismatched.detail
    assert (garbage.result, garbage.status, garbage.reason) == (Result.REJECT, 422, "http_422")
    assert "record_id: Field required" in garbage.detail


async def test_the_same_key_with_other_content_is_refused_not_taken_for_a_duplicate(sink: OrderSink) -> None:
    record = answered_call(4)
    changed = record.model_copy(update={"department": "住建委"})  # same key, different content
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for body, expected in ((record, 201), (changed, 422)):
            async with http.post(
                sink.url, data=body.model_dump_json(), headers={"Idempotency-Key": record.idempotency_key}
            ) as response:
                assert response.status == expected
                if expected == 422:
                    assert (await response.json())["code"] == "idempotency_key_reused"


async def test_faults_and_downtime_read_as_retry(sink: OrderSink) -> None:
    record = answered_call(6)
    body = record.model_dump_json().encode()
    async with _client(sink.url, timeout_s=0.3) as client:
        sink.faults.status, sink.faults.remaining = 500, 1
        assert (await client.submit(record.idempotency_key, body)) == Answer(Result.RETRY, 500, "http_500")
        sink.faults.status, sink.faults.drop, sink.faults.remaining = None, True, 1
        dropped = await client.submit(record.idempotency_key, body)
        assert (dropped.result, dropped.status) == (Result.RETRY, None)
        assert dropped.reason.startswith("connection:")
        await sink.stop()
        refused = await client.submit(record.idempotency_key, body)
        assert (refused.result, refused.status) == (Result.RETRY, None)
        await sink.start()
        sink.faults.delay_s = 0.6  # stored at once, answered too late
        assert (await client.submit(record.idempotency_key, body)).reason == "timeout"
        assert sink.store.counts()["deliveries"] == 1
        sink.faults.delay_s = 0.0
        assert (await client.submit(record.idempotency_key, body)) == Answer(Result.ACCEPTED, 200, "accepted")
    assert sink.store.counts()["duplicate_posts_absorbed"] == 1


async def test_faults_can_be_set_over_http(sink: OrderSink) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        base = sink.url.removesuffix("/work-orders")
        async with http.put(f"{base}/_sink/faults", json={"status": 503, "remaining": 2}) as response:
            assert response.status == 200
        async with http.put(f"{base}/_sink/faults", json={"status": 200}) as response:
            assert response.status == 422
        async with http.get(f"{base}/_sink/stats") as response:
            stats = await response.json()
    assert stats["faults"]["status"] == 503
    assert stats["work_orders"] == 0


async def test_a_wrong_token_is_retried_not_dead_lettered(sink: OrderSink) -> None:
    record = answered_call(7)
    async with OrderSystemClient(sink.url, 2.0, "ORDER_TOKEN", environ={"ORDER_TOKEN": "wrong"}) as client:
        answer = await client.submit(record.idempotency_key, record.model_dump_json().encode())
    assert (answer.result, answer.status) == (Result.RETRY, 401)


def test_a_missing_token_is_a_configuration_error_naming_the_variable() -> None:
    with pytest.raises(TokenConfigError, match="ORDER_TOKEN is empty or unset"):
        OrderSystemClient("http://127.0.0.1:1/work-orders", 1.0, "ORDER_TOKEN", environ={})


# Answers the reference sink never gives but other order systems may: one scripted server.
SCRIPTED: list[tuple[int, dict[str, str], str, Answer]] = [
    (204, {}, "", Answer(Result.ACCEPTED, 204, "accepted")),
    (409, {}, json.dumps({"idempotency_key": "k:1"}), Answer(Result.DUPLICATE, 409, "duplicate")),
    (409, {}, json.dumps({"idempotency_key": "other:2"}), Answer(Result.REJECT, 409, "conflict")),
    (409, {}, "not json", Answer(Result.REJECT, 409, "conflict")),
    (400, {}, "bad", Answer(Result.REJECT, 400, "http_400", detail="bad")),
    (429, {"Retry-After": "2"}, "", Answer(Result.RETRY, 429, "http_429", retry_after_s=2.0)),
    (503, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, "", Answer(Result.RETRY, 503, "http_503")),
    (403, {}, "", Answer(Result.RETRY, 403, "http_403")),
    (302, {"Location": "/elsewhere"}, "", Answer(Result.RETRY, 302, "http_302")),
]


async def test_every_kind_of_answer_is_read_as_the_contract_says() -> None:
    script = iter(SCRIPTED)

    async def answer(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Idempotency-Key"] == "k:1"
        status, headers, text, _ = next(script)
        return web.Response(status=status, headers=headers, text=text)

    app = web.Application()
    app.router.add_post("/work-orders", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with _client(f"http://127.0.0.1:{port}/work-orders") as client:
            answers = [await client.submit("k:1", b"{}") for _ in SCRIPTED]
    finally:
        await runner.cleanup()
    assert answers == [expected for *_, expected in SCRIPTED]
