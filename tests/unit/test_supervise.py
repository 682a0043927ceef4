"""Listen / whisper / barge pieces without I/O: the dialplan, the spy target check, who has a phone."""

from __future__ import annotations

import pytest

from gateway.dialplan.render import render
from gateway.merge.loader import load_config
from gateway.settings import Settings, SettingsError, token_id
from gateway.supervise.service import SPY_TARGET, Mode, supervisor_extension
from tests.conftest import ROOT


def test_the_renderer_emits_one_chanspy_extension_per_mode_with_the_target_as_a_variable() -> None:
    text = render(load_config(ROOT / "hotline_merge.yaml"))["extensions.conf"]
    context = text.split("[hotline-supervise]\n", 1)[1].split("\n\n", 1)[0].splitlines()
    guard = 'ExecIf($["${HOTLINE_SPY_TARGET}" = ""]?Hangup())'
    assert context == [
        f"exten => listen,1,{guard}", " same => n,ChanSpy(${HOTLINE_SPY_TARGET},qES)", " same => n,Hangup()",
        f"exten => whisper,1,{guard}", " same => n,ChanSpy(${HOTLINE_SPY_TARGET},qESw)", " same => n,Hangup()",
        f"exten => barge,1,{guard}", " same => n,ChanSpy(${HOTLINE_SPY_TARGET},qESB)", " same => n,Hangup()",
    ]  # fmt: skip
    assert "[hotline-supervisor-phone]\nexten => _X.,1,Dial(PJSIP/${EXTEN},30)\n" in text
    assert {m.value for m in Mode} == {"listen", "whisper", "barge"}


@pytest.mark.parametrize(
    "channel",
    ["Local/1001@agents-0000001a;1", "PJSIP/1001-0000002f", "Local/7001@hotline-handover-000000ab;2"],
)
def test_a_spy_target_is_one_whole_channel_name(channel: str) -> None:
    assert SPY_TARGET.fullmatch(channel)


@pytest.mark.parametrize(
    "channel",
    [
        "",  # ChanSpy with no prefix spies on any channel
        "Local/1001@agents",  # a prefix of every call of that seat
        "PJSIP/",
        "Local/1001@agents-0000001a;1,qEw",  # would add options
        "Local/1001@agents-0000001a;1)",
        "Local/1001@agents-0000001a;1\r\nAction: Hangup",
        "PJSIP/1001-0000002f${EVIL}",
    ],
)
def test_anything_else_is_refused_as_a_spy_target(channel: str) -> None:
    assert not SPY_TARGET.fullmatch(channel)


def test_supervisor_phones_come_from_the_environment_by_token() -> None:
    sup_a, sup_b = "sup-a-0123456789abcdefghijk", "sup-b-0123456789abcdefghij=="
    env = {
        "HOTLINE_AMI_SECRET": "a" * 24, "HOTLINE_ORDER_TOKEN": "o" * 24, "HOTLINE_FEEDBACK_TOKEN": "f" * 24,
        "HOTLINE_SUPERVISOR_TOKENS": f"{sup_a},{sup_b}",
        "HOTLINE_SUPERVISOR_EXTENSIONS": f"{sup_a}=8001, {sup_b}=8002",
    }  # fmt: skip
    settings = Settings.from_env(env, config_path=ROOT / "hotline_merge.yaml")
    assert settings.supervisor_extensions == {token_id(sup_a): "8001", token_id(sup_b): "8002"}
    assert sup_a not in repr(settings.supervisor_extensions)
    # Looked up by the identity's name: an environment token is "env:<token_id>".
    assert supervisor_extension(settings.supervisor_extensions, f"env:{token_id(sup_b)}") == "8002"
    assert (
        supervisor_extension(settings.supervisor_extensions, token_id(sup_b)) is None
    )  # a credential's name
    assert supervisor_extension(settings.supervisor_extensions, "wang-li") is None
    with pytest.raises(SettingsError, match="HOTLINE_SUPERVISOR_EXTENSIONS"):
        Settings.from_env(
            {**env, "HOTLINE_SUPERVISOR_EXTENSIONS": f"{sup_a}=phone"},
            config_path=ROOT / "hotline_merge.yaml",
        )
