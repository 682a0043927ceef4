"""HTTP client of the order system: one POST per call record, and what each answer means.

Owns the request (``POST`` to ``order_system.url``, e.g. ``https://orders.example/work-orders``,
with ``Idempotency-Key`` and a bearer token) and the reading of the answer as one of four results
(docs/order-system.md is the contract):

- created / accepted (2xx) and duplicate (409 naming the same key): the order system has it;
- retry: 5xx, 408, 425, 429, 401/403, 3xx, timeouts and connection errors. Auth and redirects are
  configuration faults, not faults of the record: dead-lettering every record until someone fixes
  the token would only move the backlog elsewhere, so they are retried (and logged as errors);
- reject: any other 4xx (the record or key is wrong): it goes to the dead-letter stream.

It also asks the order system for a caller's recent work orders (``caller_history``, the lookup
of docs/order-system.md section 3), for the seats' screen pop: a short timeout, and ``None``
("unavailable") on any failure, so a slow order system never holds a pop back.

The token is read once, from the environment variable whose NAME is configured.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

import aiohttp
import structlog

from gateway.records.tokens import token_from_env

log = structlog.get_logger(__name__)

RETRY_STATUSES = frozenset({401, 403, 408, 425, 429})


class Result(StrEnum):
    CREATED = "created"
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    REJECT = "reject"

    @property
    def delivered(self) -> bool:
        return self in (Result.CREATED, Result.ACCEPTED, Result.DUPLICATE)


@dataclass(frozen=True)
class Answer:
    result: Result
    status: int | None  # None when no HTTP answer came (timeout, refused, reset)
    reason: str  # short and stable: a metric label
    retry_after_s: float | None = None
    detail: str = ""  # what the order system said, for the dead letter


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date, or nothing: our own backoff decides


class OrderSystemClient:
    """Use as ``async with OrderSystemClient(...) as client`` (it owns an aiohttp session)."""

    def __init__(
        self,
        url: str,
        timeout_s: float,
        token_env: str,
        *,
        connections: int = 64,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        token = token_from_env(token_env, "the order system's bearer token (order_system.token_env)", environ)
        self.endpoint = url
        self.timeout_s = timeout_s
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OrderSystemClient:
        connector = aiohttp.TCPConnector(limit=self._connections)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, headers=self._headers
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def submit(self, idempotency_key: str, record_json: bytes) -> Answer:
        if self._session is None:
            raise RuntimeError("OrderSystemClient is used outside 'async with'")
        try:
            async with self._session.post(
                self.endpoint,
                data=record_json,
                headers={"Idempotency-Key": idempotency_key},
                allow_redirects=False,
            ) as response:
                return await self._read(response, idempotency_key)
        except TimeoutError:
            return Answer(Result.RETRY, None, "timeout")
        except aiohttp.ClientError as exc:
            return Answer(Result.RETRY, None, f"connection:{type(exc).__name__}")

    async def caller_history(self, caller_number: str, since: dt.datetime) -> list[dict[str, Any]] | None:
        """The caller's work orders created since ``since``, newest first; None if unavailable."""
        if self._session is None:
            raise RuntimeError("OrderSystemClient is used outside 'async with'")
        query = {"caller_number": caller_number, "since": since.astimezone(dt.UTC).isoformat()}
        try:
            async with self._session.get(self.endpoint, params=query, allow_redirects=False) as response:
                if response.status != 200:
                    log.warning("order_history_unavailable", status=response.status)
                    return None
                body = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("order_history_unavailable", error=type(exc).__name__)
            return None
        orders = body.get("work_orders") if isinstance(body, dict) else None
        return [o for o in orders if isinstance(o, dict)] if isinstance(orders, list) else None

    async def _read(self, response: aiohttp.ClientResponse, idempotency_key: str) -> Answer:
        status = response.status
        if status == 201:
            return Answer(Result.CREATED, status, "created")
        if 200 <= status < 300:
            return Answer(Result.ACCEPTED, status, "accepted")
        if status == 409:
            # Only a 409 naming our key means "already have it"; any other conflict is a rejection.
            try:
                body = await response.json(content_type=None)
            except (ValueError, aiohttp.ClientError):
                body = None
            if isinstance(body, dict) and body.get("idempotency_key") == idempotency_key:
                return Answer(Result.DUPLICATE, status, "duplicate")
            return Answer(Result.REJECT, status, "conflict")
        if status >= 500 or status in RETRY_STATUSES or 300 <= status < 400:
            if status in (401, 403) or 300 <= status < 400:
                log.error("order_system_misconfigured", status=status, endpoint=self.endpoint)
            return Answer(Result.RETRY, status, f"http_{status}", _retry_after(response.headers))
        detail = (await response.text(errors="replace"))[:500]
        return Answer(Result.REJECT, status, f"http_{status}", detail=detail)
