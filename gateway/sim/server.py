"""The simulator as one object: PBX + AMI server + clock, with a lifecycle and fault controls.

``start`` opens the port and boots: logins work at once, app_queue/ConfBridge actions only after
``boot_seconds`` when ``FullyBooted`` reaches the sessions (trace 11d). ``shutdown`` sends
``Shutdown`` (Restart False/True) and closes every session and the port (trace 11); a restart
comes back after ``restart_downtime`` with all state lost: new banner, counters from zero, no
calls (traces 11b, 11c). Faults for tests and the demo: ``drop_connections``, ``stall``,
``refuse_logins``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.errors import GatewayError
from gateway.sim.actions import Actions
from gateway.sim.clock import SimClock
from gateway.sim.events import Headers
from gateway.sim.manager import AmiServer, ManagerUser
from gateway.sim.pbx import Pbx
from gateway.sim.people import Endpoints
from gateway.sim.plan import SimPlan

log = logging.getLogger(__name__)

KNOWN_MODULES = ("app_queue.so", "pbx_config.so", "app_confbridge.so", "chan_local.so", "res_musiconhold.so",
                 "manager", "features")  # fmt: skip


def install_queues(pbx: Pbx, plan: SimPlan) -> None:
    """At boot: queues from the plan, and the plan's seats log in as dynamic members."""
    pbx.queues.configure(plan.queues)
    for queue, members in plan.seats.items():
        for member in members:
            if queue in pbx.queues.queues and pbx.queues.queues[queue].member(member.interface) is None:
                pbx.queues.add_member(queue, member.interface, penalty=member.penalty, name=member.name)


PERSISTENT_FAMILY = "/Queue/PersistentMembers/"


def save_members(pbx: Pbx) -> None:
    """Dynamic members to AstDB as app_queue stores them: ``interface;penalty;paused;name;state_interface``."""
    for key in [k for k in pbx.astdb if k.startswith(PERSISTENT_FAMILY)]:
        del pbx.astdb[key]
    for name, queue in pbx.queues.queues.items():
        members = [m for m in queue.members if m.dynamic]
        if members:
            pbx.astdb[PERSISTENT_FAMILY + name] = "|".join(
                f"{m.interface};{m.penalty};{int(m.paused)};{m.name};{m.state_interface}" for m in members
            )


def restore_members(pbx: Pbx) -> None:
    for key, value in pbx.astdb.items():
        queue = key.removeprefix(PERSISTENT_FAMILY)
        if not key.startswith(PERSISTENT_FAMILY) or queue not in pbx.queues.queues:
            continue
        for entry in value.split("|"):
            interface, penalty, paused, name, state_interface = (entry.split(";") + [""] * 5)[:5]
            if pbx.queues.queues[queue].member(interface) is None:
                pbx.queues.add_member(queue, interface, penalty=int(penalty or 0), paused=paused == "1", name=name,
                                      state_interface=state_interface)  # fmt: skip


class SimulatorError(GatewayError):
    code = "sim.lifecycle"


@dataclass
class SimOptions:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (tests); the CLI uses 5038
    time_scale: float = 1.0  # real seconds per simulated second
    manual_clock: bool = False
    seed: int | None = None
    auth_fail_delay: float = 1.0  # simulated seconds before "Authentication failed"
    boot_seconds: float = 0.15
    restart_downtime: float = 1.0
    endpoints: Endpoints = field(default_factory=Endpoints)  # who answers simulated SIP phones


class Simulator:
    def __init__(
        self, plan: SimPlan, options: SimOptions | None = None, *, users: list[ManagerUser] | None = None,
        reload_plan: Callable[[], SimPlan] | None = None,
    ) -> None:  # fmt: skip
        self.plan = plan
        self._reload_plan = reload_plan  # re-reads the configuration on Reload / dialplan reload
        self.options = options or SimOptions()
        given = {user.username for user in users or []}
        self.users = (users or []) + [u for u in self.plan.users if u.username not in given and u.secret]
        if not self.users:
            raise SimulatorError("no AMI user with a secret is configured (give a username and a secret)")
        self.clock = SimClock(time_scale=self.options.time_scale, manual=self.options.manual_clock)
        self._pbx: Pbx | None = None
        self._server: AmiServer | None = None
        self.actions = Actions(self)
        self.running = False
        self.boots = 0
        self._port = self.options.port
        self._tasks: set[asyncio.Task[None]] = set()
        self.astdb: dict[str, str] = {}  # on disk in Asterisk: it survives restarts
        self.on_boot: list[Callable[[Simulator], None]] = []

    # -- SimContext ------------------------------------------------------------------------------
    @property
    def pbx(self) -> Pbx:
        if self._pbx is None:
            raise SimulatorError("the simulated PBX is not running")
        return self._pbx

    @property
    def server(self) -> AmiServer:
        if self._server is None:
            raise SimulatorError("the AMI server is not running")
        return self._server

    @property
    def port(self) -> int:
        return self._port

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.running:
            return
        self.clock.start()
        server = AmiServer(self.clock, self.users, self.actions.table(), host=self.options.host, port=self._port,
                           auth_fail_delay=self.options.auth_fail_delay)  # fmt: skip
        seed = None if self.options.seed is None else self.options.seed + self.boots
        pbx = Pbx(self.plan.dialplan, self.clock, server, settings=self.plan.settings, seed=seed)
        pbx.endpoints = self.options.endpoints
        pbx.astdb = self.astdb
        install_queues(pbx, self.plan)
        if self.plan.persistent_members:
            restore_members(pbx)
        server.uptime_headers = self._uptime
        server.booted = False
        await server.start()
        self._port = server.port
        self._server, self._pbx = server, pbx
        self.running = True
        self.boots += 1
        self.clock.call_later(self.options.boot_seconds, self._booted, server)
        for hook in self.on_boot:
            hook(self)

    def _uptime(self) -> Headers:
        pbx = self.pbx
        wall = self.clock.wall()
        return [
            ("Uptime", str(int(wall - pbx.started_wall))),
            ("LastReload", str(int(wall - pbx.reloaded_wall))),
        ]

    def _booted(self, server: AmiServer) -> None:
        if server is not self._server:
            return
        server.booted = True
        server.broadcast("system", [("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted"),
                                    *self._uptime()])  # fmt: skip

    async def stop(self) -> None:
        """Stop everything (end of a test, Ctrl-C): sessions closed, port closed, timers gone."""
        await self._halt(announce=None)
        for task in list(self._tasks):
            task.cancel()
        self.clock.stop()

    async def shutdown(self, *, restart: bool, downtime: float | None = None) -> None:
        """``core stop now`` / ``core restart``: Shutdown event, then the sockets close."""
        await self._halt(announce=restart)
        if restart:
            delay = self.options.restart_downtime if downtime is None else downtime
            await asyncio.sleep(self.clock.real_seconds(delay))
            await self.start()

    async def _halt(self, *, announce: bool | None) -> None:
        if not self.running:
            return
        server, pbx = self.server, self.pbx
        self.running = False
        if announce is not None:
            server.broadcast("system", [("Event", "Shutdown"), ("Privilege", "system,all"), ("Shutdown", "Cleanly"),
                                        ("Restart", "True" if announce else "False")])  # fmt: skip
        server.close_all()
        await server.close_listener()
        if self.plan.persistent_members:
            save_members(pbx)
        pbx.shutdown()
        self.clock.clear()
        self._pbx, self._server = None, None

    def request_shutdown(self, *, restart: bool) -> None:
        task = asyncio.get_running_loop().create_task(self.shutdown(restart=restart))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reload ------------------------------------------------------------------------------------
    def reload(self, module: str | None) -> bool:
        name = (module or "").strip().lower()
        if name and name not in KNOWN_MODULES:
            return False
        if self._reload_plan is not None:
            self.plan = self._reload_plan()
        pbx = self.pbx
        if name in ("", "pbx_config.so"):
            pbx.dialplan = self.plan.dialplan
        if name in ("", "app_queue.so"):
            pbx.queues.configure(self.plan.queues)  # logged-in seats stay as they are, as in Asterisk
        pbx.reloaded_wall = self.clock.wall()
        return True

    # -- faults ------------------------------------------------------------------------------------
    def drop_connections(self) -> int:
        sessions = len(self.server.sessions)
        self.server.drop_all()
        return sessions

    def stall(self, seconds: float) -> None:
        self.server.stall(seconds)

    def refuse_logins(self, refuse: bool) -> None:
        self.server.refuse_logins = refuse
