"""The seats' workbench (坐席工作台): the page, its live stream and the work-order draft routes.

- ``GET /seat``: the page, for a seat's browser session (its own extension); a supervisor or
  admin opens ``/seat?seat=1001`` to see (and help) that seat;
- ``GET /api/seats/{seat}/live``: SSE, the seat's own view only (``gateway.workbench.desk``), over
  the dashboard's live hub (topic ``seat:<extension>``);
- ``GET /api/seats/{seat}/setup``: what the page needs once: pause reasons, the category tree,
  departments, the caller-history window;
- ``GET|PUT /api/calls/{call_id}/draft``: the work-order draft, saved as the seat types.
Every action (login, pause, ready, hand-over) goes to the existing API routes; the identity
rules are ``gateway.web.auth``'s: a seat sees and acts only for itself and for calls it is or was
a party to (403 otherwise).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.node.runtime import Node
from gateway.records.from_calls import DraftSaved
from gateway.records.model import WorkOrderDraft
from gateway.tasks import cancel_tasks, start_task
from gateway.vocabulary import PartyKind
from gateway.web.auth import Identity, Role, require, require_seat_party
from gateway.web.dashboard import page, session_identity
from gateway.web.errors import HttpError, read_json
from gateway.web.live import LIVE_HUB
from gateway.workbench.categories import CategoryTree
from gateway.workbench.desk import Desk, topic
from gateway.workbench.drafts import DraftInput

DESK = web.AppKey("desk", Desk)
_SEAT_NODE = web.AppKey("seat_node", Node)
_TREE = web.AppKey("category_tree", CategoryTree)
SEAT_ROLES = (Role.SEAT, Role.SUPERVISOR)  # admin is always allowed too


def setup_seat(app: web.Application, desk: Desk, node: Node, tree: CategoryTree) -> None:
    """The routes and the desk's background task; the dashboard (``setup_dashboard``) serves the
    static files and runs the hub."""
    app[DESK], app[_SEAT_NODE], app[_TREE] = desk, node, tree
    app.router.add_get("/seat", seat_page)
    app.router.add_get("/api/seats/{seat}/live", seat_live)
    app.router.add_get("/api/seats/{seat}/setup", seat_setup)
    app.router.add_get("/api/calls/{call_id}/draft", get_draft)
    app.router.add_put("/api/calls/{call_id}/draft", put_draft)
    app.cleanup_ctx.append(_lifetime)


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    task = start_task(app[DESK].run(), "seat-desk")
    yield
    await cancel_tasks([task])


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=partial(json.dumps, ensure_ascii=False))


def _roster_seat(request: web.Request, extension: str) -> str:
    if extension not in request.app[DESK].plan().seats:
        raise HttpError(404, "agent.not_found", f"seat {extension!r} is not in the roster")
    return extension


async def seat_page(request: web.Request) -> web.Response:
    identity = await session_identity(request)
    if identity is None:
        raise web.HTTPFound("/login")
    if identity.role is Role.SEAT:
        extension = identity.seat or ""
    else:
        extension = request.query.get("seat", "")
        if not extension:
            raise HttpError(400, "seat.missing", "supervisors open a seat's workbench as /seat?seat=1001")
    _roster_seat(request, extension)
    return page(
        request,
        "seat.html",
        csrf_token=identity.csrf_token,
        seat=extension,
        role=identity.role.value,
    )


async def _for_seat(request: web.Request, what: str) -> tuple[Identity, str]:
    identity = await require(request, *SEAT_ROLES)
    extension = _roster_seat(request, request.match_info["seat"])
    require_seat_party(identity, extension, what)
    return identity, extension


async def seat_live(request: web.Request) -> web.StreamResponse:
    _, extension = await _for_seat(request, "see the workbench")
    desk = request.app[DESK]
    if extension not in desk.last_call:  # after a restart: the call its draft was for
        last = await request.app[_SEAT_NODE].drafts.last_call(extension)
        if last:
            desk.last_call[extension] = last
    return await request.app[LIVE_HUB].stream(request, topic=topic(extension))


async def seat_setup(request: web.Request) -> web.Response:
    identity, extension = await _for_seat(request, "see the workbench")
    desk = request.app[DESK]
    config = desk.config
    departments = sorted({line.department for line in config.legacy_lines})
    return _json(
        {
            "seat": extension,
            "name": desk.plan().seats[extension].name,
            "role": identity.role.value,
            "pause_reasons": list(desk.plan().pause_reasons),
            "categories": request.app[_TREE].as_plain(),
            "departments": departments,
            "history_days": config.workbench.history_days,
        }
    )


def _party_seats(request: web.Request, call_id: str) -> set[str]:
    """The seats a call rang or reached: live from the tracker, or from its remembered record."""
    node = request.app[_SEAT_NODE]
    call = node.tracker.calls.get(call_id)
    if call is not None:
        return {p.party for p in call.parties if p.kind is PartyKind.SEAT}
    return node.records.seats_of(call_id)


async def _draft_access(request: web.Request) -> tuple[Identity, str]:
    identity = await require(request, *SEAT_ROLES)
    call_id = request.match_info["call_id"]
    if identity.role is Role.SEAT:
        seat = identity.seat or ""
        node = request.app[_SEAT_NODE]
        known = seat in _party_seats(request, call_id) or call_id in {
            request.app[DESK].last_call.get(seat),
            await node.drafts.last_call(seat),
        }
        if not known:
            raise HttpError(403, "auth.not_your_call", f"seat {seat} is not a party to call {call_id}")
    return identity, call_id


async def get_draft(request: web.Request) -> web.Response:
    _, call_id = await _draft_access(request)
    draft = await request.app[_SEAT_NODE].drafts.get(call_id)
    return _json({"call_id": call_id, "draft": draft.model_dump(mode="json") if draft else None})


async def put_draft(request: web.Request) -> web.Response:
    identity, call_id = await _draft_access(request)
    try:
        draft = DraftInput.model_validate(await read_json(request))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise HttpError(400, "draft.invalid", problems) from None
    desk = request.app[DESK]
    if draft.category_code is not None and draft.category_code not in desk.categories:
        raise HttpError(400, "draft.unknown_category", f"category {draft.category_code} is not in the tree")
    node = request.app[_SEAT_NODE]
    seat = identity.seat or identity.name  # a supervisor's save names the supervisor
    saved: WorkOrderDraft = await node.drafts.save(call_id, seat, draft, dt.datetime.now(dt.UTC))
    node.outputs.put_nowait(DraftSaved(call_id, saved))
    return _json({"call_id": call_id, "draft": saved.model_dump(mode="json")})
