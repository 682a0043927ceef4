"""Dialplan applications of the simulated PBX and the owners of channels that run them.

An application is ``fn(pbx, channel, data) -> blocked``. A blocking one parks a small state object
on the channel's ``DialplanRun`` and later calls ``pbx.resume``; for a channel outside the
dialplan (the application of an Originate) resuming means hanging up, as in Asterisk.

Supported: AddQueueMember, Answer, Background, ConfBridge, DBdeltree, Dial, ExecIf, Goto, GotoIf,
Hangup, Log, MixMonitor, MSet, NoOp, Playback, Progress, Queue, Read, RemoveQueueMember, Return
(ends a hangup handler, else a NoOp), Ringing, Set (also of DB() and CHANNEL(hangup_handler_push)),
UserEvent, Verbose, Wait. Media never flows: Playback and Read only take the time
the prompt lasts (``PbxSettings.prompt_seconds``, by file name); Read gets its digits from the
simulated caller (``channel.tags["keys"]`` or the ``SIM_KEYS`` variable); MixMonitor records
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from gateway.sim.channel import RINGING, UP, Channel
from gateway.sim.clock import Timer
from gateway.sim.dialplan import split_app, split_args

if TYPE_CHECKING:
    from gateway.sim.pbx import OriginateRequest, Pbx

Application = Callable[["Pbx", Channel, str], bool]


class AppState(Protocol):
    """A blocking application in progress on one channel."""

    def stop(self, channel: Channel, why: str) -> None: ...  # why: "hangup" | "redirect"

    def bridge_ended(self, channel: Channel) -> None: ...


class DialplanRun:
    """Owner of a channel that executes dialplan (or one application, outside the dialplan)."""

    def __init__(self, pbx: Pbx, channel: Channel) -> None:
        self.pbx = pbx
        self.channel = channel
        self.state: AppState | None = None

    def block(self, state: AppState) -> bool:
        self.state = state
        return True

    def done(self) -> None:
        self.state = None
        self.pbx.resume(self.channel)

    def hangup(self, channel: Channel, cause: int) -> None:
        state, self.state = self.state, None
        if state is not None:
            state.stop(channel, "hangup")
        self.pbx.finish_hangup(channel, cause)

    def redirect(self, channel: Channel) -> None:
        state, self.state = self.state, None
        if state is not None:
            state.stop(channel, "redirect")

    def bridge_ended(self, channel: Channel) -> None:
        if self.state is not None:
            self.state.bridge_ended(channel)


def run_of(channel: Channel) -> DialplanRun:
    owner = channel.activity
    assert isinstance(owner, DialplanRun), f"{channel.name} is not running dialplan"
    return owner


class TimedState:
    """Wait, Playback, Read: a timer, then ``then`` and resume; hangup/redirect cancel it."""

    def __init__(
        self, pbx: Pbx, channel: Channel, seconds: float, then: Callable[[], None] | None = None
    ) -> None:
        self.pbx = pbx
        self.then = then
        self.timer: Timer = pbx.later(seconds, self._expired, channel)

    def _expired(self, channel: Channel) -> None:
        owner = channel.activity
        if channel.dead or not isinstance(owner, DialplanRun) or owner.state is not self:
            return
        if self.then is not None:
            self.then()
        owner.done()

    def stop(self, channel: Channel, why: str) -> None:
        self.timer.cancel()

    def bridge_ended(self, channel: Channel) -> None:
        return None


def wait_for(pbx: Pbx, channel: Channel, seconds: float, then: Callable[[], None] | None = None) -> bool:
    return run_of(channel).block(TimedState(pbx, channel, max(seconds, 0.0), then))


# -- answer and indications (they travel across the Local pair) -------------------------------
def answer(pbx: Pbx, channel: Channel) -> None:
    if channel.state == UP:
        return
    pbx.set_state(channel, UP)
    partner = channel.partner
    if partner is not None and not partner.dead and partner.state != UP:
        pbx.set_state(partner, UP)
        owner = partner.activity
        if owner is not None and hasattr(owner, "answered"):
            owner.answered(partner)


def app_answer(pbx: Pbx, channel: Channel, data: str) -> bool:
    if channel.state == UP:
        return False
    answer(pbx, channel)
    # Answer() returns with the first frame from the other side; an application there that sends
    # none at first says how long it stays silent (ChanSpy: until it spies, trace 12).
    partner = channel.partner
    state = getattr(partner.activity, "state", None) if partner is not None else None
    return wait_for(pbx, channel, max(pbx.settings.answer_delay, getattr(state, "first_frame_s", 0.0)))


def indicate_ringing(pbx: Pbx, channel: Channel) -> None:
    """Ringing indicated on a Local ;2 rings its ;1 (whose owner, a queue or a dial, hears it)."""
    partner = channel.partner
    if partner is not None and not partner.dead and partner.state not in (RINGING, UP):
        pbx.set_state(partner, RINGING)
        owner = partner.activity
        if owner is not None and hasattr(owner, "ringing"):
            owner.ringing(partner)


def app_ringing(pbx: Pbx, channel: Channel, data: str) -> bool:
    indicate_ringing(pbx, channel)
    return False


def app_noop(pbx: Pbx, channel: Channel, data: str) -> bool:
    return False


def app_wait(pbx: Pbx, channel: Channel, data: str) -> bool:
    try:
        seconds = float(data or 0)
    except ValueError:
        seconds = 0.0
    return wait_for(pbx, channel, seconds)


def _prompts_seconds(pbx: Pbx, files: str) -> float:
    return sum(pbx.prompt_seconds(name) for name in files.split("&") if name)


def app_playback(pbx: Pbx, channel: Channel, data: str) -> bool:
    args = split_args(data)
    if channel.state != UP and "noanswer" not in args[1:]:
        answer(pbx, channel)

    def finished() -> None:
        pbx.set_var(channel, "PLAYBACKSTATUS", "SUCCESS")

    return wait_for(pbx, channel, _prompts_seconds(pbx, args[0]), finished)


def app_background(pbx: Pbx, channel: Channel, data: str) -> bool:
    args = split_args(data)
    if channel.state != UP:
        answer(pbx, channel)
    return wait_for(pbx, channel, _prompts_seconds(pbx, args[0]))


def next_key(channel: Channel) -> tuple[str, float] | None:
    """The simulated caller's next DTMF digit and how long they take to press it."""
    keys = channel.tags.get("keys")
    if keys is None:
        keys = channel.tags["keys"] = list(channel.variables.get("SIM_KEYS", ""))
    if not keys:
        return None
    return keys.pop(0), float(channel.tags.get("key_delay", 1.5))


def app_read(pbx: Pbx, channel: Channel, data: str) -> bool:
    """Read(var,prompt,maxdigits,options,attempts,timeout): one digit from the simulated caller."""
    args = split_args(data) + [""] * 6
    name, prompt, timeout_text = args[0], args[1], args[5]
    if channel.state != UP:
        answer(pbx, channel)
    timeout = float(timeout_text) if timeout_text else 5.0
    key = next_key(channel)
    heard = _prompts_seconds(pbx, prompt)

    def finished() -> None:
        pbx.set_var(channel, name, key[0] if key else "")
        pbx.set_var(channel, "READSTATUS", "OK" if key else "TIMEOUT")

    return wait_for(pbx, channel, heard + (key[1] if key else timeout), finished)


def app_set(pbx: Pbx, channel: Channel, data: str) -> bool:
    name, sep, value = data.partition("=")
    if not sep:
        return False
    name = name.strip()
    if "(" in name:
        write_function(pbx, channel, name, value)
    else:
        pbx.set_var(channel, name, value)
    return False


def app_mset(pbx: Pbx, channel: Channel, data: str) -> bool:
    for item in split_args(data):
        app_set(pbx, channel, item)
    return False


def write_function(pbx: Pbx, channel: Channel, name: str, value: str) -> None:
    function, _, raw = name.partition("(")
    raw = raw.removesuffix(")")
    arg = raw.strip().lower()
    match function.upper(), arg:
        case "DB", _:
            pbx.vars.db_write(raw, value)
        case "CHANNEL", "hangup_handler_push":
            pbx.hangup_handlers.push_hangup_handler(channel, value)
        case "CHANNEL", "language":
            channel.language = value
        case "CALLERID", "num":
            pbx.set_callerid(channel, value, channel.cid_name)
        case "CALLERID", "name":
            pbx.set_callerid(channel, channel.cid_num, value)
        case _:
            pass  # other functions have no visible effect in AMI


def app_dbdeltree(pbx: Pbx, channel: Channel, data: str) -> bool:
    pbx.vars.db_deltree(data)
    return False


def app_return(pbx: Pbx, channel: Channel, data: str) -> bool:
    """Ends a hangup handler (the only Gosub the simulator runs); elsewhere a NoOp."""
    return bool(channel.tags.get("hanging"))


def app_goto(pbx: Pbx, channel: Channel, data: str) -> bool:
    target = goto_target(pbx, channel, data)
    if target is not None:
        pbx.goto(channel, *target)
    return False


def goto_target(pbx: Pbx, channel: Channel, data: str) -> tuple[str, str, int] | None:
    parts = [part.strip() for part in split_args(data)]
    context, exten = channel.context, channel.exten
    if len(parts) == 3:
        context, exten, label = parts
    elif len(parts) == 2:
        exten, label = parts
    else:
        label = parts[0]
    if label.isdigit():
        return context, exten, int(label)
    extension = pbx.dialplan.find(context, exten)
    priority = extension.priority_of(label) if extension else None
    return (context, exten, priority) if priority else None


def app_gotoif(pbx: Pbx, channel: Channel, data: str) -> bool:
    condition, _, branches = data.partition("?")
    when_true, _, when_false = branches.partition(":")
    chosen = when_true if condition.strip() not in ("", "0") else when_false
    return app_goto(pbx, channel, chosen) if chosen else False


def app_hangup(pbx: Pbx, channel: Channel, data: str) -> bool:
    cause = int(data) if data.strip().isdigit() else 16
    pbx.softhangup(channel, cause)
    return True


def app_userevent(pbx: Pbx, channel: Channel, data: str) -> bool:
    name, _, body = data.partition(",")
    headers = [*channel.snapshot(), ("UserEvent", name)]
    for item in split_args(body) if body else []:
        key, _, value = item.partition(":")
        headers.append((key.strip(), value[1:] if value.startswith(" ") else value))
    pbx.emit("user", "UserEvent", headers)
    return False


def app_mixmonitor(pbx: Pbx, channel: Channel, data: str) -> bool:
    filename = split_args(data)[0]
    pbx.set_var(channel, "MIXMONITOR_FILENAME", filename)
    return False


def app_queue(pbx: Pbx, channel: Channel, data: str) -> bool:
    return pbx.queues.callers.queue_app(channel, data)


def app_execif(pbx: Pbx, channel: Channel, data: str) -> bool:
    """ExecIf(expr?App(args)[:App(args)]): the chosen application runs in place (no Newexten)."""
    condition, _, branches = data.partition("?")
    depth, split = 0, len(branches)
    for index, char in enumerate(branches):
        depth += char == "("
        depth -= char == ")"
        if char == ":" and depth == 0:
            split = index
            break
    chosen = branches[:split] if condition.strip() not in ("", "0") else branches[split + 1 :]
    if not chosen.strip():
        return False
    step = split_app(chosen)
    application = pbx.apps.get(step.app.lower())
    return application(pbx, channel, step.data) if application else False


def app_add_queue_member(pbx: Pbx, channel: Channel, data: str) -> bool:
    """AddQueueMember(queue,interface,penalty,options,membername,stateinterface); AQMSTATUS."""
    from gateway.sim.queues import QueueError  # queues builds on this module

    args = split_args(data) + [""] * 6
    penalty = int(args[2]) if args[2].strip().lstrip("-").isdigit() else 0
    try:
        pbx.queues.add_member(args[0], args[1] or channel.name, penalty=penalty, name=args[4],
                              state_interface=args[5])  # fmt: skip
        status = "ADDED"
    except QueueError as exc:
        status = "MEMBERALREADY" if exc.kind == "exists" else "NOSUCHQUEUE"
    pbx.set_var(channel, "AQMSTATUS", status)
    return False


def app_remove_queue_member(pbx: Pbx, channel: Channel, data: str) -> bool:
    from gateway.sim.queues import QueueError  # queues builds on this module

    args = [*split_args(data), "", ""]
    try:
        pbx.queues.remove_member(args[0], args[1] or channel.name)
        status = "REMOVED"
    except QueueError as exc:
        status = "NOTINQUEUE" if exc.kind in ("absent", "static") else "NOSUCHQUEUE"
    pbx.set_var(channel, "RQMSTATUS", status)
    return False


def app_dial(pbx: Pbx, channel: Channel, data: str) -> bool:
    from gateway.sim.dial import app_dial as dial

    return dial(pbx, channel, data)


def app_confbridge(pbx: Pbx, channel: Channel, data: str) -> bool:
    return pbx.conferences.join(channel, split_args(data)[0])


APPLICATIONS: dict[str, Application] = {
    "addqueuemember": app_add_queue_member, "answer": app_answer, "background": app_background,
    "confbridge": app_confbridge, "dbdeltree": app_dbdeltree, "dial": app_dial, "execif": app_execif, "goto": app_goto, "gotoif": app_gotoif,
    "hangup": app_hangup, "log": app_noop, "mixmonitor": app_mixmonitor, "mset": app_mset, "noop": app_noop,
    "playback": app_playback, "progress": app_noop, "queue": app_queue, "read": app_read,
    "removequeuemember": app_remove_queue_member, "return": app_return, "ringing": app_ringing, "set": app_set,
    "userevent": app_userevent, "verbose": app_noop, "wait": app_wait,
}  # fmt: skip


class OriginateDial:
    """Owner of an Originate's ;1 until it is answered; then it runs the application or dialplan."""

    def __init__(self, pbx: Pbx, channel: Channel, request: OriginateRequest, *, dial_string: str) -> None:
        self.pbx = pbx
        self.channel = channel
        self.request = request
        self.dial_string = dial_string
        self.timer: Timer | None = None
        self.finished = False

    def ringing(self, channel: Channel) -> None:
        self.pbx.dial_event("DialState", None, channel, [("DialStatus", "RINGING")])

    def answered(self, channel: Channel) -> None:
        pbx, request = self.pbx, self.request
        if self.timer is not None:
            self.timer.cancel()
        self.finished = True
        pbx.dial_event("DialEnd", None, channel, [("DialStatus", "ANSWER")])
        if request.application:
            channel.app, channel.appdata = request.application, request.app_data
            run = DialplanRun(pbx, channel)
            channel.activity = run
            application = pbx.apps.get(request.application.lower())
            blocked = application(pbx, channel, request.app_data) if application else False
            self._report_success(channel)
            if not blocked and channel.activity is run:
                pbx.softhangup(channel, 16)
            return
        self._report_success(channel)
        pbx.start_dialplan(channel, request.context or "default", request.exten or "s", request.priority)

    def _report_success(self, channel: Channel) -> None:
        request = self.request
        if request.report:
            self.pbx.emit(
                "call",
                "OriginateResponse",
                self.pbx.originator.originate_response(request, channel, "Success", 4),
            )
        if request.on_result is not None:
            request.on_result(True)

    def timed_out(self) -> None:
        if self.finished or self.channel.dead:
            return
        self._fail("NOANSWER", reason=3)
        self.pbx.softhangup(self.channel, 0)

    def _fail(self, status: str, *, reason: int) -> None:
        self.finished = True
        pbx = self.pbx
        pbx.dial_event("DialEnd", None, self.channel, [("DialStatus", status)])
        if self.request.report:
            pbx.emit("call", "OriginateResponse", pbx.originator.originate_response(self.request, self.channel,
                                                                                    "Failure", reason))  # fmt: skip
        if self.request.on_result is not None:
            self.request.on_result(False)

    def hangup(self, channel: Channel, cause: int) -> None:
        if not self.finished:
            if self.timer is not None:
                self.timer.cancel()
            self._fail("CANCEL", reason=1)
        self.pbx.finish_hangup(channel, cause)

    def redirect(self, channel: Channel) -> None:
        self.finished = True

    def bridge_ended(self, channel: Channel) -> None:
        return None
