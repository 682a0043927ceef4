"""Runtime settings: the merge config's path plus what only the environment may hold.

Secrets (AMI secret, order-system token, API tokens) come from environment variables only; the
YAML names the variables. Missing secrets are reported together, naming each variable.
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


class SettingsError(GatewayError):
    code = "settings.invalid"


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
    reports_retention_days: int = DEFAULT_REPORTS_RETENTION_DAYS
    role_tokens: dict[str, frozenset[str]] = field(default_factory=dict)
    # token_id(supervisor token) -> the extension of their phone (the tokens themselves are not kept)
    supervisor_extensions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, config_path: str | Path | None = None
    ) -> Settings:
        env = os.environ if env is None else env
        path = Path(config_path or env.get(ENV_CONFIG, "hotline_merge.yaml"))
        config = load_config(path)
        missing = [
            name for name in (config.ami.secret_env, config.order_system.token_env) if not env.get(name)
        ]
        if missing:
            raise SettingsError(f"set the environment variable(s) {', '.join(missing)} (named in {path})")
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
            # Without its own variable the order system posts back with the token it is called with.
            feedback_token=env.get(ENV_FEEDBACK_TOKEN) or env[config.order_system.token_env],
            role_tokens={
                role: frozenset(t.strip() for t in env.get(var, "").split(",") if t.strip())
                for role, var in ENV_ROLE_TOKENS.items()
            },
            supervisor_extensions=_extensions(env.get(ENV_SUPERVISOR_EXTENSIONS, "")),
        )


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, "a TCP port", 1, 65535)


def _number(env: Mapping[str, str], name: str, default: int, what: str, low: int, high: int) -> int:
    text = env.get(name, str(default))
    if not text.isdigit() or not low <= int(text) <= high:
        raise SettingsError(f"{name}={text!r} is not {what} ({low}-{high})")
    return int(text)


def token_id(token: str) -> str:
    """A stable, non-secret name for a token: who did something, without writing the token down."""
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
