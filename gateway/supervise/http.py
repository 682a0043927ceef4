"""``POST /api/calls/{call_id}/supervise`` ``{"mode": "listen" | "whisper" | "barge"}``: supervisors only.

202 with the audit entry: the supervisor's phone rings, then they hear (and maybe speak into)
the call. Seats and admins get 403: an admin token has no phone and listening in on citizens is
the supervisors' job alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.supervise.service import Mode, SuperviseError, SuperviseService, Use, supervisor_extension
from gateway.web.auth import Role, require
from gateway.web.errors import HttpError, read_json

SUPERVISE = web.AppKey("supervise", SuperviseService)
EXTENSIONS = web.AppKey("supervisor_extensions", Mapping[str, str])
_MODES = ", ".join(m.value for m in Mode)


def setup_supervise(app: web.Application, service: SuperviseService, extensions: Mapping[str, str]) -> None:
    app[SUPERVISE] = service
    app[EXTENSIONS] = extensions
    app.router.add_post("/api/calls/{call_id}/supervise", supervise)


async def supervise(request: web.Request) -> web.Response:
    identity = await require(request, Role.SUPERVISOR)
    if identity.role is not Role.SUPERVISOR:  # ``require`` lets admins through; they have no phone
        raise HttpError(
            403, "auth.forbidden", f"listening in is for supervisors; you are {identity.role.value}"
        )
    body = await read_json(request)
    mode = body.get("mode")
    if mode not in {m.value for m in Mode}:
        raise HttpError(400, "supervise.invalid_mode", f"mode must be one of {_MODES}, not {mode!r}")
    use = Use(
        who=identity.name,
        client=request.remote or "",
        mode=Mode(str(mode)),
        call_id=request.match_info["call_id"],
        extension=supervisor_extension(request.app[EXTENSIONS], identity.name),
    )
    try:
        entry = await request.app[SUPERVISE].start(use)
    except SuperviseError as exc:
        raise HttpError(exc.status, exc.code, str(exc)) from None
    return web.json_response({"supervise": entry}, status=202)
