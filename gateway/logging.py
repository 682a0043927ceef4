"""structlog set-up, done once per process: JSON lines in production, readable text on a TTY.

Call ids are bound with ``bind_call`` through contextvars, so every log line written while a
call is being handled carries its Linkedid without passing it around.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    """Idempotent; ``json=None`` picks JSON unless stderr is a terminal."""
    global _configured
    if _configured:
        return
    _configured = True
    as_json = (not sys.stderr.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if as_json else structlog.dev.ConsoleRenderer()
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def bind_call(call_id: str) -> None:
    """Tag every following log line in this context with the call's id (its Linkedid)."""
    structlog.contextvars.bind_contextvars(call_id=call_id)


def unbind_call() -> None:
    structlog.contextvars.unbind_contextvars("call_id")
