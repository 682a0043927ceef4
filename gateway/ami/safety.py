"""Safe AMI actions: the only way the gateway builds something to send to Asterisk.

Owns the typed builders for every action the gateway uses, the allowlists their fields are
checked against, and the write class each action needs (so a session can refuse what its
manager.conf user must not do, and the renderer can derive ``write=`` from what is used).
It does not send anything (``client``) and does not decide *whether* an action is wise (transfers,
queue control); it only guarantees that what is sent means exactly what the caller asked for.

Why so strict (trace 10): AMI has no escaping. A CR/LF in a value adds headers to the same action,
a blank line inside a value makes Asterisk run a smuggled second action (a smuggled Hangup really
hung up the test channel), and bare LF works as well as CRLF. So every value goes through
``protocol.check_header`` (CR, LF and NUL are refused, never stripped) and every name-like field
through an allowlist. Variable names never contain ``(``: ``Getvar``/``Setvar`` on a *function*
(``SHELL(...)``, ``FILE(...)``) would run it. ``Hangup`` never takes a ``/regex/`` channel, which
would hang up every matching call. ``Atxfer`` only takes a digits-only extension: Asterisk types
it as DTMF and silently does nothing with letters (trace 06b). Originate variables follow the
dialplan's text rule (no ``,`` that would split one Variable header into several).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.ami.errors import UnsafeValueError
from gateway.ami.protocol import UnsafeHeaderError, check_header
from gateway.merge.dialplan_text import UnsafeText, dialplan_text
from gateway.vocabulary import QUEUE_RE

_TECH = r"(?:PJSIP|SIP|IAX2|DAHDI|Local)"
_RESOURCE = r"[A-Za-z0-9_.+@\-]{1,80}"
CHANNEL = re.compile(rf"{_TECH}/{_RESOURCE}(?:;[12])?")
DIAL_STRING = re.compile(rf"{_TECH}/{_RESOURCE}(?:/n)?")
INTERFACE = DIAL_STRING
CONTEXT = re.compile(r"[A-Za-z0-9_\-]{1,64}")
EXTEN = re.compile(r"[A-Za-z0-9_*#+\-]{1,32}")
DTMF_EXTEN = re.compile(r"[0-9*#]{1,32}")
VARIABLE = re.compile(r"_{0,2}[A-Za-z][A-Za-z0-9_]{0,63}")
QUEUE = QUEUE_RE  # as the PBX may report it
EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
MODULE = re.compile(r"[a-z0-9_]{1,64}(?:\.so)?")  # a module file, or a built-in such as "manager"
CHANNEL_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
CALLER_NUMBER = re.compile(r"\+?[0-9]{1,32}")
APP_DATA = re.compile(r"[A-Za-z0-9_,.\-]{0,128}")
DB_PATH = re.compile(r"[A-Za-z0-9_.\-]{1,64}(?:/[A-Za-z0-9_.\-]{1,64}){0,3}")
MAX_TEXT = 256

ORIGINATE_APPLICATIONS = frozenset({"ConfBridge", "Queue", "Wait", "Playback"})
ADMIN_COMMANDS = frozenset({"dialplan reload", "queue reload all"})
# Header names a UserEvent body may not use: they would forge routing or the event's identity.
_RESERVED_USER_HEADERS = frozenset({"action", "actionid", "event", "userevent", "privilege", "response"})


@dataclass(frozen=True, slots=True)
class Action:
    """A checked action. ``privileges``: write classes of which any one allows it (empty: none)."""

    name: str
    headers: tuple[tuple[str, str], ...]
    privileges: frozenset[str]

    def get(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)


class _Builder:
    """Collects headers for one action, naming the action and field in every refusal."""

    def __init__(self, action: str, privileges: Iterable[str] = ()) -> None:
        self.action = action
        self.privileges = frozenset(privileges)
        self.headers: list[tuple[str, str]] = []

    def text(self, name: str, value: str, *, limit: int = MAX_TEXT) -> _Builder:
        try:
            check_header(name, value)
        except UnsafeHeaderError as exc:
            raise UnsafeHeaderError(f"{self.action}: {exc.message}") from None
        if len(value) > limit:
            raise UnsafeValueError(f"{self.action}: field {name} is longer than {limit} characters")
        self.headers.append((name, value))
        return self

    def token(self, name: str, value: str, pattern: re.Pattern[str], what: str) -> _Builder:
        if not pattern.fullmatch(value):
            raise UnsafeValueError(f"{self.action}: field {name}: {value!r} is not {what}")
        return self.text(name, value)

    def flag(self, name: str, value: bool) -> _Builder:
        return self.text(name, "true" if value else "false")

    def number(self, name: str, value: int, *, low: int, high: int) -> _Builder:
        if isinstance(value, bool) or not low <= value <= high:
            raise UnsafeValueError(f"{self.action}: field {name}: {value!r} is not in {low}..{high}")
        return self.text(name, str(value))

    def build(self) -> Action:
        return Action(self.action, tuple(self.headers), self.privileges)


def _channel(b: _Builder, name: str, value: str) -> _Builder:
    return b.token(name, value, CHANNEL, "a channel name (e.g. PJSIP/1001-0000002a)")


def _interface(b: _Builder, value: str) -> _Builder:
    return b.token("Interface", value, INTERFACE, "a queue member interface (e.g. Local/1001@agents/n)")


def _queue(b: _Builder, value: str) -> _Builder:
    return b.token("Queue", value, QUEUE, "a queue name (letters, digits, ., - and _)")


def _target(b: _Builder, context: str, exten: str, prefix: str = "") -> _Builder:
    b.token(f"{prefix}Context", context, CONTEXT, "a dialplan context name")
    return b.token(f"{prefix}Exten", exten, EXTEN, "a dialplan extension")


# --- session ---------------------------------------------------------------------------------


def ping() -> Action:
    return _Builder("Ping").build()


def challenge() -> Action:
    return _Builder("Challenge").text("AuthType", "MD5").build()


def login(username: str, secret: str, *, events: bool = True) -> Action:
    b = _Builder("Login").token("Username", username, CONTEXT, "a manager user name")
    b.text("Secret", secret)
    return b.text("Events", "on" if events else "off").build()


def login_md5(username: str, key: str, *, events: bool = True) -> Action:
    b = _Builder("Login").text("AuthType", "MD5")
    b.token("Username", username, CONTEXT, "a manager user name").text("Key", key)
    return b.text("Events", "on" if events else "off").build()


def logoff() -> Action:
    return _Builder("Logoff").build()


# --- queue control ---------------------------------------------------------------------------


def queue_add(
    queue: str,
    interface: str,
    *,
    member_name: str | None = None,
    penalty: int = 0,
    paused: bool = False,
    state_interface: str | None = None,
) -> Action:
    b = _queue(_Builder("QueueAdd", {"agent"}), queue)
    _interface(b, interface).number("Penalty", penalty, low=0, high=1000).flag("Paused", paused)
    if member_name is not None:
        b.text("MemberName", member_name, limit=80)
    if state_interface is not None:
        b.token("StateInterface", state_interface, INTERFACE, "a device state interface")
    return b.build()


def queue_remove(queue: str, interface: str) -> Action:
    return _interface(_queue(_Builder("QueueRemove", {"agent"}), queue), interface).build()


def queue_pause(
    interface: str, paused: bool, *, queue: str | None = None, reason: str | None = None
) -> Action:
    """Without ``queue`` Asterisk pauses the member in every queue (how a seat takes a break)."""
    b = _interface(_Builder("QueuePause", {"agent"}), interface).flag("Paused", paused)
    if queue is not None:
        _queue(b, queue)
    if reason is not None:
        b.text("Reason", reason, limit=80)
    return b.build()


def queue_penalty(interface: str, penalty: int, *, queue: str | None = None) -> Action:
    b = _interface(_Builder("QueuePenalty", {"agent"}), interface)
    b.number("Penalty", penalty, low=0, high=1000)
    if queue is not None:
        _queue(b, queue)
    return b.build()


# --- call control ----------------------------------------------------------------------------


def redirect(
    channel: str,
    context: str,
    exten: str,
    priority: int = 1,
    *,
    extra_channel: str | None = None,
    extra_context: str | None = None,
    extra_exten: str | None = None,
    extra_priority: int = 1,
) -> Action:
    """Move a channel (and optionally a second one: the three-way call moves both legs)."""
    b = _channel(_Builder("Redirect", {"call"}), "Channel", channel)
    _target(b, context, exten).number("Priority", priority, low=1, high=999)
    if extra_channel is not None:
        _channel(b, "ExtraChannel", extra_channel)
        _target(b, extra_context or context, extra_exten or exten, "Extra")
        b.number("ExtraPriority", extra_priority, low=1, high=999)
    return b.build()


def blind_transfer(channel: str, context: str, exten: str) -> Action:
    return _target(_channel(_Builder("BlindTransfer", {"call"}), "Channel", channel), context, exten).build()


def atxfer(channel: str, exten: str, *, context: str | None = None) -> Action:
    """Attended transfer; Asterisk dials ``exten`` as DTMF, so only digits, * and # work."""
    b = _channel(_Builder("Atxfer", {"call"}), "Channel", channel)
    b.token("Exten", exten, DTMF_EXTEN, "a digits-only extension (Atxfer sends it as DTMF)")
    if context is not None:
        b.token("Context", context, CONTEXT, "a dialplan context name")
    return b.build()


def originate(
    channel: str,
    *,
    context: str | None = None,
    exten: str | None = None,
    priority: int = 1,
    application: str | None = None,
    data: str = "",
    caller_id_name: str | None = None,
    caller_id_number: str | None = None,
    variables: Mapping[str, str] | None = None,
    channel_variables: Mapping[str, str] | None = None,
    timeout_ms: int = 30_000,
    channel_id: str | None = None,
    other_channel_id: str | None = None,
) -> Action:
    """Always Async: the answer is "successfully queued", the outcome an OriginateResponse event.

    ``channel_variables`` hold one whole channel name each (a Local channel's ``;1`` included,
    which the dialplan text rule of ``variables`` refuses), e.g. the channel ChanSpy listens to.
    """
    b = _Builder("Originate", {"originate"}).token(
        "Channel", channel, DIAL_STRING, "a dial string (e.g. Local/1004@agents/n)"
    )
    if (application is None) == (context is None or exten is None):
        raise UnsafeValueError("Originate: give either context and exten, or application")
    if context is not None and exten is not None:
        _target(b, context, exten).number("Priority", priority, low=1, high=999)
    elif application not in ORIGINATE_APPLICATIONS:
        allowed = ", ".join(sorted(ORIGINATE_APPLICATIONS))
        raise UnsafeValueError(f"Originate: field Application: {application!r} is not one of {allowed}")
    else:
        b.text("Application", application).token("Data", data, APP_DATA, "plain application data")
    if caller_id_number is not None:
        if not CALLER_NUMBER.fullmatch(caller_id_number):
            raise UnsafeValueError(f"Originate: caller number {caller_id_number!r} is not a phone number")
        name = caller_id_name or ""
        if any(ch in name for ch in '"<>'):
            raise UnsafeValueError(f"Originate: caller name {name!r} must not contain quotes or < >")
        b.text("CallerID", f'"{name}" <{caller_id_number}>', limit=120)
    for name, value in [*(variables or {}).items(), *(channel_variables or {}).items()]:
        if not VARIABLE.fullmatch(name):
            raise UnsafeValueError(f"Originate: variable name {name!r} is not a plain variable name")
        # Asterisk splits a Variable header at "," (outside quotes and parentheses) into more
        # variables: "A=1,CHANNEL(hangup_handler_push)=evil,s,1" would set a second, a function.
        # The value also reaches the dialplan, so the dialplan's text rule applies as a whole;
        # a channel name (no ",", no "$") is checked as one instead.
        if name in (channel_variables or {}):
            if not CHANNEL.fullmatch(value):
                raise UnsafeValueError(f"Originate: variable {name}: {value!r} is not a channel name")
        else:
            try:
                dialplan_text(value)
            except UnsafeText as exc:
                raise UnsafeValueError(f"Originate: variable {name}: {exc}") from None
        b.text("Variable", f"{name}={value}")
    b.number("Timeout", timeout_ms, low=1000, high=600_000).text("Async", "true")
    if channel_id is not None:
        b.token("ChannelId", channel_id, CHANNEL_ID, "a channel id")
    if other_channel_id is not None:
        b.token("OtherChannelId", other_channel_id, CHANNEL_ID, "a channel id")
    return b.build()


def hangup(channel: str, *, cause: int = 16) -> Action:
    b = _channel(_Builder("Hangup", {"system", "call"}), "Channel", channel)
    return b.number("Cause", cause, low=0, high=127).build()


def setvar(variable: str, value: str, *, channel: str | None = None) -> Action:
    b = _Builder("Setvar", {"call"})
    if channel is not None:
        _channel(b, "Channel", channel)
    b.token("Variable", variable, VARIABLE, "a plain variable name (no functions)")
    return b.text("Value", value, limit=1024).build()


def getvar(variable: str, *, channel: str | None = None) -> Action:
    b = _Builder("Getvar", {"call", "reporting"})
    if channel is not None:
        _channel(b, "Channel", channel)
    return b.token("Variable", variable, VARIABLE, "a plain variable name (no functions)").build()


def user_event(name: str, fields: Mapping[str, str] | None = None) -> Action:
    b = _Builder("UserEvent", {"user"}).token("UserEvent", name, EVENT_NAME, "an event name")
    for key, value in (fields or {}).items():
        if key.lower() in _RESERVED_USER_HEADERS:
            raise UnsafeValueError(f"UserEvent: header {key!r} is reserved and would forge the event")
        b.text(key, value)
    return b.build()


# --- status (lists) --------------------------------------------------------------------------


def queue_status(*, queue: str | None = None, member: str | None = None) -> Action:
    b = _Builder("QueueStatus")
    if queue is not None:
        _queue(b, queue)
    if member is not None:
        b.token("Member", member, INTERFACE, "a queue member interface")
    return b.build()


def queue_summary(*, queue: str | None = None) -> Action:
    b = _Builder("QueueSummary")
    if queue is not None:
        _queue(b, queue)
    return b.build()


def core_show_channels() -> Action:
    return _Builder("CoreShowChannels", {"system", "reporting"}).build()


def status(*, channel: str | None = None, variables: Iterable[str] = ()) -> Action:
    b = _Builder("Status", {"system", "call", "reporting"})
    if channel is not None:
        _channel(b, "Channel", channel)
    names = list(variables)
    for name in names:
        if not VARIABLE.fullmatch(name):
            raise UnsafeValueError(f"Status: variable name {name!r} is not a plain variable name")
    if names:
        b.text("Variables", ",".join(names))
    return b.build()


def db_get_tree(family: str, key: str | None = None) -> Action:
    """AstDB entries under ``/family[/key]`` (reading needs ``reporting``; writing would need ``system``)."""
    b = _Builder("DBGetTree", {"system", "reporting"}).token("Family", family, DB_PATH, "an AstDB family")
    if key is not None:
        b.token("Key", key, DB_PATH, "an AstDB key")
    return b.build()


# --- administration (admin AMI user only) ----------------------------------------------------


def command(cli: str) -> Action:
    """CLI commands are limited to the two reloads the admin tooling needs."""
    if cli not in ADMIN_COMMANDS:
        allowed = " / ".join(sorted(ADMIN_COMMANDS))
        raise UnsafeValueError(f"Command: {cli!r} is not an allowed CLI command (only {allowed})")
    return _Builder("Command", {"command"}).text("Command", cli).build()


def reload(module: str | None = None) -> Action:
    b = _Builder("Reload", {"system", "config"})
    if module is not None:
        b.token("Module", module, MODULE, "a module (e.g. app_queue.so, manager)")
    return b.build()
