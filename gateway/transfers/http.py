"""The transfer API: ``setup_transfers(app, service)`` adds the routes and the service's task.

- ``POST /api/calls/{call_id}/transfer`` ``{"target", "mode", "override"?}`` (seat or supervisor;
  ``override`` lifts the one-hand-over rule and is for supervisors) -> 201 the transfer;
- ``GET /api/transfers/{id}`` -> the transfer, from this node or another node's Redis mirror;
- ``DELETE /api/transfers/{id}`` -> cancelled (the caller goes back to the seat);
- ``POST /api/transfers/{id}/complete`` -> a consult whose target answered is handed over.
Errors are JSON with stable codes (``gateway.transfers.errors``; ``gateway.web.errors`` maps them).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from aiohttp import web

from gateway.tasks import cancel_tasks, start_task
from gateway.transfers.service import TransferService
from gateway.vocabulary import HandoverMode
from gateway.web.auth import Role, require
from gateway.web.errors import HttpError, read_json

TRANSFERS = web.AppKey("transfers", TransferService)
_MODES = ", ".join(mode.value for mode in HandoverMode)


def setup_transfers(app: web.Application, transfers: TransferService) -> None:
    """The routes, and the service's background task for the app's lifetime."""
    app[TRANSFERS] = transfers
    app.cleanup_ctx.append(_lifetime)
    app.router.add_post("/api/calls/{call_id}/transfer", request_transfer)
    app.router.add_get("/api/transfers/{transfer_id}", get_transfer)
    app.router.add_delete("/api/transfers/{transfer_id}", cancel_transfer)
    app.router.add_post("/api/transfers/{transfer_id}/complete", complete_transfer)


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    task = start_task(app[TRANSFERS].run(), "transfers")
    yield
    await cancel_tasks([task])


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=partial(json.dumps, ensure_ascii=False))


async def request_transfer(request: web.Request) -> web.Response:
    principal = require(request, Role.SEAT, Role.SUPERVISOR)
    body = await read_json(request)
    target, mode, override = body.get("target"), body.get("mode"), body.get("override", False)
    if not isinstance(target, str) or not isinstance(override, bool):
        raise HttpError(400, "transfer.invalid_request", 'send {"target": "<queue or 110/119/120/122>", '
                        f'"mode": "<{_MODES}>", "override": false}}')  # fmt: skip
    if mode not in {m.value for m in HandoverMode}:
        raise HttpError(400, "transfer.invalid_mode", f"mode must be one of {_MODES}, not {mode!r}")
    if override and principal.role is Role.SEAT:
        raise HttpError(
            403, "transfer.override_forbidden", "only a supervisor may override the one-hand-over rule"
        )
    transfer = await request.app[TRANSFERS].request(
        request.match_info["call_id"], target, HandoverMode(mode), override=override
    )
    response = _json({"transfer": transfer.as_json()}, status=201)
    response.headers["Location"] = f"/api/transfers/{transfer.id}"
    return response


async def get_transfer(request: web.Request) -> web.Response:
    require(request, Role.SEAT, Role.SUPERVISOR)
    transfer_id = request.match_info["transfer_id"]
    found = await request.app[TRANSFERS].lookup(transfer_id)
    if found is None:
        raise HttpError(404, "transfer.not_found", f"no transfer {transfer_id!r}")
    return _json({"transfer": found})


async def cancel_transfer(request: web.Request) -> web.Response:
    require(request, Role.SEAT, Role.SUPERVISOR)
    transfer = await request.app[TRANSFERS].cancel(request.match_info["transfer_id"])
    return _json({"transfer": transfer.as_json()})


async def complete_transfer(request: web.Request) -> web.Response:
    require(request, Role.SEAT, Role.SUPERVISOR)
    transfer = await request.app[TRANSFERS].complete(request.match_info["transfer_id"])
    return _json({"transfer": transfer.as_json()}, status=202)
