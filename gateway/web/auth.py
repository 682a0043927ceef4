"""Who is calling and what they may do: ``Identity``, bearer tokens, browser sessions, throttling.

Roles: ``supervisor`` reads everything and may override the one-hand-over rule; ``seat`` acts for
its own seat only (its login and pause, the calls it is a party to); ``admin`` may do everything,
including config reloads, credentials and the audit log.

Credentials: named ones, hashed in Redis and managed with ``hotline-gateway credentials``
(``gateway.credentials``); and bootstrap tokens from the environment (HOTLINE_*_TOKENS; a seat
token names its extension). A browser logs in with any of them and gets an HttpOnly,
SameSite=Strict cookie naming a server-side session (``gateway.sessions``): logout and admins end
it in Redis. State-changing requests made with the cookie must send the session's CSRF token.

Handlers call ``await require(request, *roles)`` and receive an ``Identity``; it is also left on
the request (``IDENTITY``) for the audit log. Failed checks are throttled per client address and
per credential name (``Throttle``): past the limit the answer is 429 with Retry-After.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from gateway.calls.model import Call
from gateway.credentials import CredentialStore, claimed_name
from gateway.sessions import SessionData, SessionStore
from gateway.settings import ENV_NAME_PREFIX, token_id
from gateway.web.errors import HttpError

SESSION_COOKIE = "hotline_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600  # one shift


class Role(StrEnum):
    SUPERVISOR = "supervisor"
    SEAT = "seat"
    ADMIN = "admin"


@dataclass(frozen=True)
class Identity:
    """Who made a request. ``seat`` is the seat's extension for role ``seat``, else None."""

    role: Role
    name: str  # the credential's name; "env:<token id>" for a token from the environment
    seat: str | None = None
    via_session: bool = False  # authenticated by the browser cookie (then CSRF applies)
    csrf_token: str = ""
    session_id: str = ""

    def may_act_for(self, extension: str) -> bool:
        """A seat acts only for itself; supervisors and admins for every seat."""
        return self.role is not Role.SEAT or self.seat == extension


IDENTITY = web.RequestKey("identity", Identity)  # what ``require`` established
CLAIMED = web.RequestKey("claimed", str)  # the credential name a token or login form claimed


class Throttle:
    """Failed authentications per client address and per credential name, in a sliding window.

    Per instance, in memory: it works while Redis is down, and N instances allow N times the
    limit, which keeps guessing hopeless against 24+ character secrets all the same.
    """

    def __init__(self, registry: CollectorRegistry, limit: int = 10, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self.failed_total = Counter(
            "hotline_auth_failures", "refused authentications (bad token, login, session)", registry=registry
        )
        self.throttled_total = Counter(
            "hotline_auth_throttled",
            "requests answered 429 after too many failures",
            ["scope"],
            registry=registry,
        )

    def check(self, scope: str, key: str, now: float | None = None) -> None:
        """429 when ``key`` (an address or a name) failed ``limit`` times within the window."""
        moment = time.monotonic() if now is None else now
        seen = self._failures.get(f"{scope}:{key}")
        while seen and seen[0] <= moment - self.window_s:
            seen.popleft()
        if seen is not None and len(seen) >= self.limit:
            self.throttled_total.labels(scope).inc()
            retry = max(1, int(seen[0] + self.window_s - moment) + 1)
            raise ThrottledError(
                retry, f"too many failed authentications from this {scope}; retry in {retry} s"
            )

    def failed(self, address: str, name: str | None, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        self.failed_total.inc()
        for key in (f"address:{address}", *((f"identity:{name}",) if name else ())):
            self._failures.setdefault(key, deque()).append(moment)
        if len(self._failures) > 100_000:  # a scan of many addresses must not grow memory for ever
            self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > moment - self.window_s}


class ThrottledError(HttpError):
    def __init__(self, retry_after_s: int, message: str) -> None:
        super().__init__(429, "auth.throttled", message, headers={"Retry-After": str(retry_after_s)})


class Authenticator:
    def __init__(
        self,
        *,
        role_tokens: dict[str, frozenset[str]],
        seat_tokens: dict[str, str],
        credentials: CredentialStore,
        sessions: SessionStore,
        throttle: Throttle,
        session_secret: bytes | None = None,
    ) -> None:
        env: list[tuple[Role, str, str | None]] = [
            (Role.SEAT, token, seat) for token, seat in seat_tokens.items()
        ]
        env += [(Role(role), token, None) for role, tokens in role_tokens.items() for token in tokens]
        self._env = env
        self.credentials = credentials
        self.sessions = sessions
        self.throttle = throttle
        # Several gateway instances must share HOTLINE_SESSION_SECRET for cookies to work across them.
        self._secret = session_secret or secrets.token_bytes(32)

    async def identity_of_token(self, token: str) -> Identity | None:
        """The identity a token proves, or None (no exception: callers decide 401 or a login page)."""
        if claimed_name(token) is not None:
            try:
                credential = await self.credentials.verify(token)
            except (RedisError, OSError) as exc:
                raise HttpError(
                    503, "auth.unavailable", f"cannot check named credentials now: {exc}"
                ) from exc
            if credential is None:
                return None
            return Identity(Role(credential.role), credential.name, credential.seat)
        found = None
        for role, known, seat in self._env:
            # Compare with every token, in constant time, so timing does not reveal a prefix.
            if hmac.compare_digest(token.encode(), known.encode()):
                found = Identity(role, f"{ENV_NAME_PREFIX}{token_id(token)}", seat)
        return found

    async def log_in(self, request: web.Request, token: str) -> Identity | None:
        """Check a login form's token (throttled like a bearer token); None when it is wrong."""
        name = claimed_name(token)
        if name:
            request[CLAIMED] = name
        self._check_throttle(request, name)
        return await self.identity_of_token(token)

    async def new_session(self, identity: Identity) -> str:
        data = SessionData(identity.role.value, identity.name, identity.seat)
        session_id = await self.sessions.start(data, SESSION_SECONDS)
        return f"{session_id}.{self._sign(session_id)}"

    async def end_session(self, identity: Identity) -> None:
        await self.sessions.end(identity.session_id, identity.name)

    async def read_session(self, cookie: str) -> Identity | None:
        session_id, _, signature = cookie.rpartition(".")
        if not session_id or not hmac.compare_digest(signature, self._sign(session_id)):
            return None  # forged: refused without asking Redis
        try:
            data = await self.sessions.read(session_id)
        except (RedisError, OSError) as exc:
            raise HttpError(503, "auth.unavailable", f"cannot check the session now: {exc}") from exc
        if data is None or data.role not in set(Role):
            return None
        return Identity(
            Role(data.role), data.name, data.seat, via_session=True,
            csrf_token=self._sign("csrf:" + cookie), session_id=session_id,
        )  # fmt: skip

    async def authenticate(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header.removeprefix("Bearer ").strip()
            name = claimed_name(token)
            if name:
                request[CLAIMED] = name
            self._check_throttle(request, name)
            identity = await self.identity_of_token(token)
            if identity is None:
                raise HttpError(401, "auth.invalid_token", "the bearer token is not valid (or has expired)")
            return identity
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise HttpError(401, "auth.required", "log in, or send Authorization: Bearer <token>")
        self._check_throttle(request, None)
        identity = await self.read_session(cookie)
        if identity is None:
            raise HttpError(401, "auth.session_ended", "the session has ended or is not valid; log in again")
        if request.method not in {"GET", "HEAD", "OPTIONS"}:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent, identity.csrf_token):
                raise HttpError(
                    403, "auth.csrf", f"missing or wrong {CSRF_HEADER} header for a cookie session"
                )
        return identity

    def _check_throttle(self, request: web.Request, name: str | None) -> None:
        self.throttle.check("address", request.remote or "")
        if name:
            self.throttle.check("identity", name)

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


AUTH_KEY = web.AppKey("auth", Authenticator)


async def require(request: web.Request, *roles: Role) -> Identity:
    """The caller's identity if its role is one of ``roles`` (admin always is); else 401/403/429."""
    identity = await request.app[AUTH_KEY].authenticate(request)
    request[IDENTITY] = identity
    if identity.role is not Role.ADMIN and identity.role not in roles:
        allowed = ", ".join(sorted({*(r.value for r in roles), Role.ADMIN.value}))
        raise HttpError(
            403, "auth.forbidden", f"this needs the role {allowed}; you are {identity.role.value}"
        )
    return identity


def require_seat_party(identity: Identity, extension: str, what: str) -> None:
    """403 unless ``identity`` may act for seat ``extension`` (a seat only for itself)."""
    if not identity.may_act_for(extension):
        raise HttpError(
            403,
            "auth.not_your_seat",
            f"seat {identity.seat} may not {what} of seat {extension}; only its own",
        )


def require_call_party(identity: Identity, call: Call | None, call_id: str) -> None:
    """403 unless ``identity`` may act on the call: a seat only on a call it rings for or talks on."""
    if identity.role is Role.SEAT and call is not None and not call.has_seat(identity.seat or ""):
        raise HttpError(403, "auth.not_your_call", f"seat {identity.seat} is not a party to call {call_id}")
