"""Roles, bearer tokens, server-side sessions and CSRF, over real HTTP on loopback and a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.errors import GatewayError
from gateway.web.auth import AUTH_KEY, CSRF_HEADER, SESSION_COOKIE, Identity, Role, require
from gateway.web.errors import error_middleware
from tests.browser.scene import ADMIN_TOKEN, SEAT_TOKEN, make_auth

Client = TestClient[web.Request, web.Application]


class BoomError(GatewayError):
    code = "transfer.limit"


async def read(request: web.Request) -> web.Response:
    identity = await require(request, Role.SUPERVISOR, Role.SEAT)
    return web.json_response({"role": identity.role.value, "seat": identity.seat})


async def act(request: web.Request) -> web.Response:
    await require(request, Role.SUPERVISOR)
    return web.json_response({"ok": True})


async def boom(request: web.Request) -> web.Response:
    raise BoomError("at most one hand-over per call")


@pytest.fixture
async def client(redis_client: aioredis.Redis) -> AsyncIterator[Client]:
    app = web.Application(middlewares=[error_middleware])
    app[AUTH_KEY] = make_auth(redis_client)
    app.router.add_get("/read", read)
    app.router.add_post("/act", act)
    app.router.add_get("/boom", boom)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_bearer_tokens_and_roles(client: Client) -> None:
    response = await client.get("/read")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "auth.required"
    response = await client.get("/read", headers=bearer("nope"))
    assert (response.status, (await response.json())["error"]["code"]) == (401, "auth.invalid_token")
    response = await client.get("/read", headers=bearer(SEAT_TOKEN))
    assert await response.json() == {"role": "seat", "seat": "1001"}  # the seat token names its seat
    response = await client.post("/act", headers=bearer(SEAT_TOKEN))
    assert response.status == 403
    assert "supervisor" in (await response.json())["error"]["message"]
    response = await client.post("/act", headers=bearer(ADMIN_TOKEN))
    assert response.status == 200  # admin may do everything


async def test_session_cookie_needs_csrf_for_changes(client: Client) -> None:
    assert client.app is not None
    auth = client.app[AUTH_KEY]
    cookie = await auth.new_session(Identity(Role.SUPERVISOR, "env:test"))
    identity = await auth.read_session(cookie)
    assert identity is not None
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie})
    assert (await client.get("/read")).status == 200
    assert (await client.post("/act")).status == 403
    ok = await client.post("/act", headers={CSRF_HEADER: identity.csrf_token})
    assert ok.status == 200


async def test_forged_or_ended_sessions_are_refused(redis_client: aioredis.Redis) -> None:
    auth = make_auth(redis_client)
    cookie = await auth.new_session(Identity(Role.SUPERVISOR, "wang"))
    identity = await auth.read_session(cookie)
    assert identity is not None
    assert identity.name == "wang"
    session_id, _, signature = cookie.rpartition(".")
    assert await auth.read_session(f"{session_id}x.{signature}") is None  # forged: not signed
    assert await auth.read_session(cookie + "x") is None
    await auth.end_session(identity)
    assert await auth.read_session(cookie) is None  # ended in Redis: the copied cookie is dead


async def test_domain_errors_map_to_json_with_stable_codes(client: Client) -> None:
    response = await client.get("/boom")
    assert response.status == 409
    assert await response.json() == {
        "error": {"code": "transfer.limit", "message": "at most one hand-over per call"}
    }
    missing = await client.get("/nowhere")
    assert (missing.status, (await missing.json())["error"]["code"]) == (404, "http.404")
