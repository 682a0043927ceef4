"""The simulated PBX core: channels, Local pairs, dialplan execution, hangup and redirect.

What it owns: the channel registry and the ids Asterisk would hand out (``-XXXXXXXX`` counter,
``epoch.seq`` Uniqueids), the dialplan interpreter, the order of events a channel produces when
it is created, answered, redirected or hung up, and a tiny "deferred work" queue so that, as in
Asterisk, a channel that leaves a bridge finishes its own business before the bridge dissolves.

Beside it: variables, functions and ``${...}`` expansion (``pbx_vars.py``), Originate
(``originate.py``), hangup handlers (``hangup_handlers.py``).

What it does not own: app_queue (``gateway.sim.queues``), transfers (``gateway.sim.transfer``),
ConfBridge (``gateway.sim.confbridge``), dialplan applications (``gateway.sim.apps``), AMI
(``gateway.sim.manager``). Everything runs synchronously on the simulated clock: a call is a
handful of timers, never an asyncio task.

Rules learned from the traces and kept here:
- a channel running dialplan (or redirected into it) emits ``SoftHangupRequest`` (Cause 16) just
  before its ``Hangup``; a channel running an application outside the dialplan does not;
- when one half of a Local pair hangs up, the other half gets ``HangupRequest`` (same cause) right
  before the first half's ``Hangup``, then hangs up itself;
- a redirected channel shows a ``Newexten`` at its new priority with its *old* application, and
  then continues at the next priority.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.sim import apps, chanspy
from gateway.sim.apps import DialplanRun
from gateway.sim.channel import DOWN, RING, RINGING, UNKNOWN, UP, Channel
from gateway.sim.clock import SimClock, Timer
from gateway.sim.confbridge import Conferences
from gateway.sim.dialplan import Dialplan
from gateway.sim.events import EventSink, Headers, escape_value
from gateway.sim.hangup_handlers import HangupHandlers
from gateway.sim.originate import Originator
from gateway.sim.pbx_vars import DialplanVariables
from gateway.sim.people import Endpoints
from gateway.sim.queue_engine import QueueEngine
from gateway.sim.transfer import Transfers

log = logging.getLogger(__name__)

CAUSE_TEXT = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "No user responding",
              21: "Call Rejected", 26: "Answered elsewhere", 34: "Circuit/channel congestion"}  # fmt: skip
SOFT_HANGUP_CAUSE = 16  # what Asterisk prints in every SoftHangupRequest of the traces


class Activity(Protocol):
    """Whoever owns a channel right now: the dialplan, an application, the queue, a bridge."""

    def hangup(self, channel: Channel, cause: int) -> None: ...

    def redirect(self, channel: Channel) -> None: ...

    def bridge_ended(self, channel: Channel) -> None: ...


@dataclass
class PbxSettings:
    """Knobs of the simulated PBX that are not in the dialplan or queues."""

    prompt_seconds: dict[str, float] = field(default_factory=lambda: {"beep": 0.424})
    default_prompt_seconds: float = 2.0
    answer_delay: float = 0.02  # Answer() to the next priority, as in the traces
    originate_delay: float = 0.002
    originate_timeout: float = 30.0
    # indications.conf has a "dial" tone: without one a real Asterisk's attended transfer reads only
    # the first digit Atxfer typed and never dials (issue 13 defect 3, seen on the real PBX).
    dial_tone: bool = True


@dataclass
class OriginateRequest:
    target: str  # Local/<exten>@<context>[/n]
    application: str | None = None
    app_data: str = ""
    context: str | None = None
    exten: str | None = None
    priority: int = 1
    caller_num: str | None = None
    caller_name: str | None = None
    variables: list[tuple[str, str]] = field(default_factory=list)
    channel_id: str | None = None
    other_channel_id: str | None = None
    action_id: str | None = None
    timeout: float | None = None
    report: bool = True  # False for generated traffic: no OriginateResponse, as a PSTN call has none
    tags: dict[str, Any] = field(default_factory=dict)  # simulator-private facts for both halves
    on_channels: Callable[[Channel, Channel], None] | None = None  # the pair exists
    on_result: Callable[[bool], None] | None = None  # answered (True) or failed (False)


class Pbx:
    def __init__(
        self, dialplan: Dialplan, clock: SimClock, sink: EventSink, *, settings: PbxSettings | None = None,
        seed: int | None = None,
    ) -> None:  # fmt: skip
        self.dialplan = dialplan
        self.clock = clock
        self.sink = sink
        self.settings = settings or PbxSettings()
        self.rng = random.Random(seed)
        self.channels: dict[str, Channel] = {}
        self._device_channels: dict[str, dict[str, Channel]] = {}  # Local device -> its channels
        self.astdb: dict[str, str] = {}
        self.apps = {**apps.APPLICATIONS, **chanspy.APPLICATIONS}
        self.queues: QueueEngine = QueueEngine(self)
        self.conferences: Conferences = Conferences(self)
        self.transfers: Transfers = Transfers(self)
        self.vars = DialplanVariables(self)
        self.originator = Originator(self)
        self.hangup_handlers = HangupHandlers(self)
        self.endpoints = Endpoints()
        self.processed_calls = 0
        self.started_wall = clock.wall()
        self.reloaded_wall = self.started_wall
        self._counter = 0
        self._uid = 0
        self._deferred: deque[Callable[[], object]] = deque()
        self._draining = False
        self.device_states: dict[str, str] = {}

    # -- entry points and deferred work -----------------------------------------------------
    def run(self, work: Callable[[], object]) -> None:
        """Run ``work`` and everything it defers (bridges dissolving, hangups propagating)."""
        self._deferred.append(work)
        if self._draining:
            return
        self._draining = True
        try:
            while self._deferred:
                self._deferred.popleft()()
        finally:
            self._draining = False

    def defer(self, work: Callable[[], object]) -> None:
        self._deferred.append(work)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Keep deferred work until ``drain``: an action answers before its effects show."""
        draining, self._draining = self._draining, True
        try:
            yield
        except BaseException:
            self._deferred.clear()
            raise
        finally:
            self._draining = draining

    def drain(self) -> None:
        self.run(lambda: None)

    def later(self, delay: float, work: Callable[..., object], *args: Any) -> Timer:
        return self.clock.call_later(delay, self._fire, work, args)

    def _fire(self, work: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.run(lambda: work(*args))

    # -- ids ----------------------------------------------------------------------------------
    def next_counter(self) -> int:
        value = self._counter
        self._counter += 1
        return value

    def next_uniqueid(self) -> str:
        value = f"{int(self.clock.wall())}.{self._uid}"
        self._uid += 1
        return value

    def new_bridge_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # -- events ---------------------------------------------------------------------------------
    def emit(self, category: str, name: str, headers: Headers) -> None:
        self.sink.emit(category, name, headers)

    def wants(self, category: str) -> bool:
        return self.sink.wants(category)

    def channel_event(
        self, name: str, channel: Channel, extra: Iterable[tuple[str, str]] = (), category: str = "call"
    ) -> None:
        if self.sink.wants(category):
            self.sink.emit(category, name, channel.snapshot() + list(extra))

    def set_var(self, channel: Channel, name: str, value: str, *, event: bool = True) -> None:
        bare = name.lstrip("_")
        level = len(name) - len(bare)
        if level:
            channel.tags.setdefault("inherit", {})[bare] = min(level, 2)
        channel.variables[bare] = value
        if event and self.sink.wants("dialplan"):
            self.sink.emit(
                "dialplan",
                "VarSet",
                [*channel.snapshot(), ("Variable", name), ("Value", escape_value(value))],
            )

    def newexten(self, channel: Channel) -> None:
        if self.sink.wants("dialplan"):
            self.sink.emit(
                "dialplan", "Newexten",
                [*channel.snapshot(), ("Extension", channel.exten), ("Application", channel.app), ("AppData", channel.appdata)],
            )  # fmt: skip

    def set_state(self, channel: Channel, state: int) -> None:
        if channel.state == state:
            return
        channel.state = state
        if state == UP and channel.answered_at is None:
            channel.answered_at = self.clock.now()
        self.channel_event("Newstate", channel)
        self.update_device(channel)

    def set_callerid(self, channel: Channel, num: str | None, name: str | None) -> None:
        channel.cid_num = num or UNKNOWN
        channel.cid_name = name or UNKNOWN
        self.channel_event(
            "NewCallerid", channel, [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")]
        )

    def set_connected(self, channel: Channel, num: str, name: str) -> None:
        channel.conn_num, channel.conn_name = num, name
        self.channel_event("NewConnectedLine", channel)

    def dial_event(self, name: str, caller: Channel | None, dest: Channel, extra: Headers) -> None:
        if self.sink.wants("call"):
            headers = (caller.snapshot() if caller else []) + dest.snapshot("Dest") + list(extra)
            self.sink.emit("call", name, headers)

    # -- device states (DeviceStateChange; queue members follow their device) ------------------
    @staticmethod
    def device_of(channel_name: str) -> str:
        """``Local/1001@agents-00000001;1`` -> ``Local/1001@agents``."""
        return channel_name.rsplit("-", 1)[0] if channel_name.startswith("Local/") else channel_name

    def _add_channel(self, channel: Channel) -> None:
        self.channels[channel.name] = channel
        if channel.name.startswith("Local/"):
            self._device_channels.setdefault(self.device_of(channel.name), {})[channel.name] = channel

    def update_device(self, channel: Channel) -> None:
        device = self.device_of(channel.name)
        # Only Local channels are named after their device (a PJSIP phone's state is not derived).
        busy = any(
            c.state in (RINGING, UP) and not c.dead for c in self._device_channels.get(device, {}).values()
        )
        self.set_device_state(device, "INUSE" if busy else "NOT_INUSE")

    def set_device_state(self, device: str, state: str) -> None:
        # Local devices and pause states start idle; queue states are first published when computed.
        idle = device.startswith("Local/") or "_pause_" in device
        if self.device_states.get(device, "NOT_INUSE" if idle else None) == state:
            return
        self.device_states[device] = state
        self.emit("call", "DeviceStateChange", [("Device", device), ("State", state)])
        self.queues.device_changed(device, state)

    # -- channels -------------------------------------------------------------------------------
    def find(self, name: str) -> Channel | None:
        channel = self.channels.get(name)
        return channel if channel is not None and not channel.dead else None

    def local_pair(
        self, exten: str, context: str, *, ids: tuple[str | None, str | None] = (None, None),
        linkedid: str | None = None, parent: Channel | None = None,
    ) -> tuple[Channel, Channel]:  # fmt: skip
        """Allocate ``Local/exten@context-XXXXXXXX;1/;2`` and publish both Newchannel events."""
        base = f"Local/{exten}@{context}-{self.next_counter():08x}"
        uid1 = self.next_uniqueid()
        uid2 = self.next_uniqueid()
        first_id = ids[0] or uid1
        link = linkedid or first_id
        now = self.clock.now()
        one = Channel(f"{base};1", first_id, link, context=context, exten=exten, state=DOWN, created=now)
        two = Channel(f"{base};2", ids[1] or uid2, link, context=context, exten=exten, state=RING, created=now)  # fmt: skip
        one.partner, two.partner = two, one
        if parent is not None:
            self.inherit(parent, one)
            self.inherit(parent, two)
        for channel in (one, two):
            self._add_channel(channel)
            self.channel_event("Newchannel", channel)
        return one, two

    def inherit(self, parent: Channel, child: Channel) -> None:
        """``_VAR`` is passed on once, ``__VAR`` forever; Asterisk publishes no VarSet for it."""
        levels: dict[str, int] = parent.tags.get("inherit", {})
        for bare, level in levels.items():
            if bare in parent.variables:
                child.variables[bare] = parent.variables[bare]
                if level == 2:
                    child.tags.setdefault("inherit", {})[bare] = 2

    def new_channel(
        self, base: str, *, context: str, exten: str, linkedid: str, caller: Channel | None
    ) -> Channel:
        """A channel without a Local partner (a simulated SIP phone): ``PJSIP/8001-0000001a``."""
        channel = Channel(f"{base}-{self.next_counter():08x}", self.next_uniqueid(), linkedid, context=context,
                          exten=exten, state=DOWN, created=self.clock.now())  # fmt: skip
        if caller is not None:
            channel.cid_num, channel.cid_name = caller.cid_num, caller.cid_name
            channel.conn_num, channel.conn_name = caller.cid_num, caller.cid_name
        self._add_channel(channel)
        self.channel_event("Newchannel", channel)
        return channel

    def local_bridge_event(self, one: Channel, two: Channel, *, optimize: bool) -> None:
        if self.sink.wants("call"):
            headers = one.snapshot("LocalOne") + two.snapshot("LocalTwo")
            headers += [("Context", two.context), ("Exten", two.exten),
                        ("LocalOptimization", "Yes" if optimize else "No")]  # fmt: skip
            self.emit("call", "LocalBridge", headers)

    @staticmethod
    def parse_local(target: str) -> tuple[str, str, bool] | None:
        """``Local/1004@agents/n`` -> ("1004", "agents", optimize=False); None if not Local."""
        if not target.startswith("Local/"):
            return None
        rest = target[len("Local/") :]
        rest, _, options = rest.partition("/")
        exten, sep, context = rest.partition("@")
        if not sep or not exten or not context:
            return None
        return exten, context, "n" not in options

    # -- Originate ------------------------------------------------------------------------------
    def originate(self, request: OriginateRequest) -> None:
        self.later(self.settings.originate_delay, self.originator.originate_now, request)

    # -- dialplan -------------------------------------------------------------------------------
    def start_dialplan(self, channel: Channel, context: str, exten: str, priority: int) -> None:
        channel.context, channel.exten, channel.priority = context, exten, priority
        channel.in_pbx = True
        channel.activity = DialplanRun(self, channel)
        self.execute(channel)

    def execute(self, channel: Channel) -> None:
        """Run priorities until an application blocks, the dialplan ends or the channel dies."""
        run = channel.activity
        while not channel.dead and run is channel.activity:
            step = self.dialplan.step(channel.context, channel.exten, channel.priority)
            if step is None:
                if self._to_invalid(channel):
                    continue
                # Falling off the end of the dialplan hangs the channel up.
                self.softhangup(channel, 16)
                return
            channel.app = step.app
            channel.appdata = self.vars.expand(channel, step.data)
            self.newexten(channel)
            application = self.apps.get(step.app.lower())
            if application is None:
                log.warning("sim: no application %r (%s,%s,%s)", step.app, channel.context, channel.exten,
                            channel.priority)  # fmt: skip
                self.softhangup(channel, 0)
                return
            blocked = application(self, channel, channel.appdata)
            if blocked:
                return
            if run is channel.activity and not channel.dead:
                channel.priority += 1

    def _to_invalid(self, channel: Channel) -> bool:
        """A jump to an extension that does not exist goes to ``i`` when the context has one."""
        context = self.dialplan.contexts.get(channel.context)
        if context is None or channel.exten == "i" or context.match(channel.exten) is not None:
            return False
        if context.match("i") is None:
            return False
        self.set_var(channel, "INVALID_EXTEN", channel.exten)
        channel.exten, channel.priority = "i", 1
        return True

    def resume(self, channel: Channel) -> None:
        """The blocking application finished: next priority, or hang up outside the dialplan."""
        if channel.dead:
            return
        if not channel.in_pbx:
            self.softhangup(channel, 0)  # an Originate's application ended (trace 10: Cause 0)
            return
        channel.priority += 1
        self.execute(channel)

    def goto(self, channel: Channel, context: str, exten: str, priority: int) -> None:
        """Dialplan Goto: continue at the target; ``execute`` must not increment afterwards."""
        channel.context, channel.exten, channel.priority = context, exten, priority - 1

    # -- hangup ---------------------------------------------------------------------------------
    def softhangup(self, channel: Channel, cause: int) -> None:
        """Ask ``channel`` to hang up (Hangup action, end of dialplan, bridge peer gone)."""
        if channel.dead or channel.tags.get("hanging"):
            return
        channel.tags["hanging"] = True
        if cause == 0 and (channel.bridge is not None or channel.tags.get("was_bridged")):
            cause = (
                16  # a channel that talked in a bridge ends with normal clearing (traces 02, 07 vs 03, 10)
            )
        channel.hangup_cause = cause
        owner = channel.activity
        if owner is None:
            self.finish_hangup(channel, cause)
        else:
            owner.hangup(channel, cause)

    def queue_hangup(self, channel: Channel, cause: int) -> None:
        """A hangup queued by the other half of a Local pair: HangupRequest first."""
        if channel.dead or channel.tags.get("hanging"):
            return
        self.channel_event("HangupRequest", channel, [("Cause", str(cause))])
        self.queues.hangup_requested(channel)
        self.defer(lambda: self.softhangup(channel, cause))

    def finish_hangup(self, channel: Channel, cause: int) -> None:
        """The owner is done with ``channel``: publish its end and pass the hangup on."""
        if channel.dead:
            return
        if channel.in_pbx:
            self.channel_event("SoftHangupRequest", channel, [("Cause", str(SOFT_HANGUP_CAUSE))])
            self.queues.hangup_requested(channel)
        self.hangup_handlers.run_hangup_handlers(channel)
        partner = channel.partner
        if partner is not None and not partner.dead:
            self.queue_hangup(partner, cause)
        chanspy.spyee_hangs_up(channel)
        channel.dead = True
        channel.activity = None
        self.channel_event(
            "Hangup", channel, [("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown"))]
        )
        self.channels.pop(channel.name, None)
        self._device_channels.get(self.device_of(channel.name), {}).pop(channel.name, None)
        self.update_device(channel)
        after = channel.tags.pop("after_hangup", None)
        if after is not None:
            after()

    # -- redirect -------------------------------------------------------------------------------
    def redirect(self, channels: list[tuple[Channel, str, str, int]]) -> None:
        """AMI Redirect (one or two channels): async goto, as Asterisk does it."""
        bridged: dict[int, tuple[Any, list[Channel]]] = {}
        for channel, context, exten, priority in channels:
            channel.context, channel.exten, channel.priority = context, exten, priority
            if channel.bridge is not None and channel.bridge.kind == "basic":
                entry = bridged.setdefault(id(channel.bridge), (channel.bridge, []))
                entry[1].append(channel)
            else:
                self.newexten(channel)
        for bridge, leaving in bridged.values():
            bridge.depart(leaving, redirected=True)
        for channel, *_ in channels:
            owner = channel.activity
            if owner is not None:
                owner.redirect(channel)
            self.continue_after_redirect(channel)

    def continue_after_redirect(self, channel: Channel) -> None:
        if channel.dead:
            return
        if not isinstance(channel.activity, DialplanRun):
            channel.in_pbx = True
            channel.activity = DialplanRun(self, channel)
        self.resume(channel)

    # -- queries --------------------------------------------------------------------------------
    def live_channels(self) -> list[Channel]:
        return [c for c in self.channels.values() if not c.dead]

    def prompt_seconds(self, name: str) -> float:
        """How long a prompt plays, by file name (paths and extensions do not matter)."""
        base = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return self.settings.prompt_seconds.get(base, self.settings.default_prompt_seconds)

    def shutdown(self) -> None:
        """All state is lost (a restart): no events, timers cleared by the owner of the clock."""
        self.channels.clear()
        self._device_channels.clear()
        self._deferred.clear()
