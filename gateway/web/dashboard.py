"""The supervisors' dashboard: login, the page, its static files and the live feed.

Routes: ``GET /dashboard`` (the page; to ``/login`` without a session), ``GET|POST /login``,
``POST /logout``, ``GET /api/live`` (SSE from the ``LiveHub``), ``GET /api/snapshot`` (the latest
snapshot as JSON) and ``GET /static/<file>`` (the page's scripts and styles).

The browser logs in once with a supervisor or admin token and then holds a signed session cookie
(``gateway.web.auth``); the page reads its CSRF token from a meta tag and sends it on logout. The
login form cannot carry a CSRF token (there is no session yet), so ``POST /login`` requires the
request's Origin to be this server. Every response gets security headers; the page runs no inline
script, so the Content-Security-Policy allows scripts from this origin only.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.settings import token_id
from gateway.web.auth import AUTH_KEY, SESSION_COOKIE, SESSION_SECONDS, Role, require
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

LOGIN_ERRORS = {
    "invalid": "令牌无效，请检查后重试。",
    "role": "该令牌没有查看监控大屏的权限（需要值班长或管理员令牌）。",
}

_PAGES = web.AppKey("dashboard_pages", dict[str, str])  # templates read once at set-up


def setup_dashboard(app: web.Application, hub: LiveHub) -> None:
    """Add the dashboard's routes to ``app``; ``app[AUTH_KEY]`` must be set before it serves."""
    app[LIVE_HUB] = hub
    pages = {
        name: (STATIC_DIR / name).read_text(encoding="utf-8") for name in ("dashboard.html", "login.html")
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


def _page(request: web.Request, name: str, status: int = 200, **fields: str) -> web.Response:
    text = request.app[_PAGES][name]
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", html.escape(value))
    return web.Response(
        text=text, status=status, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


def _session_csrf(request: web.Request) -> str | None:
    """The CSRF token of a valid supervisor/admin session cookie, or None."""
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = request.app[AUTH_KEY].read_session(cookie) if cookie else None
    if principal is None or principal.role not in {*PAGE_ROLES, Role.ADMIN}:
        return None
    return principal.csrf_token


async def _dashboard(request: web.Request) -> web.Response:
    csrf = _session_csrf(request)
    if csrf is None:
        raise web.HTTPFound("/login")
    return _page(request, "dashboard.html", csrf_token=csrf)


async def _login_form(request: web.Request) -> web.Response:
    if _session_csrf(request) is not None:
        raise web.HTTPFound("/dashboard")
    return _page(request, "login.html", error="")


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
    role = request.app[AUTH_KEY].role_of_token(token) if token else None
    if role is None:
        return _page(request, "login.html", status=401, error=LOGIN_ERRORS["invalid"])
    if role not in {*PAGE_ROLES, Role.ADMIN}:
        return _page(request, "login.html", status=403, error=LOGIN_ERRORS["role"])
    response = web.Response(status=303, headers={"Location": "/dashboard"})
    response.set_cookie(
        SESSION_COOKIE,
        request.app[AUTH_KEY].new_session(role, identity=token_id(token)),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


async def _logout(request: web.Request) -> web.Response:
    # Sessions are signed, not stored: logging out forgets the cookie in this browser.
    require(request, *FEED_ROLES)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/", secure=request.secure, httponly=True, samesite="Strict")
    return response


async def _live(request: web.Request) -> web.StreamResponse:
    require(request, *FEED_ROLES)
    return await request.app[LIVE_HUB].stream(request)


async def _snapshot(request: web.Request) -> web.Response:
    require(request, *FEED_ROLES)
    snapshot = request.app[LIVE_HUB].latest
    if snapshot is None:
        raise HttpError(503, "live.not_ready", "no snapshot yet: the gateway is still reading the PBX")
    return web.Response(
        text=snapshot.to_json(), content_type="application/json", headers={"Cache-Control": "no-store"}
    )


def _static_file(path: Path, content_type: str) -> Handler:
    async def serve(request: web.Request) -> web.FileResponse:
        # Revalidate each load (ETag/Last-Modified answer with 304) so a deploy shows at once.
        return web.FileResponse(path, headers={"Cache-Control": "no-cache", "Content-Type": content_type})

    return serve
