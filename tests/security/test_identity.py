"""Issue 17, identity half: each hostile input of the report, against the real app on loopback.

- one seat token logging out every seat, pausing others, handing over or cancelling others' calls
  and reading every waiting caller's number;
- placeholder, 1-character and seat-less tokens, a missing feedback token;
- 950 guesses a second from one client;
- a session cookie that outlives its logout;
- named credentials: hashed, rotated and revoked without a restart, expiring;
- the audit log: every POST/PUT/DELETE route writes one entry, and so does every refusal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from gateway import keys
from gateway.app import init_app
from gateway.callbacks.service import CallbackEntry
from gateway.credentials import CredentialStore
from gateway.demo import demo_environment
from gateway.localredis import LocalRedis, free_port
from gateway.settings import ENV_FEEDBACK_TOKEN, ENV_ROLE_TOKENS, Settings, SettingsError
from gateway.web.auth import AUTH_KEY, CSRF_HEADER, SESSION_COOKIE, Throttle, ThrottledError
from tests.conftest import ROOT
from tests.integration.test_transfers import open_stack
from tests.support.seats import bearer, seat_token

Client = TestClient[web.Request, web.Application]
CONFIG = ROOT / "hotline_merge.yaml"
ENV = web.AppKey("test_env", dict[str, str])


def environment(redis_url: str, tmp_path: Path) -> dict[str, str]:
    env = demo_environment({"HOTLINE_REDIS_URL": redis_url}, CONFIG)
    env.update({
        "HOTLINE_AMI_PORT": str(free_port()),  # no PBX: authorisation is decided before any action
        "HOTLINE_SPOOL_DIR": str(tmp_path / "spool"),
        "HOTLINE_DIALPLANS_DIR": str(tmp_path / "dialplans"),
    })  # fmt: skip
    return env


@pytest.fixture
async def gateway(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Client]:
    env = environment(redis_server.url, tmp_path)
    app = init_app(Settings.from_env(env, config_path=CONFIG), dispatchers=0)
    app[ENV] = env  # the test reads the tokens back
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def env_of(client: Client) -> dict[str, str]:
    assert client.app is not None
    return client.app[ENV]


async def audit_entries(redis: aioredis.Redis) -> list[dict[str, str]]:
    raw = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(keys.AUDIT))
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in raw]


# --- 1. one seat token acted on every seat and every call ----------------------------------------


async def test_a_seat_changes_only_its_own_login_and_pause(
    gateway: Client, redis_client: aioredis.Redis
) -> None:
    env = env_of(gateway)
    as_1001 = bearer(env, "seat", "1001")
    for other in ("1002", "2001", "3001", "4001"):
        for verb in ("logout", "pause", "login"):
            response = await gateway.post(f"/api/agents/{other}/{verb}", headers=as_1001)
            assert (response.status, (await response.json())["error"]["code"]) == (403, "auth.not_your_seat")
    own = await gateway.post("/api/agents/1001/pause", headers=as_1001, json={"reason": "小休"})
    assert own.status == 503  # allowed: it reached the PBX link (down in this test), not a refusal
    supervisor = await gateway.post("/api/agents/2001/logout", headers=bearer(env, "supervisor"))
    assert supervisor.status == 503  # supervisors act for every seat, as before
    refusals = [e for e in await audit_entries(redis_client) if e["result"] == "403 auth.not_your_seat"]
    assert len(refusals) == 12
    assert {e["seat"] for e in refusals} == {"1001"}


async def test_a_seat_acts_only_on_its_own_calls_and_sees_only_its_queues_callbacks(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    async with open_stack(redis_server, redis_client, tmp_path) as stack:
        stack.dial_in("citizen-1", caller="13900000001")
        await stack.talking("citizen-1", "1001")
        body = {"target": "expert-market", "mode": "blind"}
        as_1002, as_1001 = bearer(stack.env, "seat", "1002"), bearer(stack.env, "seat", "1001")
        client = stack.client
        refused = await client.post("/api/calls/citizen-1/transfer", json=body, headers=as_1002)
        assert (refused.status, (await refused.json())["error"]["code"]) == (403, "auth.not_your_call")
        detail = await client.get("/api/calls/citizen-1", headers=as_1002)
        assert detail.status == 403
        listed = await (await client.get("/api/calls", headers=as_1002)).json()
        assert [c["caller"] for c in listed["calls"]] == ["*******0001"]  # masked: not 1002's call
        listed = await (await client.get("/api/calls", headers=as_1001)).json()
        assert [c["caller"] for c in listed["calls"]] == ["13900000001"]

        # Callbacks: one for the general queue (1001, 1002 serve it), one for the tax sub-centre.
        for call_id, queue in (("cb-general", "hotline-general"), ("cb-tax", "subcenter-tax")):
            entry = CallbackEntry(  # a retry an hour ahead: it stays waiting while the test looks
                call_id, "13812345678", queue, joined_at=1.0, requested_at=2.0, not_before=time.time() + 3600
            )
            await redis_client.hset(keys.CALLBACK_ENTRIES, call_id, entry.to_json())
            await redis_client.zadd(keys.CALLBACK_ORDER, {call_id: 1.0})
        seen = await (await client.get("/api/callbacks", headers=as_1002)).json()
        assert [(w["call_id"], w["number"]) for w in seen["waiting"]] == [("cb-general", "*******5678")]
        everything = await (
            await client.get("/api/callbacks", headers=bearer(stack.env, "supervisor"))
        ).json()
        assert {w["number"] for w in everything["waiting"]} == {"13812345678"}


async def test_a_seat_cannot_cancel_or_complete_another_seats_hand_over(
    redis_server: LocalRedis, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    async with open_stack(redis_server, redis_client, tmp_path) as stack:
        stack.dial_in("citizen-1")
        await stack.talking("citizen-1", "1001")
        stack.transfers.clock = lambda: 0.0  # no deadline: the test is about who may act
        transfer = await stack.transfer("citizen-1", "expert-market", "consult")  # as 1001, its own call
        as_1002 = bearer(stack.env, "seat", "1002")
        for method, path in (
            ("GET", f"/api/transfers/{transfer['id']}"),
            ("DELETE", f"/api/transfers/{transfer['id']}"),
            ("POST", f"/api/transfers/{transfer['id']}/complete"),
        ):
            response = await stack.client.request(method, path, headers=as_1002)
            assert (response.status, (await response.json())["error"]["code"]) == (403, "auth.not_your_seat")
        status, _ = await stack.api("DELETE", f"/api/transfers/{transfer['id']}")  # 1001 may
        assert status == 200


# --- 2. weak credentials were accepted ----------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        (
            ENV_ROLE_TOKENS["admin"],
            "change-me-admin-token",
            "HOTLINE_ADMIN_TOKENS: token 1 still holds the placeholder",
        ),
        (ENV_ROLE_TOKENS["supervisor"], "x", "HOTLINE_SUPERVISOR_TOKENS: token 1 is 1 characters"),
        (
            ENV_ROLE_TOKENS["seat"],
            "0123456789abcdef0123456789",
            "HOTLINE_SEAT_TOKENS: item 1 does not name its seat",
        ),
        (ENV_ROLE_TOKENS["seat"], "1001:short", "HOTLINE_SEAT_TOKENS: token 1 is 5 characters"),
        (ENV_FEEDBACK_TOKEN, "", "HOTLINE_FEEDBACK_TOKEN"),
        (
            "HOTLINE_AMI_SECRET",
            "change-me-ami-controller-secret",
            "HOTLINE_AMI_SECRET still holds the placeholder",
        ),
        ("HOTLINE_SESSION_SECRET", "tiny", "HOTLINE_SESSION_SECRET is 4 characters"),
    ],
)
def test_weak_placeholder_or_seatless_credentials_refuse_to_start(
    variable: str, value: str, says: str
) -> None:
    env = demo_environment({}, CONFIG) | {variable: value}
    with pytest.raises(SettingsError, match=says.replace("(", r"\(")):
        Settings.from_env(env, config_path=CONFIG)


def test_the_feedback_token_must_be_its_own() -> None:
    env = demo_environment({}, CONFIG)
    env[ENV_FEEDBACK_TOKEN] = env["HOTLINE_ORDER_TOKEN"]
    with pytest.raises(SettingsError, match="HOTLINE_FEEDBACK_TOKEN must differ"):
        Settings.from_env(env, config_path=CONFIG)


# --- 2. guessing was free -----------------------------------------------------------------------


async def test_guessing_is_throttled_with_retry_after_and_counted(gateway: Client) -> None:
    answers = []
    for n in range(950):
        response = await gateway.get("/api/queues", headers={"Authorization": f"Bearer guess-{n:04d}"})
        answers.append(response.status)
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
            break
    assert answers == [401] * 10 + [429]  # the 11th guess is not even checked
    # Even the right token waits out the window from this address: the guesser cannot tell.
    metrics = await gateway.get("/metrics", headers=bearer(env_of(gateway), "supervisor"))
    assert metrics.status == 429
    assert gateway.app is not None
    registry = gateway.app[AUTH_KEY].throttle.failed_total
    assert registry._value.get() == 10  # hotline_auth_failures_total on /metrics


def test_throttle_per_identity_spans_addresses() -> None:
    throttle = Throttle(CollectorRegistry(), limit=3, window_s=60)
    for n in range(3):
        throttle.failed(f"10.0.0.{n}", "wang-li", now=100.0)  # three addresses, one credential
    throttle.check("address", "10.0.0.9", now=101.0)  # a fresh address is fine...
    with pytest.raises(ThrottledError) as refused:
        throttle.check("identity", "wang-li", now=101.0)  # ...but not for that credential
    assert refused.value.headers["Retry-After"] == "60"
    throttle.check("identity", "wang-li", now=160.5)  # the window slides


# --- 8. logout did not revoke the cookie --------------------------------------------------------


async def login(client: Client, token: str) -> str:
    origin = f"http://{client.host}:{client.port}"
    response = await client.post(
        "/login", data={"token": token}, headers={"Origin": origin}, allow_redirects=False
    )
    assert response.status == 303, await response.text()
    return response.cookies[SESSION_COOKIE].value


async def test_logout_and_admins_revoke_sessions_server_side(gateway: Client) -> None:
    env = env_of(gateway)
    assert gateway.app is not None
    auth = gateway.app[AUTH_KEY]
    cookie = await login(gateway, env[ENV_ROLE_TOKENS["supervisor"]])
    identity = await auth.read_session(cookie)
    assert identity is not None
    jar = {SESSION_COOKIE: cookie}
    assert (await gateway.get("/api/queues", cookies=jar)).status in {200, 503}  # alive
    done = await gateway.post("/logout", cookies=jar, headers={CSRF_HEADER: identity.csrf_token})
    assert done.status == 204
    stolen = await gateway.get("/api/queues", cookies=jar)  # the same cookie, replayed after logout
    assert (stolen.status, (await stolen.json())["error"]["code"]) == (401, "auth.session_ended")

    seat_cookie = await login(gateway, seat_token(env, "1001"))  # seats get a browser session too
    seat = await auth.read_session(seat_cookie)
    assert seat is not None
    assert (seat.role.value, seat.seat) == ("seat", "1001")
    revoke = await gateway.post(f"/api/sessions/{seat.name}/revoke", headers=bearer(env, "admin"))
    assert (await revoke.json())["sessions_ended"] == 1
    assert (await gateway.get("/api/callbacks", cookies={SESSION_COOKIE: seat_cookie})).status == 401


# --- named credentials: hashed in Redis, managed by a command, rotate without restart -----------


def credentials_cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "credentials", "--redis-url", redis_url, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_credentials_are_hashed_rotated_revoked_and_expire(
    gateway: Client, redis_server: LocalRedis, redis_client: aioredis.Redis
) -> None:
    added = credentials_cli(redis_server.url, "add", "seat-2001", "--role", "seat", "--seat", "2001")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    stored = await redis_client.hget(keys.CREDENTIALS, "seat-2001")
    assert stored is not None
    assert token.split(".")[-1].encode() not in stored  # only a salted scrypt hash is kept
    assert json.loads(stored)["seat"] == "2001"
    as_2001 = {"Authorization": f"Bearer {token}"}
    assert (await gateway.post("/api/agents/2002/logout", headers=as_2001)).status == 403  # bound to 2001
    assert (await gateway.get("/api/callbacks", headers=as_2001)).status == 200
    listed = credentials_cli(redis_server.url, "list")
    assert "seat-2001\tseat\t2001" in listed.stdout
    assert token not in listed.stdout

    rotated = credentials_cli(redis_server.url, "rotate", "seat-2001")
    new = {"Authorization": f"Bearer {rotated.stdout.strip()}"}
    assert (await gateway.get("/api/callbacks", headers=as_2001)).status == 401  # no restart needed
    assert (await gateway.get("/api/callbacks", headers=new)).status == 200
    assert credentials_cli(redis_server.url, "revoke", "seat-2001").returncode == 0
    assert (await gateway.get("/api/callbacks", headers=new)).status == 401
    refused = credentials_cli(redis_server.url, "add", "x", "--role", "seat")
    assert (refused.returncode, "needs --seat" in refused.stderr) == (2, True)

    store = CredentialStore(redis_client)
    old = await store.add("wang-li", "supervisor", None, days=1, now=time.time() - 2 * 86400)
    assert (await gateway.get("/api/queues", headers={"Authorization": f"Bearer {old}"})).status == 401
    actions = [e["action"] for e in await audit_entries(redis_client)]
    assert {"credentials.add", "credentials.rotate", "credentials.revoke"} <= set(actions)


# --- the audit log: every state-changing route writes one --------------------------------------


async def test_every_state_changing_route_writes_one_audit_entry(
    gateway: Client, redis_client: aioredis.Redis
) -> None:
    assert gateway.app is not None
    # Each route answers this address 401 once: more routes than the throttle allows a minute.
    gateway.app[AUTH_KEY].throttle = Throttle(CollectorRegistry(), limit=1000)
    routes = sorted(
        {
            (r.method, r.resource.canonical)
            for r in gateway.app.router.routes()
            if r.method in {"POST", "PUT", "DELETE", "PATCH"} and r.resource is not None
        }
    )
    assert len(routes) >= 9
    for method, canonical in routes:
        # A concrete path for each pattern: every {name} (and {name:regex}) becomes a plausible value.
        path = canonical.replace("{verb}", "pause")
        while "{" in path:
            start = path.index("{")
            path = path[:start] + "x1001" + path[path.index("}", start) + 1 :]
        before = len(await audit_entries(redis_client))
        await gateway.request(method, path, headers={"Origin": f"http://{gateway.host}:{gateway.port}"})
        entries = await audit_entries(redis_client)
        assert len(entries) == before + 1, (method, canonical)
        assert entries[-1]["action"] == f"{method} {canonical}"
        assert set(entries[-1]) == {"who", "role", "seat", "action", "target", "result", "client", "at"}

    admin = bearer(env_of(gateway), "admin")
    found = await (
        await gateway.get("/api/audit", params={"action": "POST /api/config/reload"}, headers=admin)
    ).json()
    assert [e["result"] for e in found["entries"]] == ["401 auth.required"]
    refused = await gateway.get("/api/audit", headers=bearer(env_of(gateway), "supervisor"))
    assert refused.status == 403  # admins only; and the refusal is audited too
    last = (await audit_entries(redis_client))[-1]
    assert (last["action"], last["role"], last["result"]) == (
        "GET /api/audit",
        "supervisor",
        "403 auth.forbidden",
    )
