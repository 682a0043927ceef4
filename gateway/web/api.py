"""The JSON API: live queues, seats and calls; seat control; health, readiness and metrics.

Handlers are thin: they check the role, read the node (``NODE``, and ``NODES`` taken over) or
hand a seat's request to ``gateway.queues.control``, and return JSON. Errors are raised
(``HttpError``, ``GatewayError``) and turned into JSON with stable codes by ``error_middleware``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, cast

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from gateway.calls.model import Call, Party
from gateway.contract import TRACKED_EVENTS
from gateway.dialplan.reload import admin_settings, config_digest, reload_config
from gateway.node.runtime import Node
from gateway.queues.control import SeatControl, Verb
from gateway.records.outbox import backlog, dead_letters
from gateway.web.auth import Role, require
from gateway.web.errors import HttpError, read_json
from gateway.web.snapshot import as_plain

READ = (Role.SUPERVISOR, Role.SEAT)

NODE = web.AppKey("node", Node)  # this instance's own node
NODES = web.AppKey("nodes", dict[str, Node])  # nodes it took over from a dead instance, by node id
SEAT_CONTROL = web.AppKey("seat_control", SeatControl)


def setup_api(app: web.Application, seat_control: SeatControl) -> None:
    """The routes; ``app[NODE]`` and ``app[NODES]`` must be set before it serves."""
    app[SEAT_CONTROL] = seat_control
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/queues", queues)
    app.router.add_get("/api/agents", agents)
    app.router.add_get("/api/calls", calls)
    app.router.add_get("/api/calls/{call_id}", call_detail)
    app.router.add_post("/api/agents/{seat}/{verb:login|logout|pause|unpause}", agent_action)
    app.router.add_get("/api/records/backlog", records_backlog)
    app.router.add_get("/api/records/dead-letters", records_dead_letters)
    app.router.add_post("/api/config/reload", config_reload)


def _node(request: web.Request) -> Node:
    return request.app[NODE]


def _runtimes(request: web.Request) -> list[Node]:
    """This instance's own node and the nodes it took over (scale-out)."""
    home = request.app[NODE]
    return [home, *request.app[NODES].values()]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(as_plain(body), status=status)


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving (no dependency is checked: that is /readyz)."""
    return _json({"status": "ok", "uptime_s": round(time.monotonic() - _node(request).started, 1)})


async def readyz(request: web.Request) -> web.Response:
    """Ready: AMI logged in, Redis answering, live state fresh. 503 lists every reason it is not."""
    node = _node(request)
    problems = []
    state = node.client.state
    if not node.controlling and not node.standby:
        problems.append("starting: not yet known which instance controls this node")
    if node.standby and node.node_id not in {p.get("node") for p in node.peers}:
        problems.append(f"standby: no live state of node {node.node_id} from the instance controlling it")
    if node.controlling and not state.ready:
        problems.append(f"ami: {state.phase.value}" + (f" ({state.last_error})" if state.last_error else ""))
    try:
        await node.redis.ping()
    except (RedisError, OSError) as exc:
        problems.append(f"redis: {exc}")
    if node.controlling and node.tracker.stale:
        problems.append("state: stale (resynchronising with Asterisk)")
    role = "active" if node.controlling else "standby"  # a standby serves dashboards from Redis
    body = {"ready": not problems, "problems": problems, "ami": state.phase.value, "role": role}
    return _json(body, status=200 if not problems else 503)


async def metrics(request: web.Request) -> web.Response:
    require(request, *READ)
    body = generate_latest(_node(request).registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def status(request: web.Request) -> web.Response:
    require(request, *READ)
    node = _node(request)
    state = node.client.state
    last = node.resync.last_completed_at
    return _json(
        {
            "node": node.node_id,
            "role": "active" if node.controlling else "standby",
            "taken_over": sorted(r.node_id for r in _runtimes(request)[1:]),
            "peers": sorted(str(p.get("node")) for p in node.peers),
            "ami": {
                "phase": state.phase.value,
                "reconnects": state.reconnects,
                "banner": state.banner,
                "last_error_code": state.last_error_code,
                "last_error": state.last_error,
            },
            "stale": node.tracker.stale,
            "resyncs": node.resync.completed,
            "last_resync_at": last.isoformat() if last else None,
            "redis_ok": node.redis_ok,
            "live_calls": len(node.tracker.calls),
        }
    )


async def queues(request: web.Request) -> web.Response:
    require(request, *READ)
    snapshot = _node(request).snapshot()
    return _json({"stale": snapshot.link.stale, "queues": snapshot.queues, "overall": snapshot.overall})


async def agents(request: web.Request) -> web.Response:
    """Every seat of the roster, logged in or not, with its live state."""
    require(request, *READ)
    node = _node(request)
    now = time.monotonic()
    out = []
    for extension, plan in sorted(node.plan.seats.items()):
        seat = node.tracker.seats.get(extension)
        out.append(
            {
                "id": extension,
                "name": plan.name,
                "interface": plan.interface,
                "roster_queues": list(plan.queues),
                "state": seat.state.value if seat else "logged_out",
                "reason": (seat.paused_reason or "") if seat else "",
                "time_in_state_s": round(seat.time_in_state(now), 1) if seat else None,
                "calls_taken": seat.calls_taken if seat else 0,
                "queues": sorted(seat.memberships) if seat else [],
            }
        )
    return _json({"stale": node.tracker.stale, "agents": out})


async def calls(request: web.Request) -> web.Response:
    require(request, *READ)
    now = time.monotonic()
    runtimes = [r for r in _runtimes(request) if r.controlling]
    live = sorted(
        ((r.node_id, call) for r in runtimes for call in r.tracker.calls.values()),
        key=lambda nc: nc[1].arrived_at,
    )
    stale = any(r.tracker.stale for r in runtimes)
    return _json(
        {"stale": stale, "calls": [_call_summary(call, now) | {"node": node} for node, call in live]}
    )


async def call_detail(request: web.Request) -> web.Response:
    require(request, *READ)
    call_id = request.match_info["call_id"]
    call = next((r.tracker.calls[call_id] for r in _runtimes(request) if call_id in r.tracker.calls), None)
    if call is None:
        raise HttpError(
            404,
            "call.not_found",
            f"no live call {request.match_info['call_id']!r} (ended calls are in the order system)",
        )
    now = time.monotonic()
    detail = _call_summary(call, now)
    detail.update(
        {
            "department": call.department,
            "category_code": call.category_code,
            "legs": [
                {
                    "uniqueid": leg.uniqueid,
                    "channel": leg.channel,
                    "role": leg.role.value,
                    "recordings": leg.recordings,
                }
                for leg in call.legs.values()
            ],
            "queues": [
                {
                    "queue": visit.queue,
                    "joined_at": _iso(visit.joined_at),
                    "left_at": _iso(visit.left_at),
                    "result": visit.result.value if visit.result else None,
                    "wait_s": round(visit.wait_s(now), 1),
                }
                for visit in call.queues
                if not visit.consult
            ],
            "parties": [_party(party, now) for party in call.parties],
            "handovers": [
                {
                    "at": _iso(h.at),
                    "mode": h.mode.value,
                    "from_seat": h.from_seat,
                    "target": h.target,
                    "target_kind": h.target_kind.value if h.target_kind else None,
                    "outcome": h.outcome.value,
                    "recording": h.recording,
                }
                for h in call.handovers
            ],
            "recordings": call.recordings,
            "survey": {"result": call.survey.result, "key": call.survey.key} if call.survey else None,
        }
    )
    return _json(detail)


def _call_summary(call: Call, now: float) -> dict[str, Any]:
    waiting = next((v for v in reversed(call.queues) if v.left_at is None and not v.consult), None)
    active = [p.party for p in call.parties if p.active]
    state = (
        "waiting"
        if waiting
        else ("talking" if active else ("ringing" if any(p.ringing for p in call.parties) else "other"))
    )
    return {
        "id": call.call_id,
        "caller": call.caller_number,
        "legacy_line": call.legacy_line,
        "merge_mode": call.merge_mode,
        "state": state,
        "queue": waiting.queue if waiting else (call.queues[-1].queue if call.queues else None),
        "seats": active,
        "arrived_at": _iso(call.arrived_at),
        "answered_at": _iso(call.answered_at),
        "handovers": len(call.handovers),
        **{k: round(v, 1) for k, v in call.timers(now).items()},
    }


def _party(party: Party, now: float) -> dict[str, Any]:
    return {
        "kind": party.kind.value,
        "party": party.party,
        "queue": party.queue,
        "offered_at": _iso(party.offered_at),
        "answered_at": _iso(party.answered_at),
        "ended_at": _iso(party.ended_at),
        "ring_s": round(party.ring.seconds(now), 1),
        "talk_s": round(party.talk.seconds(now), 1),
        "hold_s": round(party.hold.seconds(now), 1),
        "recordings": party.recordings,
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment else None


async def agent_action(request: web.Request) -> web.Response:
    """Log a seat in or out of its roster queues, or pause/unpause it everywhere (with a reason)."""
    require(request, Role.SEAT, Role.SUPERVISOR)
    extension, verb = request.match_info["seat"], request.match_info["verb"]
    body = await read_json(request) if request.can_read_body else {}
    done = await request.app[SEAT_CONTROL].act(
        extension, cast(Verb, verb), queues=body.get("queues"), reason=body.get("reason")
    )
    results = [{"action": d.action, "queue": d.queue, "message": d.message} for d in done]
    return _json({"seat": extension, "verb": verb, "results": results})


async def records_backlog(request: web.Request) -> web.Response:
    require(request, *READ)
    return _json(await backlog(_node(request).redis))


async def records_dead_letters(request: web.Request) -> web.Response:
    require(request, Role.SUPERVISOR)
    letters = await dead_letters(_node(request).redis)
    return _json({"dead_letters": [letter.as_json() for letter in letters]})


async def config_reload(request: web.Request) -> web.Response:
    """Validate, render, swap and reload; a bad config answers 422 with every problem, changing nothing."""
    require(request, Role.ADMIN)
    node = _node(request)
    settings = node.settings
    report = await reload_config(
        settings.config_path, settings.dialplans_dir, admin_settings(settings), tracked_events=TRACKED_EVENTS
    )
    node.applied_sha = config_digest(settings.config_path)
    node.adopt(report.config)
    return _json(
        {
            "changed": [c.name for c in report.changes if c.changed],
            "diff": "".join(c.diff for c in report.changes),
            "reloaded": report.reloaded,
            "verified_queues": report.verified_queues,
        }
    )
