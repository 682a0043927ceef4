"""HTTP face of errors: every failure is JSON ``{"error": {"code", "message"}}`` with a fitting status.

Domain code raises ``GatewayError`` subclasses with stable codes; this module alone decides the
HTTP status, so a handler never builds an error response by hand.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.errors import GatewayError

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpError(GatewayError):
    """An error that carries its own HTTP status (bad input, missing resource, auth)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# Status by code prefix for domain errors that do not carry one; first match wins.
_STATUS_BY_PREFIX = (
    ("config.reload_failed", 502),  # Asterisk refused or was unreachable: not the config's fault
    ("config.", 422),
    ("settings.", 422),
    ("call.not_found", 404),
    ("transfer.not_found", 404),
    ("transfer.unknown_target", 400),
    ("transfer.mode_not_allowed", 400),
    ("transfer.", 409),
    ("agent.not_found", 404),
    ("agent.", 400),
    ("ami.unsafe", 400),
    ("ami.not_allowed", 403),
    ("ami.", 503),
    ("redis.", 503),
)


def status_for(error: GatewayError) -> int:
    if isinstance(error, HttpError):
        return error.status
    return next((status for prefix, status in _STATUS_BY_PREFIX if error.code.startswith(prefix)), 500)


def error_response(status: int, code: str, message: str, **extra: object) -> web.Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as exc:
        status = status_for(exc)
        problems = [str(p) for p in getattr(exc, "problems", [])]
        extra: dict[str, object] = {"problems": problems} if problems else {}
        if exc.details:
            extra["details"] = exc.details
        return error_response(status, exc.code, exc.message, **extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, f"http.{exc.status}", exc.reason)
    except Exception:
        log.exception("unhandled error", path=request.path, method=request.method)
        return error_response(500, "internal", "internal error; the gateway log has the details")


async def read_json(request: web.Request) -> dict[str, object]:
    """The request body as a JSON object, or a 400 that says what is wrong with it.

    The one place web/ parses a JSON body: 100,000 levels of nesting make the decoder raise
    RecursionError, which is bad input like any other (a 400, not a 500).
    """
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise HttpError(400, "request.invalid_json", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HttpError(400, "request.invalid_json", "the request body must be a JSON object")
    return body
