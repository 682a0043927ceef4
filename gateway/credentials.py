"""Named API credentials, stored hashed in Redis (``keys.CREDENTIALS``) and managed by admins.

A credential has a name, a role, a seat (the extension, for role ``seat`` only) and an expiry; its
token is ``hk.<name>.<secret>``, printed once when it is added or rotated and never stored: Redis
holds a salted scrypt hash. Every gateway instance reads Redis on each check, so a rotation or a
revocation takes effect at once, without a restart. A successful check is remembered per token
digest only while the stored hash is unchanged, so scrypt's cost is paid once per token, not per
request. ``hotline-gateway credentials add|rotate|revoke|list`` is the admins' command.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import hmac
import json
import re
import secrets
import sys
import time
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from gateway import keys
from gateway.audit import AuditEntry, AuditLog
from gateway.errors import GatewayError
from gateway.logging import configure_logging
from gateway.redisconn import redis_from_env
from gateway.sessions import SessionStore

ROLES = ("seat", "supervisor", "admin")
TOKEN_PREFIX = "hk"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
SEAT = re.compile(r"[0-9]{3,6}")
# scrypt at n=2**14, r=8 costs ~16 MiB and some tens of ms: cheap for one check, dear for guessing.
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
DEFAULT_DAYS = 90


class CredentialError(GatewayError):
    code = "credentials.invalid"


@dataclass(frozen=True)
class Credential:
    name: str
    role: str
    seat: str | None
    expires_at: float  # epoch seconds
    created_at: float
    salt: str  # hex
    digest: str  # hex scrypt of the token

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> Credential:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls(**data)

    def public(self) -> dict[str, object]:
        """What admins may see: never the hash."""
        return {"name": self.name, "role": self.role, "seat": self.seat,
                "expires_at": self.expires_at, "created_at": self.created_at}  # fmt: skip


def _scrypt(token: str, salt: bytes) -> str:
    return hashlib.scrypt(token.encode(), salt=salt, maxmem=64 * 2**20, **SCRYPT).hex()


def claimed_name(token: str) -> str | None:
    """The credential a token claims to be (``hk.<name>.<secret>``), before any check."""
    prefix, _, rest = token.partition(".")
    name, _, secret = rest.partition(".")
    return name if prefix == TOKEN_PREFIX and NAME.fullmatch(name) and secret else None


class CredentialStore:
    def __init__(self, redis: aioredis.Redis, key: str = keys.CREDENTIALS) -> None:
        self.redis = redis
        self.key = key
        self._verified: dict[str, str] = {}  # sha256(token) -> the stored digest it matched

    async def add(
        self, name: str, role: str, seat: str | None, days: float = DEFAULT_DAYS, now: float | None = None
    ) -> str:
        if not NAME.fullmatch(name):
            raise CredentialError(f"name {name!r}: use 1-40 of a-z 0-9 _ - (e.g. seat-1001, wang-li)")
        if role not in ROLES:
            raise CredentialError(f"role {role!r}: one of {', '.join(ROLES)}")
        if (role == "seat") != (seat is not None) or (seat is not None and not SEAT.fullmatch(seat)):
            raise CredentialError("a seat credential needs --seat EXTENSION (3-6 digits); other roles none")
        if not 0 < days <= 366:
            raise CredentialError(f"--days {days}: between 1 and 366")
        if await self.redis.hexists(self.key, name):
            raise CredentialError(f"credential {name!r} exists; rotate or revoke it")
        return await self._store(name, role, seat, days, now)

    async def rotate(self, name: str, days: float = DEFAULT_DAYS, now: float | None = None) -> str:
        old = await self.get(name)
        if old is None:
            raise CredentialError(f"no credential {name!r}")
        return await self._store(name, old.role, old.seat, days, now)

    async def revoke(self, name: str) -> bool:
        return bool(await self.redis.hdel(self.key, name))

    async def all(self) -> list[Credential]:
        raw = await self.redis.hgetall(self.key)
        return sorted((Credential.from_json(v) for v in raw.values()), key=lambda c: c.name)

    async def get(self, name: str) -> Credential | None:
        raw = await self.redis.hget(self.key, name)
        if raw is None:
            return None
        try:
            return Credential.from_json(raw)
        except (ValueError, TypeError):
            return None  # Redis contents are untrusted: a mangled entry grants nothing

    async def verify(self, token: str, now: float | None = None) -> Credential | None:
        """The credential ``token`` belongs to, if it exists, has not expired and the secret matches."""
        name = claimed_name(token)
        credential = await self.get(name) if name else None
        if credential is None or credential.expires_at <= (now or time.time()):
            return None
        seen = hashlib.sha256(token.encode()).hexdigest()
        if self._verified.get(seen) == credential.digest:
            return credential
        try:
            digest = _scrypt(token, bytes.fromhex(credential.salt))
        except ValueError:
            return None
        if not hmac.compare_digest(digest, credential.digest):
            return None
        self._verified[seen] = credential.digest
        return credential

    async def _store(self, name: str, role: str, seat: str | None, days: float, now: float | None) -> str:
        token = f"{TOKEN_PREFIX}.{name}.{secrets.token_urlsafe(32).replace('.', '_')}"
        salt = secrets.token_bytes(16)
        moment = now or time.time()
        credential = Credential(
            name=name, role=role, seat=seat, expires_at=moment + days * 86400, created_at=moment,
            salt=salt.hex(), digest=_scrypt(token, salt),
        )  # fmt: skip
        await self.redis.hset(self.key, name, credential.to_json())
        return token


# --- the admins' command ---------------------------------------------------------------------

HELP = "manage API credentials in Redis: add, rotate, revoke, list (secrets printed once)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="default: HOTLINE_REDIS_URL or Sentinel settings")
    verbs = parser.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add", help="a new credential; prints its token once")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--seat", help="the seat's extension (role seat only)")
    add.add_argument("--days", type=float, default=DEFAULT_DAYS, help="valid for (default: %(default)s)")
    rotate = verbs.add_parser("rotate", help="a new secret for a credential; prints it once")
    rotate.add_argument("name")
    rotate.add_argument("--days", type=float, default=DEFAULT_DAYS)
    revoke = verbs.add_parser("revoke", help="remove a credential and end its sessions")
    revoke.add_argument("name")
    verbs.add_parser("list", help="names, roles, seats and expiry (never secrets)")


def run(args: argparse.Namespace) -> int:
    configure_logging("INFO")  # the audit line to stderr: stdout carries only the token
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    redis = redis_from_env(args.redis_url)
    store = CredentialStore(redis)
    audit = AuditLog(redis)
    who = f"cli:{getpass.getuser()}"
    try:
        if args.verb == "list":
            for c in await store.all():
                expires = time.strftime("%Y-%m-%d %H:%M", time.gmtime(c.expires_at))
                print(f"{c.name}\t{c.role}\t{c.seat or '-'}\texpires {expires} UTC")
            return 0
        if args.verb == "add":
            token = await store.add(args.name, args.role, args.seat, args.days)
        elif args.verb == "rotate":
            token = await store.rotate(args.name, args.days)
        else:
            token = ""
            if not await store.revoke(args.name):
                raise CredentialError(f"no credential {args.name!r}")
        ended = await SessionStore(redis).end_all(args.name) if args.verb != "add" else 0
        await audit.record(
            AuditEntry(who=who, role="admin", seat="", action=f"credentials.{args.verb}", target=args.name,
                       result=f"ok ({ended} sessions ended)", client="cli")
        )  # fmt: skip
        if token:
            print(token)
            print("(shown once; it is stored only as a hash)", file=sys.stderr)
        return 0
    finally:
        await redis.aclose()
