"""Reading back what the gateway keeps in Redis: every value is untrusted input.

Anyone who can write to Redis (or a bug, or a half-written value) can put anything under the
gateway's keys, and another instance reads it back: transfer mirrors, leases, live-state mirrors,
KPI buckets, callback entries. Each of them is parsed here into a typed value or refused: a refused
value is logged as ``redis.value_refused`` naming its key and field, counted in
``hotline_redis_values_refused_total`` by what it is, and skipped by its reader, so a background
loop never crashes on it and no AMI action is ever built from it. The types of each value live
with their owner (``transfers.machine``, ``web.snapshot``, ``callbacks.service``, ...); this module
owns the parse, the refusal and the count, and the small types they share.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, TypeVar

import structlog
from prometheus_client import CollectorRegistry, Counter
from pydantic import Field, TypeAdapter, ValidationError

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Printable text of bounded length (no control characters: a CR/LF never rides along).
Text = Annotated[str, Field(max_length=1000, pattern=r"^[^\x00-\x1f\x7f]*$")]
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Epoch = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # epoch seconds


class Source(StrEnum):
    """What was read back: the metric's label (keys themselves are unbounded: they go to the log)."""

    TRANSFER = "transfer"
    LEASE = "lease"
    LIVE = "live"
    KPI = "kpi"
    CALLBACK = "callback"


# Process-wide: the refusals of every node this process runs. Each node's registry includes it
# (``register``), so /metrics shows it whichever registry serves the page.
REFUSED = Counter(
    "hotline_redis_values_refused",
    "values read back from Redis that failed their parse and were skipped",
    ["source"],
    registry=None,
)


def register(registry: CollectorRegistry) -> None:
    registry.register(REFUSED)


def refuse(source: Source, key: str, field: str, problem: str) -> None:
    """Log and count one refused value; its reader skips it."""
    log.warning("redis.value_refused", source=source.value, key=key, field=field, problem=problem[:200])
    REFUSED.labels(source.value).inc()


def parse(adapter: TypeAdapter[T], raw: bytes | str, *, source: Source, key: str) -> T | None:
    """``raw`` (JSON) as ``adapter``'s type, strictly (a number in a string is not a number); None if refused."""
    try:
        return adapter.validate_json(raw, strict=True)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in error["loc"]) or "(value)"
        refuse(source, key, field, error["msg"])
        return None


def text(raw: bytes | str, *, source: Source, key: str, field: str) -> str | None:
    """A Redis string as text; None (refused) if it is not UTF-8."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode()
    except UnicodeDecodeError:
        refuse(source, key, field, "not UTF-8")
        return None


def amount(raw: bytes | str, *, source: Source, key: str, field: str) -> float | None:
    """A stored figure: a finite number, at least 0; None (refused) otherwise."""
    value = text(raw, source=source, key=key, field=field)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        refuse(source, key, field, f"{value[:40]!r} is not a finite number >= 0")
        return None
    return number
