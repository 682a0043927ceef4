"""The JSON API: live queues, seats and calls; seat control; health, readiness and metrics.

Handlers are thin: they check the role, read the tracker or send one checked AMI action through
the gateway, and return JSON. Errors are raised (``HttpError``, ``GatewayError``) and turned into
JSON with stable codes by ``error_middleware``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from gateway.ami import safety
from gateway.app import GATEWAY, NODES, Gateway
from gateway.calls.model import Call, Party
from gateway.contract import TRACKED_EVENTS
from gateway.dialplan.reload import admin_settings, config_digest, reload_config
from gateway.dialplan.routing import SeatPlan
from gateway.records.outbox import backlog, dead_letters
from gateway.web.auth import Role, require
from gateway.web.errors import HttpError, read_json
from gateway.web.snapshot import as_plain

READ = (Role.SUPERVISOR, Role.SEAT)


def setup_api(app: web.Application) -> None:
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


def _gateway(request: web.Request) -> Gateway:
    return request.app[GATEWAY]


def _runtimes(request: web.Request) -> list[Gateway]:
    """This instance's own node and the nodes it took over (scale-out)."""
    home = request.app[GATEWAY]
    return [home, *request.app[NODES].values()]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(as_plain(body), status=status)


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving (no dependency is checked: that is /readyz)."""
    return _json({"status": "ok", "uptime_s": round(time.monotonic() - _gateway(request).started, 1)})


async def readyz(request: web.Request) -> web.Response:
    """Ready: AMI logged in, Redis answering, live state fresh. 503 lists every reason it is not."""
    gateway = _gateway(request)
    problems = []
    state = gateway.client.state
    if not gateway.controlling and not gateway.standby:
        problems.append("starting: not yet known which instance controls this node")
    if gateway.standby and gateway.node not in {p.get("node") for p in gateway.peers}:
        problems.append(f"standby: no live state of node {gateway.node} from the instance controlling it")
    if gateway.controlling and not state.ready:
        problems.append(f"ami: {state.phase.value}" + (f" ({state.last_error})" if state.last_error else ""))
    try:
        await gateway.redis.ping()
    except (RedisError, OSError) as exc:
        problems.append(f"redis: {exc}")
    if gateway.controlling and gateway.tracker.stale:
        problems.append("state: stale (resynchronising with Asterisk)")
    role = "active" if gateway.controlling else "standby"  # a standby serves dashboards from Redis
    body = {"ready": not problems, "problems": problems, "ami": state.phase.value, "role": role}
    return _json(body, status=200 if not problems else 503)


async def metrics(request: web.Request) -> web.Response:
    require(request, *READ)
    body = generate_latest(_gateway(request).registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def status(request: web.Request) -> web.Response:
    require(request, *READ)
    gateway = _gateway(request)
    state = gateway.client.state
    last = gateway.resync.last_completed_at
    return _json(
        {
            "node": gateway.node,
            "role": "active" if gateway.controlling else "standby",
            "taken_over": sorted(r.node for r in _runtimes(request)[1:]),
            "peers": sorted(str(p.get("node")) for p in gateway.peers),
            "ami": {
                "phase": state.phase.value,
                "reconnects": state.reconnects,
                "banner": state.banner,
                "last_error_code": state.last_error_code,
                "last_error": state.last_error,
            },
            "stale": gateway.tracker.stale,
            "resyncs": gateway.resync.completed,
            "last_resync_at": last.isoformat() if last else None,
            "redis_ok": gateway.redis_ok,
            "live_calls": len(gateway.tracker.calls),
        }
    )


async def queues(request: web.Request) -> web.Response:
    require(request, *READ)
    snapshot = _gateway(request).snapshot()
    return _json({"stale": snapshot.link.stale, "queues": snapshot.queues, "overall": snapshot.overall})


async def agents(request: web.Request) -> web.Response:
    """Every seat of the roster, logged in or not, with its live state."""
    require(request, *READ)
    gateway = _gateway(request)
    now = time.monotonic()
    out = []
    for extension, plan in sorted(gateway.plan.seats.items()):
        seat = gateway.tracker.seats.get(extension)
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
    return _json({"stale": gateway.tracker.stale, "agents": out})


async def calls(request: web.Request) -> web.Response:
    require(request, *READ)
    now = time.monotonic()
    runtimes = [r for r in _runtimes(request) if r.controlling]
    live = sorted(
        ((r.node, call) for r in runtimes for call in r.tracker.calls.values()),
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
    gateway = _gateway(request)
    extension, verb = request.match_info["seat"], request.match_info["verb"]
    seat = gateway.plan.seats.get(extension)
    if seat is None:
        raise HttpError(
            404, "agent.not_found", f"seat {extension!r} is not in the roster (hotline_merge.yaml seats)"
        )
    body = await read_json(request) if request.can_read_body else {}
    queues = _queues_of(seat, body.get("queues"))
    if verb == "login":
        actions = [
            safety.queue_add(
                q,
                seat.interface,
                member_name=seat.name,
                penalty=seat.penalty,
                state_interface=seat.state_interface,
            )
            for q in queues
        ]
    elif verb == "logout":
        actions = [safety.queue_remove(q, seat.interface) for q in queues]
    else:
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise HttpError(400, "agent.invalid_reason", "reason must be text, e.g. 小休 or 培训")
        actions = [
            safety.queue_pause(seat.interface, verb == "pause", reason=reason if verb == "pause" else None)
        ]
    results = []
    for action in actions:
        result = await gateway.send(action)
        results.append({"action": action.name, "queue": action.get("Queue"), "message": result.message})
    return _json({"seat": extension, "verb": verb, "results": results})


def _queues_of(seat: SeatPlan, requested: object) -> list[str]:
    if requested is None:
        return list(seat.queues)
    if not isinstance(requested, list) or not all(isinstance(q, str) for q in requested):
        raise HttpError(400, "agent.invalid_queues", "queues must be a list of queue names")
    unknown = [q for q in requested if q not in seat.queues]
    if unknown:
        raise HttpError(
            400,
            "agent.queue_not_in_roster",
            f"seat {seat.extension} does not serve {', '.join(unknown)} (roster: {', '.join(seat.queues)})",
        )
    return list(requested)


async def records_backlog(request: web.Request) -> web.Response:
    require(request, *READ)
    return _json(await backlog(_gateway(request).redis))


async def records_dead_letters(request: web.Request) -> web.Response:
    require(request, Role.SUPERVISOR)
    letters = await dead_letters(_gateway(request).redis)
    return _json({"dead_letters": [letter.as_json() for letter in letters]})


async def config_reload(request: web.Request) -> web.Response:
    """Validate, render, swap and reload; a bad config answers 422 with every problem, changing nothing."""
    require(request, Role.ADMIN)
    gateway = _gateway(request)
    settings = gateway.settings
    report = await reload_config(
        settings.config_path, settings.dialplans_dir, admin_settings(settings), tracked_events=TRACKED_EVENTS
    )
    gateway.applied_sha = config_digest(settings.config_path)
    gateway.adopt(report.config)
    return _json(
        {
            "changed": [c.name for c in report.changes if c.changed],
            "diff": "".join(c.diff for c in report.changes),
            "reloaded": report.reloaded,
            "verified_queues": report.verified_queues,
        }
    )
