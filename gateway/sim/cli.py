"""``hotline-gateway simulate``: the embedded PBX on a TCP port, with traffic and a control endpoint.

The AMI users are the ones the rendered manager.conf defines (the controller and the reload admin,
with their read/write classes and event filters); their secrets come from the environment
variables hotline_merge.yaml names (``ami.secret_env``, ``ami.admin_secret_env``), never from a
file or an argument. ``SimulatorService`` is what the demo embeds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from gateway.errors import GatewayError
from gateway.merge.loader import load_config
from gateway.sim.control import control_app
from gateway.sim.day import DAY_S, DayPlan, Shifts
from gateway.sim.manager import ManagerUser
from gateway.sim.people import Endpoints
from gateway.sim.plan import SimPlan, plan_from_config
from gateway.sim.server import SimOptions, Simulator
from gateway.sim.traffic import TrafficGenerator


class SimulateError(GatewayError):
    code = "sim.config"


@dataclass
class ServiceOptions:
    config: Path = Path("hotline_merge.yaml")
    host: str = "127.0.0.1"
    port: int = 5038
    rate: float = 2.0  # calls per simulated second; 0 for none
    seats_per_queue: int | None = None
    seed: int | None = None
    control_port: int | None = None
    time_scale: float = 1.0
    username: str | None = None  # default: ami.username of the config
    secret_env: str | None = None  # default: ami.secret_env of the config
    endpoints: Endpoints | None = None  # how simulated seats and trunk parties behave (default: realistic)
    start_traffic: bool = True  # False: the caller starts ``traffic`` when it is ready for calls
    # A day at the centre instead of ``rate``: traffic sized to the roster, seats on shifts and breaks.
    day_start: dt.datetime | None = None  # the Beijing moment the day starts from
    day_s: float = DAY_S  # simulated seconds per day
    load: float = 1.0


def ami_users(plan: SimPlan, env: Mapping[str, str], *, controller: str, username: str, secret_env: str,
              admin: tuple[str, str] | None) -> list[ManagerUser]:  # fmt: skip
    """The rendered manager.conf users with their secrets from the environment.

    ``username`` logs in with the rendered ``controller`` user's classes and filters (it may rename it).
    """
    secret = env.get(secret_env, "")
    if not secret:
        raise SimulateError(f"AMI secret for {username!r}: set the environment variable {secret_env} "
                            "(named by ami.secret_env in the merge config)")  # fmt: skip
    rendered = {user.username: user for user in plan.users}
    template = rendered.get(controller, ManagerUser(username, ""))
    users = [dataclasses.replace(template, username=username, secret=secret)]
    if admin is not None and env.get(admin[1]):
        admin_user = rendered.get(admin[0], ManagerUser(admin[0], ""))
        users.append(dataclasses.replace(admin_user, secret=env[admin[1]]))
    return users


class SimulatorService:
    """Simulator + traffic + control endpoint for one merge config, started and stopped together."""

    def __init__(self, options: ServiceOptions, env: Mapping[str, str] | None = None) -> None:
        self.options = options
        env = os.environ if env is None else env
        config = load_config(options.config)
        prompts = options.config.resolve().parent / "recordings" / "prompts"

        def plan() -> SimPlan:
            from gateway.contract import TRACKED_EVENTS

            return plan_from_config(load_config(options.config), seats_per_queue=options.seats_per_queue,
                                    prompts=prompts, tracked_events=TRACKED_EVENTS)  # fmt: skip

        first = plan()
        ami = config.ami
        self.username = options.username or ami.username
        users = ami_users(first, env, controller=ami.username, username=self.username,
                          secret_env=options.secret_env or ami.secret_env,
                          admin=(ami.admin_username, ami.admin_secret_env))  # fmt: skip
        sim_options = SimOptions(host=options.host, port=options.port, time_scale=options.time_scale,
                                 seed=options.seed, endpoints=options.endpoints or Endpoints())  # fmt: skip
        self.sim = Simulator(first, sim_options, users=users, reload_plan=plan)
        self.day: DayPlan | None = None
        self.shifts: Shifts | None = None
        self.traffic: TrafficGenerator | None = None
        if options.day_start is not None:
            assert first.routing is not None
            self.day = DayPlan(
                config, first.routing, options.day_start, day_s=options.day_s, load=options.load
            )
            self.shifts = Shifts(self.sim, self.day, seed=options.seed)
            self.traffic = TrafficGenerator(self.sim, demand=self.day.demand, seed=options.seed)
        elif options.rate > 0:
            self.traffic = TrafficGenerator(self.sim, rate=options.rate, seed=options.seed)
        self._runner: web.AppRunner | None = None
        self.control_url: str | None = None

    async def start(self) -> None:
        await self.sim.start()
        if self.day is not None and self.shifts is not None:
            self.day.t0 = self.sim.clock.now()
            self.shifts.start()
        if self.traffic is not None and self.options.start_traffic:
            self.traffic.start()
        if self.options.control_port is not None:
            self._runner = web.AppRunner(control_app(self.sim, self.traffic))
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.options.control_port)
            await site.start()
            port = self._runner.addresses[0][1]
            self.control_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
        if self.shifts is not None:
            self.shifts.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.sim.stop()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=Path("hotline_merge.yaml"), help="merge config (default: %(default)s)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="AMI listen address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=5038, help="AMI port (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=2.0,
                        help="inbound calls per second, Poisson (default: %(default)s; 0: no traffic)")  # fmt: skip
    parser.add_argument("--seats-per-queue", type=int, default=None,
                        help="seats logged in per queue at boot: the roster's first N, topped up with simulated seats")  # fmt: skip
    parser.add_argument("--seed", type=int, default=None, help="replay the same traffic and seats")
    parser.add_argument(
        "--control-port", type=int, default=None, help="HTTP fault/status endpoint on 127.0.0.1"
    )
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="real seconds per simulated second (default: %(default)s)")  # fmt: skip
    parser.add_argument("--username", default=None, help="AMI username (default: ami.username of the config)")
    parser.add_argument("--secret-env", default=None,
                        help="environment variable holding the AMI secret (default: ami.secret_env of the config)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    options = ServiceOptions(
        config=args.config, host=args.host, port=args.port, rate=args.rate, seats_per_queue=args.seats_per_queue,
        seed=args.seed, control_port=args.control_port, time_scale=args.time_scale, username=args.username,
        secret_env=args.secret_env,
    )  # fmt: skip
    asyncio.run(_serve(SimulatorService(options)))
    return 0


async def _serve(service: SimulatorService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await service.start()
    sim = service.sim
    print(f"simulate: AMI on {service.options.host}:{sim.port} as {service.username!r} "
          f"({len(sim.plan.queues)} queues, {sum(map(len, sim.plan.seats.values()))} seats logged in, "
          f"{service.options.rate:g} calls/s)", flush=True)  # fmt: skip
    if service.control_url:
        print(f"simulate: control on {service.control_url} (GET /status, POST /faults/...)", flush=True)
    try:
        await stop.wait()
    finally:
        await service.stop()
        print("simulate: stopped", flush=True)
