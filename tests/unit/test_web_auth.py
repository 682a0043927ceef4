"""Roles, bearer tokens, dashboard session cookies and CSRF, over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.errors import GatewayError
from gateway.web.auth import AUTH_KEY, CSRF_HEADER, SESSION_COOKIE, Authenticator, Role, require
from gateway.web.errors import error_middleware

TOKENS = {
    "supervisor": frozenset({"sup-token"}),
    "seat": frozenset({"seat-token"}),
    "admin": frozenset({"adm"}),
}


class BoomError(GatewayError):
    code = "transfer.limit"


async def read(request: web.Request) -> web.Response:
    principal = require(request, Role.SUPERVISOR, Role.SEAT)
    return web.json_response({"role": principal.role.value})


async def act(request: web.Request) -> web.Response:
    require(request, Role.SUPERVISOR)
    return web.json_response({"ok": True})


async def boom(request: web.Request) -> web.Response:
    raise BoomError("at most one hand-over per call")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[error_middleware])
    app[AUTH_KEY] = Authenticator(TOKENS, session_secret=b"k" * 32)
    app.router.add_get("/read", read)
    app.router.add_post("/act", act)
    app.router.add_get("/boom", boom)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def test_bearer_tokens_and_roles(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/read")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "auth.required"
    response = await client.get("/read", headers={"Authorization": "Bearer nope"})
    assert (response.status, (await response.json())["error"]["code"]) == (401, "auth.invalid_token")
    response = await client.get("/read", headers={"Authorization": "Bearer seat-token"})
    assert await response.json() == {"role": "seat"}
    response = await client.post("/act", headers={"Authorization": "Bearer seat-token"})
    assert response.status == 403
    assert "supervisor" in (await response.json())["error"]["message"]
    response = await client.post("/act", headers={"Authorization": "Bearer adm"})
    assert response.status == 200  # admin may do everything


async def test_session_cookie_needs_csrf_for_changes(
    client: TestClient[web.Request, web.Application],
) -> None:
    auth = client.app[AUTH_KEY] if client.app else None
    assert auth is not None
    cookie = auth.new_session(Role.SUPERVISOR)
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie})
    assert (await client.get("/read")).status == 200
    assert (await client.post("/act")).status == 403
    ok = await client.post("/act", headers={CSRF_HEADER: auth.csrf_token(cookie)})
    assert ok.status == 200


def test_forged_or_expired_sessions_are_refused() -> None:
    auth = Authenticator(TOKENS, session_secret=b"k" * 32)
    cookie = auth.new_session(Role.SUPERVISOR, now=1000.0)
    assert auth.read_session(cookie, now=1001.0) is not None
    assert auth.read_session(cookie, now=1000.0 + 13 * 3600) is None
    forged = cookie.replace("supervisor", "admin", 1)
    assert auth.read_session(forged, now=1001.0) is None
    assert Authenticator(TOKENS, session_secret=b"x" * 32).read_session(cookie, now=1001.0) is None


async def test_domain_errors_map_to_json_with_stable_codes(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/boom")
    assert response.status == 409
    assert await response.json() == {
        "error": {"code": "transfer.limit", "message": "at most one hand-over per call"}
    }
    missing = await client.get("/nowhere")
    assert (missing.status, (await missing.json())["error"]["code"]) == (404, "http.404")
