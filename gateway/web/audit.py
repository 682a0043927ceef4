"""The web side of the audit log: one middleware writes one entry per state-changing request
(POST, PUT, PATCH, DELETE: whatever the route, allowed or refused) and per refused
authentication (401, 403, 429 on any method), and counts each 401 toward the throttle.

Admin routes: ``GET /api/audit`` (filters: who, role, seat, action, target, result, since, limit)
and ``POST /api/sessions/{name}/revoke`` (end every browser session of a credential).
Being a middleware, no route can be added without being audited; ``tests/security`` walks the
router to prove it.
"""

from __future__ import annotations

from aiohttp import web

from gateway.audit import FILTERS, AuditEntry, AuditLog
from gateway.web.auth import AUTH_KEY, CLAIMED, IDENTITY, Identity, Role, require
from gateway.web.errors import ERROR_CODE, Handler, HttpError

AUDIT = web.AppKey("audit", AuditLog)
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSALS = frozenset({401, 403, 429})


def setup_audit(app: web.Application, audit: AuditLog) -> None:
    app[AUDIT] = audit
    app.router.add_get("/api/audit", read_audit)
    app.router.add_post("/api/sessions/{name}/revoke", revoke_sessions)


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside ``error_middleware``: it sees every answer, errors included, as a status."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects (login, logout) are raised
        await _after(request, exc.status)
        raise
    await _after(request, response.status)
    return response


async def _after(request: web.Request, status: int) -> None:
    if status == 401:
        request.app[AUTH_KEY].throttle.failed(request.remote or "", request.get(CLAIMED))
    if request.method not in CHANGES and status not in REFUSALS:
        return
    identity: Identity | None = request.get(IDENTITY)
    code = request.get(ERROR_CODE)
    route = request.match_info.route.resource
    await request.app[AUDIT].record(
        AuditEntry(
            who=identity.name if identity else (request.get(CLAIMED) or "anonymous"),
            role=identity.role.value if identity else "",
            seat=(identity.seat or "") if identity else "",
            action=f"{request.method} {route.canonical if route else request.path}",
            target=",".join(f"{k}={v}" for k, v in sorted(request.match_info.items())),
            result=f"{status} {code}" if code else str(status),
            client=request.remote or "",
        )
    )


async def read_audit(request: web.Request) -> web.Response:
    await require(request, Role.ADMIN)
    query = request.query
    try:
        since = float(query.get("since", "0"))
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise HttpError(400, "audit.invalid_query", "since is epoch seconds, limit a whole number") from None
    if not 1 <= limit <= 1000:
        raise HttpError(400, "audit.invalid_query", "limit is between 1 and 1000")
    unknown = set(query) - {*FILTERS, "since", "limit"}
    if unknown:
        raise HttpError(
            400,
            "audit.invalid_query",
            f"unknown filter(s) {', '.join(sorted(unknown))}; use {', '.join(FILTERS)}",
        )
    filters = {k: v for k, v in query.items() if k in FILTERS}
    entries = await request.app[AUDIT].read(filters, since=since, limit=limit)
    return web.json_response({"entries": entries})


async def revoke_sessions(request: web.Request) -> web.Response:
    """End every browser session of a credential (a lost laptop, a seat that left)."""
    await require(request, Role.ADMIN)
    ended = await request.app[AUTH_KEY].sessions.end_all(request.match_info["name"])
    return web.json_response({"name": request.match_info["name"], "sessions_ended": ended})
