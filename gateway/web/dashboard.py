"""The supervisors' dashboard: login, the page, its static files and the live feed.

Routes: ``GET /dashboard`` (the page; to ``/login`` without a session), ``GET|POST /login``,
``POST /logout``, ``GET /api/live`` (SSE from the ``LiveHub``), ``GET /api/snapshot`` (the latest
snapshot as JSON) and ``GET /static/<file>`` (the page's scripts and styles).

The browser logs in once with a token (an environment token or a named credential) and then
holds a session cookie (``gateway.web.auth``; the session itself lives in Redis, so logout ends
it); supervisors and admins land on the dashboard, seats on their workbench (``SEAT_PAGE``). The
page reads its CSRF token from a meta tag and sends it on logout. The login form cannot carry a
CSRF token (there is no session yet), so ``POST /login`` requires the request's Origin to be this
server. Every response gets security headers; the page runs no inline script, so the
Content-Security-Policy allows scripts from this origin only.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.web.auth import AUTH_KEY, IDENTITY, SESSION_COOKIE, SESSION_SECONDS, Identity, Role, require
from gateway.web.errors import HttpError
from gateway.web.live import LIVE_HUB, LiveHub

STATIC_DIR = Path(__file__).with_name("static")
# Explicit types (nosniff makes browsers strict about them); templates (.html) are never served raw.
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
PAGE_ROLES = (Role.SUPERVISOR,)  # admin is always allowed too
FEED_ROLES = (Role.SUPERVISOR, Role.SEAT)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer browsers send "Origin: null" on form posts,
    # and the login's origin check would refuse our own form.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}

LOGIN_ERRORS = {"invalid": "令牌无效或已过期，请检查后重试。"}
SEAT_PAGE = "/seat"  # the seats' workbench (its own module); seats land there after logging in

_PAGES = web.AppKey("dashboard_pages", dict[str, str])  # templates read once at set-up


def setup_dashboard(app: web.Application, hub: LiveHub) -> None:
    """Add the dashboard's routes to ``app``; ``app[AUTH_KEY]`` must be set before it serves."""
    app[LIVE_HUB] = hub
    pages = {
        name: (STATIC_DIR / name).read_text(encoding="utf-8")
        for name in ("dashboard.html", "login.html", "seat.html")
    }
    app[_PAGES] = pages
    app.router.add_get("/dashboard", _dashboard)
    app.router.add_get("/login", _login_form)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    app.router.add_get("/api/live", _live)
    app.router.add_get("/api/snapshot", _snapshot)
    for path in sorted(STATIC_DIR.iterdir()):
        if path.suffix in STATIC_TYPES:
            app.router.add_get(f"/static/{path.name}", _static_file(path, STATIC_TYPES[path.suffix]))
    app.on_response_prepare.append(_security_headers)
    app.on_shutdown.append(lambda _app: hub.close())
    app.cleanup_ctx.append(hub.lifetime)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def page(request: web.Request, name: str, status: int = 200, **fields: str) -> web.Response:
    text = request.app[_PAGES][name]
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", html.escape(value))
    return web.Response(
        text=text, status=status, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


async def session_identity(request: web.Request) -> Identity | None:
    """The identity of the request's session cookie, or None (no cookie, forged, ended)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return await request.app[AUTH_KEY].read_session(cookie) if cookie else None


def _landing(identity: Identity) -> str:
    return SEAT_PAGE if identity.role is Role.SEAT else "/dashboard"


async def _dashboard(request: web.Request) -> web.Response:
    identity = await session_identity(request)
    if identity is None:
        raise web.HTTPFound("/login")
    if identity.role not in {*PAGE_ROLES, Role.ADMIN}:
        raise web.HTTPFound(_landing(identity))
    return page(request, "dashboard.html", csrf_token=identity.csrf_token)


async def _login_form(request: web.Request) -> web.Response:
    identity = await session_identity(request)
    if identity is not None:
        raise web.HTTPFound(_landing(identity))
    return page(request, "login.html", error="")


def _same_origin(request: web.Request) -> bool:
    # Browsers send Origin on every form POST; Referer is the fallback for the odd one that does not.
    sent = request.headers.get("Origin") or request.headers.get("Referer") or ""
    parts = urlsplit(sent)
    return (parts.scheme, parts.netloc) == (request.scheme, request.host)


async def _login(request: web.Request) -> web.Response:
    if not _same_origin(request):
        raise HttpError(403, "auth.origin", "log in from this server's own /login page")
    form = await request.post()
    field = form.get("token")
    token = field.strip() if isinstance(field, str) else ""
    auth = request.app[AUTH_KEY]
    identity = await auth.log_in(request, token) if token else None
    if identity is None:
        return page(request, "login.html", status=401, error=LOGIN_ERRORS["invalid"])
    request[IDENTITY] = identity
    response = web.Response(status=303, headers={"Location": _landing(identity)})
    response.set_cookie(
        SESSION_COOKIE,
        await auth.new_session(identity),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


async def _logout(request: web.Request) -> web.Response:
    identity = await require(request, *FEED_ROLES)
    if identity.via_session:
        await request.app[AUTH_KEY].end_session(identity)  # server-side: a copied cookie dies too
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/", secure=request.secure, httponly=True, samesite="Strict")
    return response


async def _live(request: web.Request) -> web.StreamResponse:
    await require(request, *FEED_ROLES)
    return await request.app[LIVE_HUB].stream(request)


async def _snapshot(request: web.Request) -> web.Response:
    await require(request, *FEED_ROLES)
    snapshot = request.app[LIVE_HUB].whole()
    if snapshot is None:
        raise HttpError(503, "live.not_ready", "no snapshot yet: the gateway is still reading the PBX")
    return web.Response(text=snapshot, content_type="application/json", headers={"Cache-Control": "no-store"})


def _static_file(path: Path, content_type: str) -> Handler:
    async def serve(request: web.Request) -> web.FileResponse:
        # Revalidate each load (ETag/Last-Modified answer with 304) so a deploy shows at once.
        return web.FileResponse(path, headers={"Cache-Control": "no-cache", "Content-Type": content_type})

    return serve
