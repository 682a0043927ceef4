"""The callback API: ``setup_callbacks(app, service)`` adds the route and the service's task.

``GET /api/callbacks`` -> callers waiting to be called back (oldest first) and calls back in flight;
a seat sees only its own queues' callbacks, with the citizens' numbers masked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from gateway.callbacks.service import CallbackService
from gateway.masking import mask_number
from gateway.ports import PlanSource
from gateway.tasks import cancel_tasks, start_task
from gateway.web.auth import Role, require

CALLBACKS = web.AppKey("callbacks", CallbackService)
_PLAN: web.AppKey[PlanSource] = web.AppKey("callbacks_plan")  # which queues each seat serves


def setup_callbacks(app: web.Application, callbacks: CallbackService, plan: PlanSource) -> None:
    """The route, and the service's background task for the app's lifetime (after loading its records)."""
    app[CALLBACKS] = callbacks
    app[_PLAN] = plan
    app.cleanup_ctx.append(_lifetime)
    app.router.add_get("/api/callbacks", list_callbacks)


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    await app[CALLBACKS].load()
    task = start_task(app[CALLBACKS].run(), "callbacks")
    yield
    await cancel_tasks([task])


async def list_callbacks(request: web.Request) -> web.Response:
    identity = await require(request, Role.SEAT, Role.SUPERVISOR)
    callbacks = request.app[CALLBACKS]
    # A seat sees the callbacks of the queues it serves, numbers masked: the dialler calls back,
    # a seat never needs another citizen's number.
    seat = request.app[_PLAN]().seats.get(identity.seat or "") if identity.role is Role.SEAT else None
    queues = None if identity.role is not Role.SEAT else set(seat.queues if seat else ())
    waiting = [
        {
            "call_id": e.call_id,
            "number": mask_number(e.number) if queues is not None else e.number,
            "queue": e.queue,
            "attempts": e.attempts,
            "joined_at": dt.datetime.fromtimestamp(e.joined_at, dt.UTC).isoformat(timespec="seconds"),
            "requested_at": dt.datetime.fromtimestamp(e.requested_at, dt.UTC).isoformat(timespec="seconds"),
        }
        for e in await callbacks.pending()
        if queues is None or e.queue in queues
    ]
    dialling = [
        {"call_id": f.entry.call_id, "queue": f.entry.queue, "linkedid": f.linkedid, "answered": f.answered}
        for f in callbacks.flights.values()
        if queues is None or f.entry.queue in queues
    ]
    return web.json_response(
        {"waiting": waiting, "in_flight": dialling}, dumps=partial(json.dumps, ensure_ascii=False)
    )
