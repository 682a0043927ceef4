"""Bearer tokens of the order-system link, in both directions; values only ever from the environment."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from gateway.errors import GatewayError


class TokenConfigError(GatewayError):
    code = "records.token_missing"


def token_from_env(name: str, what: str, environ: Mapping[str, str] | None = None) -> str:
    token = (os.environ if environ is None else environ).get(name, "")
    if not token:
        raise TokenConfigError(f"environment variable {name} is empty or unset; it must hold {what}")
    return token


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header."""
    scheme, _, presented = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
