"""Who may do what: bearer tokens per role for the API, a signed session cookie for the dashboard.

Roles: ``supervisor`` reads everything and may override the one-hand-over rule; ``seat`` drives
its own calls and login state; ``admin`` may do everything, including config reloads. Tokens come
from the environment only (HOTLINE_*_TOKENS). The dashboard logs in with a supervisor or admin
token and gets an HttpOnly, SameSite=Strict cookie; state-changing requests made with that cookie
must also send the session's CSRF token, so another site cannot act with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web

from gateway.settings import token_id
from gateway.web.errors import HttpError

SESSION_COOKIE = "hotline_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600  # one shift


class Role(StrEnum):
    SUPERVISOR = "supervisor"
    SEAT = "seat"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    role: Role
    via_session: bool  # authenticated by the dashboard cookie (then CSRF applies)
    csrf_token: str = ""
    identity: str = ""  # token_id() of the token presented (directly or to log in): who, for audits


class Authenticator:
    def __init__(self, role_tokens: dict[str, frozenset[str]], session_secret: bytes | None = None) -> None:
        self._tokens = [(Role(role), token) for role, tokens in role_tokens.items() for token in tokens]
        # Several gateway instances must share HOTLINE_SESSION_SECRET for cookies to work across them.
        self._secret = session_secret or secrets.token_bytes(32)

    def role_of_token(self, token: str) -> Role | None:
        found = None
        for role, known in self._tokens:
            # Compare with every token, in constant time, so timing does not reveal a prefix.
            if hmac.compare_digest(token.encode(), known.encode()):
                found = role
        return found

    def new_session(self, role: Role, now: float | None = None, *, identity: str = "") -> str:
        expires = int((now or time.time()) + SESSION_SECONDS)
        payload = f"{role.value}.{expires}.{secrets.token_urlsafe(12)}.{identity}"
        return f"{payload}.{self._sign(payload)}"

    def read_session(self, cookie: str, now: float | None = None) -> Principal | None:
        payload, _, signature = cookie.rpartition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        parts = payload.split(".")
        if len(parts) != 4 or parts[0] not in set(Role) or not parts[1].isdigit():
            return None
        role_text, expires, _nonce, identity = parts
        if int(expires) < (now or time.time()):
            return None
        return Principal(
            Role(role_text), via_session=True, csrf_token=self.csrf_token(cookie), identity=identity
        )

    def csrf_token(self, cookie: str) -> str:
        return self._sign("csrf:" + cookie)

    def authenticate(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header.removeprefix("Bearer ").strip()
            role = self.role_of_token(token)
            if role is None:
                raise HttpError(401, "auth.invalid_token", "the bearer token is not valid")
            return Principal(role, via_session=False, identity=token_id(token))
        cookie = request.cookies.get(SESSION_COOKIE)
        principal = self.read_session(cookie) if cookie else None
        if principal is None:
            raise HttpError(401, "auth.required", "log in, or send Authorization: Bearer <token>")
        if request.method not in {"GET", "HEAD", "OPTIONS"}:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent, principal.csrf_token):
                raise HttpError(
                    403, "auth.csrf", f"missing or wrong {CSRF_HEADER} header for a cookie session"
                )
        return principal

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


AUTH_KEY = web.AppKey("auth", Authenticator)


def require(request: web.Request, *roles: Role) -> Principal:
    """The caller's principal if its role is one of ``roles`` (admin always is); else 401/403."""
    auth: Authenticator = request.app[AUTH_KEY]
    principal = auth.authenticate(request)
    if principal.role is not Role.ADMIN and principal.role not in roles:
        allowed = ", ".join(sorted({*(r.value for r in roles), Role.ADMIN.value}))
        raise HttpError(
            403, "auth.forbidden", f"this needs the role {allowed}; you are {principal.role.value}"
        )
    return principal
