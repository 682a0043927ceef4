"""Seat tokens in tests: each seat has its own (``HOTLINE_SEAT_TOKENS=1001:<token>,...``)."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.calls.model import Call
from gateway.settings import ENV_ROLE_TOKENS, seat_tokens


def seat_token(env: Mapping[str, str], extension: str | None = None) -> str:
    """The token of seat ``extension`` (any seat's when None) from the environment."""
    by_seat = {seat: token for token, seat in seat_tokens(env[ENV_ROLE_TOKENS["seat"]]).items()}
    return by_seat[extension] if extension else next(iter(by_seat.values()))


def bearer(env: Mapping[str, str], role: str, seat: str | None = None) -> dict[str, str]:
    token = seat_token(env, seat) if role == "seat" else env[ENV_ROLE_TOKENS[role]].split(",")[0]
    return {"Authorization": f"Bearer {token}"}


def seat_on(call: Call | None) -> str | None:
    """The seat ringing for or connected to the call now (the latest such party)."""
    if call is None:
        return None
    return next((p.party for p in reversed(call.parties) if call.has_seat(p.party)), None)
