"""HTTP control endpoint of the simulator (loopback only): status and faults at run time.

    GET  /status                       what runs: port, boots, sessions, calls, queues, traffic
    POST /faults/drop                  drop every AMI connection (TCP reset)
    POST /faults/restart?downtime=1    Shutdown event, all state lost, port back after downtime
    POST /faults/stop                  Shutdown event, port closed (``core stop now``)
    POST /faults/start                 boot again after a stop
    POST /faults/stall?seconds=5       AMI answers nothing (responses, events) for N seconds
    POST /faults/refuse-logins?on=1    every Login fails (on=0 to end it)
    POST /calls?number=12345           one inbound call now (caller, keys: survey digits)
    GET  /calls/ended                  the ground truth of fault tests: every citizen call the
                                       traffic placed that is over (Linkedid, line, cut by a restart),
                                       and the Linkedids of those still up
    POST /traffic/stop, /traffic/start no new calls / arrivals again (calls up go on)

Times are simulated seconds. Answers are JSON; a bad request is 400 with a stable ``code``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from gateway.sim.queues import QueueState
from gateway.sim.server import Simulator
from gateway.sim.traffic import TrafficGenerator

SIMULATOR = web.AppKey("simulator", Simulator)
TRAFFIC = web.AppKey("traffic", TrafficGenerator)
TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("tasks")


def _bad(code: str, message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"code": code, "message": message}), content_type="application/json"
    )


def _number(request: web.Request, name: str, default: float) -> float:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise _bad("sim.control.parameter", f"{name} must be a number") from None
    if value < 0:
        raise _bad("sim.control.parameter", f"{name} must not be negative")
    return value


async def status(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    body: dict[str, Any] = {"running": sim.running, "port": sim.port, "boots": sim.boots}
    if sim.running:
        pbx = sim.pbx
        body["sessions"] = len(sim.server.sessions)
        body["booted"] = sim.server.booted
        body["channels"] = len(pbx.channels)
        body["calls"] = len({c.linkedid for c in pbx.channels.values()})
        body["queues"] = {
            name: {"waiting": len(q.entries), "members": len(q.members),
                   "free": sum(1 for m in q.members if pbx.queues.available(m)),
                   "completed": q.completed, "abandoned": q.abandoned, "timed_out": q.timed_out}
            for name, q in pbx.queues.queues.items()
        }  # fmt: skip
        body["queued_callers"] = sum(
            1 for c in pbx.channels.values()
            if c.activity is not None and isinstance(getattr(c.activity, "state", None), QueueState)
        )  # fmt: skip
    traffic = request.app.get(TRAFFIC)
    if traffic is not None:
        body["traffic"] = {"rate": traffic.rate, **vars(traffic.stats)}
    return web.json_response(body)


def _in_background(request: web.Request, work: Any) -> None:
    tasks = request.app[TASKS]
    task = asyncio.get_running_loop().create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def drop(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    return web.json_response({"dropped": sim.drop_connections() if sim.running else 0})


async def restart(request: web.Request) -> web.Response:
    downtime = _number(request, "downtime", 1.0)
    _in_background(request, request.app[SIMULATOR].shutdown(restart=True, downtime=downtime))
    return web.json_response({"restarting": True, "downtime": downtime})


async def stop(request: web.Request) -> web.Response:
    await request.app[SIMULATOR].shutdown(restart=False)
    return web.json_response({"running": False})


async def start(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    await sim.start()
    return web.json_response({"running": True, "port": sim.port})


async def stall(request: web.Request) -> web.Response:
    seconds = _number(request, "seconds", 5.0)
    request.app[SIMULATOR].stall(seconds)
    return web.json_response({"stalled": seconds})


async def refuse_logins(request: web.Request) -> web.Response:
    on = request.query.get("on", "1").lower() not in ("0", "false", "no", "off")
    request.app[SIMULATOR].refuse_logins(on)
    return web.json_response({"refuse_logins": on})


async def call(request: web.Request) -> web.Response:
    sim, traffic = request.app[SIMULATOR], request.app.get(TRAFFIC)
    number = request.query.get("number", "")
    if number not in sim.plan.inbound:
        raise _bad("sim.control.number", f"no route for number {number!r}")
    if traffic is None or not sim.running:
        raise _bad("sim.control.state", "the simulator runs no traffic generator or is stopped")
    traffic.place_call(number)
    return web.json_response({"placed": number})


def _traffic(request: web.Request) -> TrafficGenerator:
    traffic = request.app.get(TRAFFIC)
    if traffic is None:
        raise _bad("sim.control.state", "the simulator runs no traffic generator")
    return traffic


async def ended_calls(request: web.Request) -> web.Response:
    traffic = _traffic(request)
    ended = [call.as_json() for call in traffic.ended_calls()]
    return web.json_response({"ended": ended, "live": traffic.live_calls()})


async def traffic_stop(request: web.Request) -> web.Response:
    _traffic(request).stop()
    return web.json_response({"traffic": False})


async def traffic_start(request: web.Request) -> web.Response:
    traffic = _traffic(request)
    if not traffic.running:
        traffic.start()
    return web.json_response({"traffic": True})


def control_app(sim: Simulator, traffic: TrafficGenerator | None) -> web.Application:
    app = web.Application()
    app[SIMULATOR] = sim
    if traffic is not None:
        app[TRAFFIC] = traffic
    app[TASKS] = set[asyncio.Task[None]]()
    app.router.add_get("/status", status)
    app.router.add_post("/faults/drop", drop)
    app.router.add_post("/faults/restart", restart)
    app.router.add_post("/faults/stop", stop)
    app.router.add_post("/faults/start", start)
    app.router.add_post("/faults/stall", stall)
    app.router.add_post("/faults/refuse-logins", refuse_logins)
    app.router.add_post("/calls", call)
    app.router.add_get("/calls/ended", ended_calls)
    app.router.add_post("/traffic/stop", traffic_stop)
    app.router.add_post("/traffic/start", traffic_start)

    async def cancel_tasks(app: web.Application) -> None:
        tasks: set[asyncio.Task[None]] = app[TASKS]
        for task in tasks.copy():
            task.cancel()

    app.on_cleanup.append(cancel_tasks)
    return app
