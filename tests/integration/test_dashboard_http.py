"""The dashboard over real HTTP on loopback: login, cookie flags, CSRF, roles, and the SSE feed.

Coalescing is checked by counting: the hub's pace is a gate the test opens by hand, so "at most one
push per tick, and it is the latest" is asserted without measuring time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Mapping
from http.cookies import SimpleCookie

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler

from gateway.web.auth import AUTH_KEY, CSRF_HEADER, SESSION_COOKIE, Role
from gateway.web.live import DELTAS_KEPT, RETRY_MS, LiveHub
from gateway.web.snapshot import LinkView, Snapshot
from tests.browser.scene import ADMIN_TOKEN, SEAT_TOKEN, SUPERVISOR_TOKEN, make_app

Client = TestClient[web.Request, web.Application]
GUARD_S = 10  # a liveness guard for awaits that must finish, not a measurement
BEARER = {"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}


class Ticks:
    """The hub's pace, opened by hand: each ``release`` lets one more delivery through."""

    def __init__(self) -> None:
        self._gate = asyncio.Semaphore(0)

    async def wait(self) -> None:
        await self._gate.acquire()

    def release(self) -> None:
        self._gate.release()


def snapshot(n: int, padding: int = 0) -> Snapshot:
    # ``at`` names the snapshot; ``padding`` makes it, and each delta to it, heavy enough to fill
    # socket buffers.
    return Snapshot(
        at=f"2026-11-27T07:30:{n:06d}Z",
        link=LinkView("ready", False, f"{n}:" + "x" * padding if padding else ""),
        queues=[],
        seats=[],
        lines=[],
        overall={},
    )


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def hub(ticks: Ticks) -> LiveHub:
    return LiveHub(pace=ticks.wait)


@pytest.fixture
async def client(hub: LiveHub, redis_client: aioredis.Redis) -> AsyncIterator[Client]:
    async with TestClient(TestServer(make_app(hub, redis_client), host="127.0.0.1")) as client:
        yield client


def origin(client: Client, scheme: str = "http") -> str:
    return f"{scheme}://{client.host}:{client.port}"


def set_cookie(response: ClientResponse) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        cookie.load(header)
    return cookie


async def login(client: Client, token: str = SUPERVISOR_TOKEN, **headers: str) -> ClientResponse:
    return await client.post(
        "/login",
        data={"token": token},
        headers={"Origin": origin(client), **headers},
        allow_redirects=False,
    )


@contextlib.asynccontextmanager
async def live_stream(client: Client, headers: Mapping[str, str] = BEARER) -> AsyncIterator[ClientResponse]:
    """GET /api/live; once the ``retry`` preamble is read, the hub has the subscriber."""
    async with client.get("/api/live", headers=headers) as stream:
        assert stream.status == 200
        assert stream.content_type == "text/event-stream"
        async with asyncio.timeout(GUARD_S):
            assert await stream.content.readuntil(b"\n\n") == f"retry: {RETRY_MS}\n\n".encode()
        yield stream


async def next_event(stream: ClientResponse) -> dict[str, str]:
    async with asyncio.timeout(GUARD_S):
        block = (await stream.content.readuntil(b"\n\n")).decode()
    return dict(line.split(": ", 1) for line in block.strip().split("\n"))


async def test_dashboard_redirects_to_login_and_serves_safe_pages(client: Client) -> None:
    response = await client.get("/dashboard", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/login")
    page = await client.get("/login")
    assert page.status == 200
    assert 'name="token"' in await page.text()
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    script = await client.get("/static/dashboard.js")
    assert script.status == 200
    assert script.content_type == "text/javascript"
    assert (await client.get("/static/dashboard.html")).status == 404  # templates are not served raw


async def test_login_sets_a_strict_httponly_cookie_and_the_page_carries_csrf(client: Client) -> None:
    response = await login(client)
    assert (response.status, response.headers["Location"]) == (303, "/dashboard")
    header = response.headers["Set-Cookie"]
    assert re.search(r"(?i)\bhttponly\b", header)
    assert re.search(r"(?i)samesite=strict", header)
    assert "Path=/" in header
    assert "secure" not in header.lower()
    cookie = set_cookie(response)[SESSION_COOKIE].value
    assert client.app is not None
    principal = await client.app[AUTH_KEY].read_session(cookie)
    assert principal is not None
    assert principal.role is Role.SUPERVISOR
    page = await client.get("/dashboard")
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert f'<meta name="csrf-token" content="{principal.csrf_token}">' in await page.text()
    again = await client.get("/login", allow_redirects=False)
    assert (again.status, again.headers["Location"]) == (302, "/dashboard")


async def test_admin_may_log_in_too(client: Client) -> None:
    assert (await login(client, ADMIN_TOKEN)).status == 303


async def test_login_over_https_sets_a_secure_cookie(hub: LiveHub, redis_client: aioredis.Redis) -> None:
    @web.middleware
    async def tls_terminated(request: web.Request, handler: Handler) -> web.StreamResponse:
        # What a trusted TLS-terminating proxy's middleware does: mark the request as https.
        return await handler(request.clone(scheme="https"))

    async with TestClient(
        TestServer(make_app(hub, redis_client, tls_terminated), host="127.0.0.1")
    ) as client:
        response = await login(client, Origin=origin(client, "https"))
        assert response.status == 303
        morsel = set_cookie(response)[SESSION_COOKIE]
        assert morsel["secure"]
        assert morsel["httponly"]
        assert morsel["samesite"] == "Strict"
        refused = await login(client)  # an http:// origin is another origin
        assert refused.status == 403


@pytest.mark.parametrize(
    ("token", "headers", "status", "says"),
    [
        ("wrong", {}, 401, "令牌无效"),
        (SUPERVISOR_TOKEN, {"Origin": "https://evil.example"}, 403, "auth.origin"),
        (SUPERVISOR_TOKEN, {"Origin": ""}, 403, "auth.origin"),
    ],
)
async def test_login_refusals_set_no_cookie(
    client: Client, token: str, headers: dict[str, str], status: int, says: str
) -> None:
    response = await login(client, token, **headers)
    assert response.status == status
    assert says in await response.text()
    assert SESSION_COOKIE not in set_cookie(response)


async def test_logout_needs_the_csrf_header(client: Client) -> None:
    response = await login(client)
    cookie = set_cookie(response)[SESSION_COOKIE].value
    assert client.app is not None
    refused = await client.post("/logout")
    assert (refused.status, (await refused.json())["error"]["code"]) == (403, "auth.csrf")
    identity = await client.app[AUTH_KEY].read_session(cookie)
    assert identity is not None
    done = await client.post("/logout", headers={CSRF_HEADER: identity.csrf_token})
    assert done.status == 204
    assert set_cookie(done)[SESSION_COOKIE]["max-age"] == "0"
    assert (await client.get("/dashboard", allow_redirects=False)).status == 302


async def test_seats_log_in_to_their_workbench(client: Client) -> None:
    response = await login(client, SEAT_TOKEN)
    assert (response.status, response.headers["Location"]) == (303, "/seat")
    cookie = set_cookie(response)[SESSION_COOKIE].value
    assert client.app is not None
    identity = await client.app[AUTH_KEY].read_session(cookie)
    assert identity is not None
    assert (identity.role, identity.seat) == (Role.SEAT, "1001")
    # The supervisors' page sends a seat to its own.
    page = await client.get("/dashboard", allow_redirects=False)
    assert (page.status, page.headers["Location"]) == (302, "/seat")


async def test_feeds_need_a_role(client: Client, hub: LiveHub) -> None:
    for path in ("/api/live", "/api/snapshot"):
        response = await client.get(path)
        assert (response.status, (await response.json())["error"]["code"]) == (401, "auth.required")
    seat = {"Authorization": f"Bearer {SEAT_TOKEN}"}
    early = await client.get("/api/snapshot", headers=seat)
    assert (early.status, (await early.json())["error"]["code"]) == (503, "live.not_ready")
    hub.publish(snapshot(1))
    answer = await client.get("/api/snapshot", headers=seat)
    assert answer.status == 200
    assert await answer.text() == snapshot(1).to_json()
    await login(client)
    async with live_stream(client, {}) as stream:  # the cookie session reads the feed too
        assert (await next_event(stream))["data"] == snapshot(1).to_json()


async def test_the_stream_coalesces_to_the_latest_snapshot_per_tick(
    client: Client, hub: LiveHub, ticks: Ticks
) -> None:
    async with live_stream(client) as stream:
        for n in range(1, 51):
            hub.publish(snapshot(n))
        first = await next_event(stream)  # the first change goes out at once, then the pace holds
        assert (first["event"], first["id"], first["data"]) == ("snapshot", "1", snapshot(50).to_json())
        for n in range(51, 101):
            hub.publish(snapshot(n))
        ticks.release()
        second = await next_event(stream)  # what changed since the first: here only the time
        assert (second["event"], second["id"]) == ("delta", "2")
        assert json.loads(second["data"]) == {"at": snapshot(100).at, "base": 1, "seats": [], "gone": []}
        assert [s.sent for s in hub.subscribers()] == [2]  # 100 publishes, 2 pushes

        async with live_stream(client) as late:  # a newcomer starts whole from the latest, without a tick
            whole = await next_event(late)
            assert (whole["event"], whole["id"], whole["data"]) == ("snapshot", "2", snapshot(100).to_json())


async def test_a_quiet_stream_sends_heartbeats(ticks: Ticks, redis_client: aioredis.Redis) -> None:
    hub = LiveHub(heartbeat_s=0.01, pace=ticks.wait)
    async with (
        TestClient(TestServer(make_app(hub, redis_client), host="127.0.0.1")) as client,
        live_stream(client) as stream,
    ):
        ping = await next_event(stream)
        assert (ping["event"], ping["data"]) == ("ping", "0")


@contextlib.asynccontextmanager
async def stalled_subscriber(client: Client) -> AsyncIterator[None]:
    """A raw connection that subscribes to /api/live and then stops reading."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (client.host, client.port))
    except OSError:
        sock.close()
        raise
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(
            f"GET /api/live HTTP/1.1\r\nHost: {client.host}:{client.port}\r\n"
            f"Authorization: Bearer {SUPERVISOR_TOKEN}\r\n\r\n".encode()
        )
        async with asyncio.timeout(GUARD_S):
            await reader.readuntil(f"retry: {RETRY_MS}".encode())  # subscribed
        yield
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_a_slow_client_holds_a_bounded_backlog_and_shutdown_cuts_it(
    client: Client, hub: LiveHub, ticks: Ticks
) -> None:
    message_bytes = len(snapshot(0, 60_000).to_json()) + 100
    # The transport may hold up to two writes beyond its 64 KiB high-water mark before the writer
    # waits for it to drain; add the one undelivered message. Independent of how many were published.
    bound = 3 * message_bytes + 64 * 1024
    async with stalled_subscriber(client), live_stream(client) as fast:
        n, lagging_since = 0, 0
        while not lagging_since or n < lagging_since + 50:  # until the slow one lags, then 50 more
            n += 1
            assert n < 2000, "the slow client never fell behind: socket buffers larger than expected"
            hub.publish(snapshot(n, 60_000))
            ticks.release()
            assert (await next_event(fast))["id"] == str(n)  # the fast client gets every tick
            held = max(s.held_bytes for s in hub.subscribers())
            assert held <= bound, f"slow client holds {held} bytes after {n} pushes"
            if not lagging_since and max(s.superseded for s in hub.subscribers()) >= 10:
                lagging_since = n
        slow = min(hub.subscribers(), key=lambda s: s.sent)
        # Every push was written, superseded, is in the stalled write, or waits in the mailbox.
        assert n - 2 <= slow.sent + slow.superseded <= n
        assert slow.sent < n
        await _closes(client.server.close())  # a stalled write must not hold the shutdown
    assert hub.subscribers() == []


async def test_a_lagging_client_catches_up_delta_by_delta_or_starts_again_whole(
    client: Client, hub: LiveHub, ticks: Ticks
) -> None:
    hub.publish(snapshot(1, 60_000))
    async with live_stream(client) as stream:  # read once it is far behind
        n = 1
        while max(s.superseded for s in hub.subscribers()) < DELTAS_KEPT + 4:
            n += 1
            assert n < 2000, "the client never fell behind: socket buffers larger than expected"
            hub.publish(snapshot(n, 60_000))
            ticks.release()
            await asyncio.sleep(0)
        events = [await next_event(stream)]
        while events[-1]["id"] != str(n):
            events.append(await next_event(stream))
    # Each delta follows the snapshot it changes. The stream fell further behind than the deltas
    # kept, so it started again from a whole snapshot; its last message is the latest.
    kinds = [e["event"] for e in events]
    assert kinds[0] == "snapshot"
    assert "delta" in kinds
    assert "snapshot" in kinds[1:]
    for before, event in itertools.pairwise(events):
        if event["event"] == "delta":
            assert json.loads(event["data"])["base"] == int(before["id"])
        assert int(event["id"]) > int(before["id"])
    assert json.loads(events[-1]["data"])["at"] == snapshot(n).at


async def test_shutdown_ends_every_stream(client: Client, hub: LiveHub) -> None:
    hub.publish(snapshot(1))
    async with live_stream(client) as stream:
        assert (await next_event(stream))["id"] == "1"
        await _closes(client.server.close())
        async with asyncio.timeout(GUARD_S):
            assert await stream.content.read() == b""  # the server ended the response
    assert hub.subscribers() == []


async def _closes(closing: Awaitable[None]) -> None:
    async with asyncio.timeout(GUARD_S):
        await closing


async def test_a_topic_stream_carries_only_its_topic(hub: LiveHub, ticks: Ticks) -> None:
    """The workbench's per-seat streams: seat 1001's stream never carries 1002's data nor snapshots."""

    async def serve(request: web.Request) -> web.StreamResponse:
        return await hub.stream(request, topic=request.match_info["name"])

    app = web.Application()
    app.router.add_get("/topic/{name}", serve)
    app.cleanup_ctx.append(hub.lifetime)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        streams = [client.get(f"/topic/seat:{seat}") for seat in ("1001", "1002")]
        async with streams[0] as mine, streams[1] as other:
            for stream in (mine, other):
                await next_event(stream)  # the retry preamble: subscribed
            await asyncio.sleep(0)
            assert hub.topics() == {"seat:1001", "seat:1002"}
            hub.publish(snapshot(1))
            hub.publish_to("seat:1001", '{"n":1}')
            event = await next_event(mine)
            assert (event["event"], event["data"]) == ("seat", '{"n":1}')
            ticks.release()
            hub.publish_to("seat:1001", '{"n":1}')  # unchanged: not sent again
            hub.publish_to("seat:1002", '{"n":2}')
            assert (await next_event(other))["data"] == '{"n":2}'
            assert [s.sent for s in sorted(hub.subscribers(), key=lambda s: s.sent)] == [1, 1]
