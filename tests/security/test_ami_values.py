"""Issue 17 items 4 and 10: Originate variables cannot smuggle a second variable, call backs dial
only the YAML's dial plan, and the AMI login never sends the secret in clear unless allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.ami import safety
from gateway.ami.client import AmiClient, AmiSettings
from gateway.ami.errors import UnsafeValueError
from gateway.merge.schema import CallbackNumbers
from tests.support.ami_peer import AmiPeer

SMUGGLED = "12345,CHANNEL(hangup_handler_push)=evil-ctx,s,1"


@pytest.mark.parametrize("value", [SMUGGLED, "a,b", "x(y", 'q"', "${SHELL(id)}", "a;b"])
def test_originate_variables_refuse_what_would_split_or_expand(value: str) -> None:
    with pytest.raises(UnsafeValueError, match="Originate: variable LEGACY_LINE"):
        safety.originate(
            "Local/13900000011@hotline-outbound", context="hotline-callback-dial", exten="s",
            variables={"HOTLINE_QUEUE": "hotline-general", "LEGACY_LINE": value},
        )  # fmt: skip


def test_plain_originate_variables_still_go_out() -> None:
    action = safety.originate(
        "Local/13900000011@hotline-outbound", context="hotline-callback-dial", exten="s",
        variables={"HOTLINE_QUEUE": "hotline-general", "LEGACY_LINE": "12315"},
    )  # fmt: skip
    assert [v for k, v in action.headers if k == "Variable"] == [
        "HOTLINE_QUEUE=hotline-general",
        "LEGACY_LINE=12315",
    ]


@pytest.mark.parametrize(
    ("number", "allowed"),
    [
        ("13900000011", True),  # mobile
        ("62345678", True),  # the city's 8-digit numbers
        ("0012025550123", False),  # international
        ("+12025550123", False),
        ("110", False),  # emergency numbers are hand-overs, never call backs
        ("12345", False),
        ("1390000001", False),  # a digit short
        ("13900000011,1", False),
        (None, False),  # withheld
    ],
)
def test_callback_numbers_follow_the_dial_plan(number: str | None, allowed: bool) -> None:
    assert CallbackNumbers().allows(number) is allowed


def test_international_only_when_the_yaml_allows_it() -> None:
    plan = CallbackNumbers(international=True)
    assert plan.allows("0012025550123")
    assert plan.allows("+12025550123")
    assert not plan.allows("00120255501234567890")


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    async with AmiPeer() as server:
        yield server


def settings(peer: AmiPeer, **overrides: object) -> AmiSettings:
    values: dict[str, object] = {
        "port": peer.port, "secret": "gateway-secret", "login_timeout": 1.0,
        "backoff_initial": 0.05, "backoff_max": 0.2,
    }  # fmt: skip
    values.update(overrides)
    return AmiSettings(**values)  # type: ignore[arg-type]


async def test_login_uses_the_md5_challenge(peer: AmiPeer) -> None:
    async with AmiClient(settings(peer)) as ami:
        await ami.wait_ready(within=2.0)
    assert [m.action for m in peer.received[:2]] == ["Challenge", "Login"]
    login = peer.actions("Login")[0]
    assert (login.get("AuthType"), login.get("Secret")) == ("MD5", None)
    assert all("gateway-secret" not in str(m.headers) for m in peer.received)


async def test_no_challenge_no_plain_secret_unless_configured(peer: AmiPeer) -> None:
    peer.offers_challenge = False
    async with AmiClient(settings(peer)) as ami:
        await peer.wait_for(lambda: ami.state.login_refused)
        assert "offers no MD5 challenge" in (ami.state.last_error or "")
    assert not peer.actions("Login")
    async with AmiClient(settings(peer, plain_login_fallback=True)) as ami:
        await ami.wait_ready(within=2.0)
    assert peer.actions("Login")[0].get("Secret") == "gateway-secret"
