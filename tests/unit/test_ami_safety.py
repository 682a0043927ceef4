"""Safe action builders: trace 10's injection payloads are refused in every field, names are
allowlisted, and each action's write class matches what Asterisk 22 itself lists (trace 08)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from gateway.ami import safety
from gateway.ami.errors import UnsafeValueError
from gateway.ami.protocol import Message, MessageParser, UnsafeHeaderError
from tests.support.ami_peer import TRACES

# Verbatim from 10-crlf-injection.sent.ami (checked below): what made Asterisk add headers, run a
# smuggled UserEvent, and hang up the test channel.
PAYLOADS = {
    "a single CRLF adds headers": "abc\r\nAction: UserEvent\r\nUserEvent: InjectedA",
    "a second Channel header": "abc\r\nAction: Hangup\r\nChannel: Local/wait@test-00000019;2",
    "a blank line smuggles an action": "abc\r\n\r\nAction: UserEvent\r\nActionID: inj-b-smuggled\r\nUserEvent: InjectedB",
    "bare LF works like CRLF": "abc\n\nAction: UserEvent\nActionID: inj-c-smuggled\nUserEvent: InjectedC",
    "a bare CR": "abc\rAction: UserEvent",
    "a smuggled Hangup": "x\r\n\r\nAction: Hangup\r\nActionID: inj-e-smuggled\r\nChannel: Local/wait@test-00000019;1",
    "a NUL byte": "abc\x00Action: Hangup",
}

BUILDERS: dict[str, Callable[[str], safety.Action]] = {
    "QueueAdd.Queue": lambda v: safety.queue_add(v, "Local/1001@agents/n"),
    "QueueAdd.Interface": lambda v: safety.queue_add("hotline-general", v),
    "QueueAdd.MemberName": lambda v: safety.queue_add("hotline-general", "PJSIP/1001", member_name=v),
    "QueueRemove.Interface": lambda v: safety.queue_remove("hotline-general", v),
    "QueuePause.Interface": lambda v: safety.queue_pause(v, True),
    "QueuePause.Reason": lambda v: safety.queue_pause("PJSIP/1001", True, reason=v),
    "QueuePenalty.Queue": lambda v: safety.queue_penalty("PJSIP/1001", 1, queue=v),
    "Redirect.Channel": lambda v: safety.redirect(v, "transfer", "expert"),
    "Redirect.Context": lambda v: safety.redirect("PJSIP/trunk-00000001", v, "expert"),
    "Redirect.Exten": lambda v: safety.redirect("PJSIP/trunk-00000001", "transfer", v),
    "Redirect.ExtraChannel": lambda v: safety.redirect(
        "PJSIP/trunk-00000001", "conf", "7107", extra_channel=v
    ),
    "BlindTransfer.Channel": lambda v: safety.blind_transfer(v, "transfer", "expert"),
    "Atxfer.Exten": lambda v: safety.atxfer("PJSIP/1001-00000001", v),
    "Originate.Channel": lambda v: safety.originate(v, application="ConfBridge", data="7107"),
    "Originate.Data": lambda v: safety.originate("Local/1004@agents/n", application="ConfBridge", data=v),
    "Originate.CallerIDName": lambda v: safety.originate(
        "Local/1004@agents/n", context="hotline-conf", exten="7107", caller_id_name=v, caller_id_number="1004"
    ),
    "Originate.Variable": lambda v: safety.originate(
        "Local/1004@agents/n", context="hotline-conf", exten="7107", variables={"HANDOVER": v}
    ),
    "Hangup.Channel": lambda v: safety.hangup(v),
    "Setvar.Value": lambda v: safety.setvar("INJ_A", v, channel="Local/wait@test-00000019;1"),
    "Setvar.Variable": lambda v: safety.setvar(v, "1"),
    "Getvar.Variable": lambda v: safety.getvar(v, channel="PJSIP/1001-00000001"),
    "UserEvent.value": lambda v: safety.user_event("HotlineNote", {"Body": v}),
    "UserEvent.name": lambda v: safety.user_event(v),
    "Status.Channel": lambda v: safety.status(channel=v),
    "QueueStatus.Member": lambda v: safety.queue_status(member=v),
    "Login.Secret": lambda v: safety.login("gateway", v),
    "Reload.Module": lambda v: safety.reload(v),
}


def test_payloads_are_the_recorded_ones() -> None:
    sent = (TRACES / "10-crlf-injection.sent.ami").read_bytes().decode()
    for payload in PAYLOADS.values():
        if "\x00" not in payload:
            assert payload.partition("Action:")[2] in sent


@pytest.mark.parametrize("field", sorted(BUILDERS))
@pytest.mark.parametrize("payload", sorted(PAYLOADS), ids=sorted(PAYLOADS))
def test_every_field_refuses_every_injection(field: str, payload: str) -> None:
    with pytest.raises((UnsafeHeaderError, UnsafeValueError), match=field.partition(".")[0]):
        BUILDERS[field](PAYLOADS[payload])


def test_refusal_names_the_action_and_the_field_and_never_strips() -> None:
    with pytest.raises(UnsafeHeaderError, match=r"^Setvar: AMI header Value: value contains '\\r'"):
        safety.setvar("INJ_A", PAYLOADS["a single CRLF adds headers"], channel="PJSIP/1001-00000001")
    with pytest.raises(
        UnsafeValueError, match=r"^Redirect: field Context: 'transfer\\n' is not a dialplan context"
    ):
        safety.redirect("PJSIP/trunk-00000001", "transfer\n", "expert")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: safety.hangup(r"/^Local\/12345@from-pstn-.*;2$/"), "not a channel name"),
        (lambda: safety.getvar("SHELL(rm -rf /)"), "no functions"),
        (lambda: safety.setvar("FILE(/etc/passwd)", "x"), "no functions"),
        (lambda: safety.atxfer("PJSIP/1001-00000001", "policy"), "digits-only"),
        (lambda: safety.command("core stop now"), "not an allowed CLI command"),
        (lambda: safety.originate("Local/1004@agents/n", application="System", data="x"), "not one of"),
        (lambda: safety.originate("Local/1004@agents/n"), "either context and exten, or application"),
        (lambda: safety.user_event("HotlineNote", {"Event": "Spoofed"}), "reserved"),
        (lambda: safety.user_event("HotlineNote", {"ActionID": "x"}), "reserved"),
        (lambda: safety.queue_add("hotline general", "PJSIP/1001"), "not a queue name"),
        (lambda: safety.queue_penalty("PJSIP/1001", -1), "not in 0..1000"),
        (lambda: safety.queue_pause("PJSIP/1001", True, reason="x" * 81), "longer than 80"),
        (lambda: safety.reload("../../etc/passwd"), "is not a module"),
        (
            lambda: safety.originate(
                "Local/1004@agents/n", application="Wait", caller_id_name='a" <110>', caller_id_number="1"
            ),
            "quotes",
        ),
    ],
)
def test_allowlists(build: Callable[[], safety.Action], message: str) -> None:
    with pytest.raises(UnsafeValueError, match=message):
        build()


def sent_actions() -> dict[str, dict[str, str]]:
    """Every action the trace recorder sent, by ActionID, without Action/ActionID."""
    found: dict[str, dict[str, str]] = {}
    for path in TRACES.glob("*.sent.ami"):
        for message in MessageParser().feed(path.read_bytes()):
            if message.action_id:
                found[message.action_id] = {k: v for k, v in message.headers if k not in ("ActionID",)}
    return found


@pytest.mark.parametrize(
    ("action_id", "action"),
    [
        (
            "queuepause-10",
            safety.queue_pause("Local/1001@agents/n", True, queue="hotline-general", reason="lunch"),
        ),
        ("queuepause-75", safety.queue_pause("Local/1003@agents/n", False)),
        ("queueremove-78", safety.queue_remove("hotline-general", "Local/1003@agents/n")),
        ("redirect-19", safety.redirect("Local/12345@from-pstn-00000006;2", "transfer", "expert")),
        ("blindtransfer-24", safety.blind_transfer("Local/1001@agents-0000000a;1", "transfer", "expert")),
        ("atxfer-29", safety.atxfer("Local/1002@agents-0000000d;1", "7004", context="transfer")),
        (
            "redirect-40",
            safety.redirect(
                "Local/12345@from-pstn-00000012;2",
                "conf",
                "7107",
                extra_channel="Local/1002@agents-00000013;1",
            ),
        ),
        ("hangup-82", safety.hangup("Local/12345@from-pstn-00000016;2", cause=16)),
        ("getvar-68", safety.getvar("LEGACY_LINE", channel="Local/12345@from-pstn-00000016;2")),
        (
            "status-66",
            safety.status(
                channel="Local/12345@from-pstn-00000016;2", variables=["LEGACY_LINE", "CALLER_TAG"]
            ),
        ),
        ("queuestatus-62", safety.queue_status(queue="hotline-general", member="Local/1001@agents/n")),
        ("command-93", safety.command("dialplan reload")),
        ("command-94", safety.command("queue reload all")),
        ("reload-91", safety.reload("app_queue.so")),
    ],
)
def test_builders_say_what_the_recorded_session_said(action_id: str, action: safety.Action) -> None:
    recorded = sent_actions()[action_id]
    built = {"Action": action.name, **dict(action.headers)}
    for header, value in recorded.items():
        if header in ("Priority", "Cause") and header not in built:
            continue
        assert built.get(header) == value, header


def listed_privileges() -> dict[str, frozenset[str]]:
    """``ListCommands`` as Asterisk 22.10.1 answered it: action -> write classes (any one suffices)."""
    answer = next(
        m
        for m in MessageParser(expect_banner=True).feed((TRACES / "08-actions.ami").read_bytes())
        if m.action_id == "listcommands-100"
    )
    privileges = {}
    for name, text in answer.headers:
        match = re.search(r"\(Priv: ([^)]*)\)\s*$", text)
        if match:
            classes = set(match.group(1).split(",")) - {"all", "<none>"}
            privileges[name] = frozenset(classes)
    return privileges


@pytest.mark.parametrize(
    "action",
    [
        safety.ping(),
        safety.challenge(),
        safety.login("gateway", "s"),
        safety.logoff(),
        safety.queue_add("q", "PJSIP/1001"),
        safety.queue_remove("q", "PJSIP/1001"),
        safety.queue_pause("PJSIP/1001", True),
        safety.queue_penalty("PJSIP/1001", 2),
        safety.redirect("PJSIP/t-00000001", "c", "e"),
        safety.blind_transfer("PJSIP/t-00000001", "c", "e"),
        safety.atxfer("PJSIP/t-00000001", "7004"),
        safety.originate("Local/1004@agents/n", application="ConfBridge", data="7107"),
        safety.hangup("PJSIP/t-00000001"),
        safety.setvar("X", "1"),
        safety.getvar("X"),
        safety.user_event("HotlineNote"),
        safety.queue_status(),
        safety.queue_summary(),
        safety.core_show_channels(),
        safety.status(),
        safety.command("dialplan reload"),
        safety.reload(),
    ],
    ids=lambda a: a.name,
)
def test_write_classes_match_asterisks_own_list(action: safety.Action) -> None:
    assert action.privileges == listed_privileges()[action.name]


def test_chinese_text_is_fine_where_text_is_expected() -> None:
    action = safety.queue_pause("PJSIP/1001", True, reason="午休")
    assert action.get("Reason") == "午休"
    assert (
        Message([("Action", action.name), *action.headers]).encode().endswith("Reason: 午休\r\n\r\n".encode())
    )


def test_a_channel_variable_takes_a_whole_channel_name_and_nothing_else() -> None:
    def spy(target: str) -> safety.Action:
        return safety.originate(
            "Local/8001@hotline-supervisor-phone",
            context="hotline-supervise",
            exten="listen",
            channel_variables={"HOTLINE_SPY_TARGET": target},
        )

    action = spy("Local/1001@agents-00000001;1")  # the dialplan text rule would refuse its ";"
    assert ("Variable", "HOTLINE_SPY_TARGET=Local/1001@agents-00000001;1") in action.headers
    for hostile in ("PJSIP/1001-0000002a,CHANNEL(hangup_handler_push)=evil", "PJSIP/1001;3", "${EVIL}", ""):
        with pytest.raises(UnsafeValueError, match="is not a channel name"):
            spy(hostile)
