"""The callback API: ``setup_callbacks(app, service)`` adds the route and the service's task.

``GET /api/callbacks`` -> callers waiting to be called back (oldest first) and calls back in flight.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from gateway.callbacks.service import CallbackService
from gateway.tasks import cancel_tasks, start_task
from gateway.web.auth import Role, require

CALLBACKS = web.AppKey("callbacks", CallbackService)


def setup_callbacks(app: web.Application, callbacks: CallbackService) -> None:
    """The route, and the service's background task for the app's lifetime (after loading its records)."""
    app[CALLBACKS] = callbacks
    app.cleanup_ctx.append(_lifetime)
    app.router.add_get("/api/callbacks", list_callbacks)


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    await app[CALLBACKS].load()
    task = start_task(app[CALLBACKS].run(), "callbacks")
    yield
    await cancel_tasks([task])


async def list_callbacks(request: web.Request) -> web.Response:
    require(request, Role.SEAT, Role.SUPERVISOR)
    callbacks = request.app[CALLBACKS]
    waiting = [
        {
            "call_id": e.call_id,
            "number": e.number,
            "queue": e.queue,
            "attempts": e.attempts,
            "joined_at": dt.datetime.fromtimestamp(e.joined_at, dt.UTC).isoformat(timespec="seconds"),
            "requested_at": dt.datetime.fromtimestamp(e.requested_at, dt.UTC).isoformat(timespec="seconds"),
        }
        for e in await callbacks.pending()
    ]
    dialling = [
        {"call_id": f.entry.call_id, "queue": f.entry.queue, "linkedid": f.linkedid, "answered": f.answered}
        for f in callbacks.flights.values()
    ]
    return web.json_response(
        {"waiting": waiting, "in_flight": dialling}, dumps=partial(json.dumps, ensure_ascii=False)
    )
