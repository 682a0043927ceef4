"""Runtime settings: the merge config's path plus what only the environment may hold.

Secrets (AMI secret, order-system token, feedback token, API tokens) come from environment
variables only; the YAML names some of the variables. Missing, placeholder or short secrets are
reported together, each naming its variable, and the gateway does not start. Seat tokens carry
their seat: ``HOTLINE_SEAT_TOKENS=1001:<token>,1002:<token>``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import GatewayError
from gateway.merge.loader import load_config
from gateway.merge.schema import HotlineConfig

ENV_CONFIG = "HOTLINE_CONFIG"
ENV_REDIS_URL = "HOTLINE_REDIS_URL"
ENV_HTTP_HOST = "HOTLINE_HTTP_HOST"
ENV_HTTP_PORT = "HOTLINE_HTTP_PORT"
ENV_LOG_LEVEL = "HOTLINE_LOG_LEVEL"
ENV_SPOOL_DIR = "HOTLINE_SPOOL_DIR"  # where call records wait on disk while Redis is unreachable
ENV_SESSION_SECRET = "HOTLINE_SESSION_SECRET"  # shared by all instances behind one dashboard URL
ENV_FEEDBACK_TOKEN = "HOTLINE_FEEDBACK_TOKEN"  # what the order system presents when posting back
# Redis Sentinel (high availability): "host:port,host:port,..." and the monitored master's name.
ENV_REDIS_SENTINELS = "HOTLINE_REDIS_SENTINELS"
ENV_REDIS_MASTER = "HOTLINE_REDIS_MASTER"
# In containers the AMI host differs from the YAML's (e.g. the compose service name).
ENV_AMI_HOST = "HOTLINE_AMI_HOST"
ENV_AMI_PORT = "HOTLINE_AMI_PORT"
ENV_ORDER_URL = "HOTLINE_ORDER_URL"
ENV_NODE_ID = "HOTLINE_NODE_ID"  # the Asterisk node this instance controls first (default: ami.node_id)
# Other nodes this instance takes over when their controller dies: "pbx-2=10.0.0.2:5038,pbx-3=...".
ENV_TAKEOVER_NODES = "HOTLINE_TAKEOVER_NODES"
ENV_LEASE_TTL_MS = "HOTLINE_LEASE_TTL_MS"
ENV_REPORTS_RETENTION_DAYS = "HOTLINE_REPORTS_RETENTION_DAYS"  # how long report buckets are kept
# A year of monthly rankings, each beside the month before, plus a margin.
DEFAULT_REPORTS_RETENTION_DAYS = 400
ENV_DIALPLANS_DIR = "HOTLINE_DIALPLANS_DIR"  # where `render`/`reload` write what Asterisk reads
# Each supervisor's own phone, for listen/whisper/barge: "<supervisor token>=<extension>,...".
ENV_SUPERVISOR_EXTENSIONS = "HOTLINE_SUPERVISOR_EXTENSIONS"
# API bearer tokens per role; several tokens per role are separated by commas.
ENV_ROLE_TOKENS = {
    "supervisor": "HOTLINE_SUPERVISOR_TOKENS",
    "seat": "HOTLINE_SEAT_TOKENS",
    "admin": "HOTLINE_ADMIN_TOKENS",
}


MIN_SECRET_CHARS = 24
# Words of example files and tutorials: a secret containing one was never replaced.
PLACEHOLDERS = ("change-me", "changeme", "change_me", "placeholder", "replace-me", "example", "secret")


class SettingsError(GatewayError):
    code = "settings.invalid"


def weakness(value: str) -> str | None:
    """Why ``value`` is not fit to be a credential, or None."""
    lowered = value.lower()
    word = next((w for w in PLACEHOLDERS if w in lowered), None)
    if word is not None:
        return f"still holds the placeholder {word!r}; make one with: openssl rand -hex 24"
    if len(value) < MIN_SECRET_CHARS:
        return f"is {len(value)} characters; at least {MIN_SECRET_CHARS} are needed (openssl rand -hex 24)"
    return None


def seat_tokens(text: str, name: str = ENV_ROLE_TOKENS["seat"]) -> dict[str, str]:
    """``1001:<token>,...`` -> {token: extension}; a token without its seat is refused."""
    out: dict[str, str] = {}
    for number, item in enumerate(filter(None, (p.strip() for p in text.split(","))), start=1):
        extension, colon, token = item.partition(":")
        if not colon or not extension.isdigit() or not token:
            raise SettingsError(
                f"{name}: item {number} does not name its seat; write EXTENSION:TOKEN, e.g. 1001:<token> "
                "(a seat token acts only for its own seat)"
            )
        out[token] = extension
    return out


@dataclass(frozen=True)
class NodeAddress:
    node_id: str
    host: str
    port: int


@dataclass(frozen=True)
class Settings:
    config_path: Path
    config: HotlineConfig
    redis_url: str
    http_host: str
    http_port: int
    log_level: str
    ami_host: str
    ami_port: int
    ami_secret: str = field(repr=False)
    order_token: str = field(repr=False)
    order_url: str
    spool_dir: Path
    dialplans_dir: Path
    ami_admin_secret: str = field(default="", repr=False)  # only `reload` needs it
    node_id: str = "pbx-1"
    takeover_nodes: tuple[NodeAddress, ...] = ()
    lease_ttl_ms: int = 5000
    feedback_token: str = field(default="", repr=False)
    session_secret: bytes | None = field(default=None, repr=False)
    feedback_token_env: str = ENV_FEEDBACK_TOKEN
    # Bootstrap API tokens from the environment: supervisor and admin tokens by role, and each
    # seat token with its extension. Named credentials live hashed in Redis (gateway.credentials).
    role_tokens: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    seat_tokens: dict[str, str] = field(default_factory=dict, repr=False)
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_master: str = "hotline"
    reports_retention_days: int = DEFAULT_REPORTS_RETENTION_DAYS
    # token_id(supervisor token) -> the extension of their phone (the tokens themselves are not kept)
    supervisor_extensions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, config_path: str | Path | None = None
    ) -> Settings:
        env = os.environ if env is None else env
        path = Path(config_path or env.get(ENV_CONFIG, "hotline_merge.yaml"))
        config = load_config(path)
        required = (config.ami.secret_env, config.order_system.token_env, ENV_FEEDBACK_TOKEN)
        missing = [name for name in required if not env.get(name)]
        if missing:
            raise SettingsError(
                f"set the environment variable(s) {', '.join(missing)} ({ENV_FEEDBACK_TOKEN} is the "
                "order system's own token for posting feedback, distinct from the gateway's)"
            )
        seats = seat_tokens(env.get(ENV_ROLE_TOKENS["seat"], ""))  # a seat-less token: its own message
        _check_secrets(env, config.ami.secret_env, config.ami.admin_secret_env, config.order_system.token_env)
        secret = env.get(ENV_SESSION_SECRET, "")
        return cls(
            config_path=path,
            config=config,
            redis_url=env.get(ENV_REDIS_URL, "redis://127.0.0.1:6379/0"),
            http_host=env.get(ENV_HTTP_HOST, "127.0.0.1"),
            http_port=_port(env, ENV_HTTP_PORT, 8080),
            log_level=env.get(ENV_LOG_LEVEL, "INFO").upper(),
            ami_host=env.get(ENV_AMI_HOST, config.ami.host),
            ami_port=_port(env, ENV_AMI_PORT, config.ami.port),
            ami_secret=env[config.ami.secret_env],
            order_token=env[config.order_system.token_env],
            order_url=env.get(ENV_ORDER_URL, config.order_system.url),
            spool_dir=Path(env.get(ENV_SPOOL_DIR, "var/spool")),
            dialplans_dir=Path(env.get(ENV_DIALPLANS_DIR, "dialplans")),
            ami_admin_secret=env.get(config.ami.admin_secret_env, ""),
            node_id=env.get(ENV_NODE_ID, config.ami.node_id),
            takeover_nodes=_nodes(env.get(ENV_TAKEOVER_NODES, "")),
            lease_ttl_ms=_number(env, ENV_LEASE_TTL_MS, 5000, "a lease time in ms", 500, 60_000),
            reports_retention_days=_number(
                env,
                ENV_REPORTS_RETENTION_DAYS,
                DEFAULT_REPORTS_RETENTION_DAYS,
                "a number of days to keep reports",
                1,
                3660,
            ),
            session_secret=secret.encode() if secret else None,
            feedback_token=env[ENV_FEEDBACK_TOKEN],
            role_tokens={
                role: frozenset(_tokens(env, ENV_ROLE_TOKENS[role])) for role in ("supervisor", "admin")
            },
            seat_tokens=seats,
            redis_sentinels=parse_sentinels(env.get(ENV_REDIS_SENTINELS, "")),
            redis_master=env.get(ENV_REDIS_MASTER, "hotline"),
            supervisor_extensions=_extensions(env.get(ENV_SUPERVISOR_EXTENSIONS, "")),
        )


def _tokens(env: Mapping[str, str], name: str) -> list[str]:
    return [t.strip() for t in env.get(name, "").split(",") if t.strip()]


def _check_secrets(env: Mapping[str, str], *names: str) -> None:
    """Every credential the environment holds is strong, or the gateway refuses to start."""
    problems = []
    for name in dict.fromkeys((*names, ENV_FEEDBACK_TOKEN, ENV_SESSION_SECRET)):
        why = weakness(env[name]) if env.get(name) else None
        if why:
            problems.append(f"{name} {why}")
    seat_var = ENV_ROLE_TOKENS["seat"]
    for var in ENV_ROLE_TOKENS.values():
        for number, token in enumerate(_tokens(env, var), start=1):
            why = weakness(token.partition(":")[2] if var == seat_var else token)
            if why:
                problems.append(f"{var}: token {number} {why}")
    if env.get(ENV_FEEDBACK_TOKEN) in {env.get(n) for n in names}:
        problems.append(f"{ENV_FEEDBACK_TOKEN} must differ from the gateway's own order-system token")
    if problems:
        raise SettingsError("refusing weak credentials: " + "; ".join(problems))


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    out = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"{ENV_REDIS_SENTINELS}: {item!r} is not HOST:PORT (e.g. 10.0.0.5:26379)")
        out.append((host, int(port)))
    return tuple(out)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, "a TCP port", 1, 65535)


def _number(env: Mapping[str, str], name: str, default: int, what: str, low: int, high: int) -> int:
    text = env.get(name, str(default))
    if not text.isdigit() or not low <= int(text) <= high:
        raise SettingsError(f"{name}={text!r} is not {what} ({low}-{high})")
    return int(text)


ENV_NAME_PREFIX = "env:"  # an environment token's identity is named "env:<token_id>"


def token_id(token: str) -> str:
    """A stable, non-secret name for an environment token: who did something, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _extensions(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        token, _, extension = item.rpartition("=")  # base64 tokens may end in "="; extensions are digits
        if not token or not extension.isdigit() or len(extension) > 16:
            raise SettingsError(
                f"{ENV_SUPERVISOR_EXTENSIONS}: an item is not TOKEN=EXTENSION (digits), e.g. s3cret=8001"
            )
        out[token_id(token)] = extension
    return out


def _nodes(text: str) -> tuple[NodeAddress, ...]:
    nodes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, _, address = item.partition("=")
        host, _, port = address.rpartition(":")
        if not node or not host or not port.isdigit():
            raise SettingsError(
                f"{ENV_TAKEOVER_NODES}: {item!r} is not NODE=HOST:PORT (e.g. pbx-2=10.0.0.2:5038)"
            )
        nodes.append(NodeAddress(node, host, int(port)))
    return tuple(nodes)
