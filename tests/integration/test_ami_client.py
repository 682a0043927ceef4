"""The AMI client over real TCP against the scriptable peer: each panoramisk 1.4 gap, closed."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable

import pytest
from panoramisk import Manager

from gateway.ami import safety
from gateway.ami.client import AmiClient, AmiSettings, ConnectionState, Phase
from gateway.ami.errors import (
    ActionFailedError,
    ActionNotAllowedError,
    ActionTimeoutError,
    ConnectionLostError,
    LoginFailedError,
    NotConnectedError,
)
from gateway.ami.protocol import Message, MessageParser
from tests.support.ami_peer import TRACES, AmiPeer, PeerSession, raw


def fast(peer: AmiPeer, **overrides: object) -> AmiSettings:
    settings: dict[str, object] = {
        "port": peer.port,
        "secret": "gateway-secret",
        "action_timeout": 1.0,
        "connect_timeout": 1.0,
        "login_timeout": 1.0,
        "ping_interval": 0.2,
        "ping_timeout": 0.2,
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
    }
    settings.update(overrides)
    return AmiSettings(**settings)  # type: ignore[arg-type]


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    async with AmiPeer() as server:
        yield server


@pytest.fixture
async def client(peer: AmiPeer) -> AsyncIterator[AmiClient]:
    ami = AmiClient(fast(peer))
    ami.start()
    await ami.wait_ready(within=2.0)
    yield ami
    await ami.close()


def recorded_answer(action_id: str) -> list[Message]:
    """Every message trace 08 received for one of its ActionIDs, in order."""
    parser = MessageParser(expect_banner=True)
    messages = parser.feed((TRACES / "08-actions.ami").read_bytes())
    return [m for m in messages if m.action_id == action_id]


def replay_answer(recorded_id: str) -> Callable[[PeerSession, Message], None]:
    def handler(session: PeerSession, request: Message) -> None:
        for message in recorded_answer(recorded_id):
            headers = [(k, request.action_id or "" if k == "ActionID" else v) for k, v in message.headers]
            session.send(Message(headers))

    return handler


# --- gap: a character split across two TCP reads ---------------------------------------------


async def test_chinese_text_split_inside_a_utf8_character_arrives_whole(peer: AmiPeer) -> None:
    data = raw(("Event", "UserEvent"), ("UserEvent", "HotlineNote"), ("Caller", "张三李四"))
    cut = data.index("张".encode()) + 1  # between the first and second byte of 张

    async def on_login(session: PeerSession) -> None:
        await session.write(data, split=[cut])

    peer.on_login = on_login
    seen: list[Message] = []
    async with AmiClient(fast(peer)) as ami:
        ami.add_event_listener(lambda m: seen.append(m) if m.event == "UserEvent" else None)
        await ami.wait_ready(within=2.0)
        await peer.wait_for(lambda: bool(seen))
    assert seen[0]["Caller"] == "张三李四"


async def test_baseline_panoramisk_1_4_drops_that_character(peer: AmiPeer) -> None:
    """Why this client exists: the same bytes through panoramisk lose 张."""
    data = raw(("Event", "UserEvent"), ("UserEvent", "HotlineNote"), ("Caller", "张三李四"))
    cut = data.index("张".encode()) + 1

    async def on_login(session: PeerSession) -> None:
        await session.write(data, split=[cut], pause=0.05)

    peer.on_login = on_login
    seen: list[dict[str, str]] = []
    manager = Manager(
        host="127.0.0.1", port=peer.port, username="gateway", secret="gateway-secret", ping_delay=3600,
        loop=asyncio.get_running_loop(),
    )  # fmt: skip
    manager.register_event("UserEvent", lambda _, event: seen.append(event))
    manager.connect()
    try:
        await peer.wait_for(lambda: bool(seen))
    finally:
        manager.close()
    assert seen[0]["Caller"] == "三李四"


# --- gap: actions without a deadline ------------------------------------------------------------


async def test_action_without_answer_times_out_and_leaves_nothing_pending(
    peer: AmiPeer, client: AmiClient
) -> None:
    requests: list[tuple[PeerSession, Message]] = []
    peer.on("QueueStatus", lambda session, request: requests.append((session, request)))
    events: list[Message] = []
    client.add_event_listener(events.append)

    started = time.monotonic()
    with pytest.raises(ActionTimeoutError, match=r"QueueStatus \(ActionID gw-\d+\).*0.2s"):
        await client.send(safety.queue_status(), deadline=0.2)
    assert time.monotonic() - started < 1.0
    assert not [p for p in client.pending_actions if p.startswith("QueueStatus")]

    # The answer arrives late: it must neither resolve anything nor leak out as live events.
    session, request = requests[0]
    replay_answer("queuestatus-60")(session, request)
    result = await client.send(safety.ping())
    assert result.ok
    assert [e for e in events if e.event in ("QueueParams", "QueueMember", "QueueStatusComplete")] == []


# --- gap: Ping never checked ---------------------------------------------------------------------


async def test_watchdog_drops_a_hung_peer_within_seconds_and_reconnects(peer: AmiPeer) -> None:
    phases: list[ConnectionState] = []
    async with AmiClient(fast(peer, ping_interval=0.1, ping_timeout=0.2)) as ami:
        ami.add_state_listener(phases.append)
        await ami.wait_ready(within=2.0)
        peer.stalled = True  # the socket stays open, nothing is ever answered
        hung_at = time.monotonic()
        await peer.wait_for(lambda: not ami.state.ready, within=2.0)
        detected_after = time.monotonic() - hung_at
        peer.stalled = False
        await ami.wait_ready(within=2.0)
        assert ami.state.session == 2
    assert detected_after < 1.0
    lost = [s for s in phases if s.phase is Phase.BACKOFF]
    assert lost
    assert "Ping" in (lost[0].last_error or "")


# --- gap: fixed 2 s reconnect, silent login retries ------------------------------------------


async def test_reconnect_after_the_peer_restarts_counts_and_backs_off(peer: AmiPeer) -> None:
    delays: list[float] = []
    async with AmiClient(fast(peer, backoff_initial=0.02, backoff_max=0.3)) as ami:
        ami.add_state_listener(lambda s: delays.append(s.since) if s.phase is Phase.CONNECTING else None)
        await ami.wait_ready(within=2.0)
        await peer.stop()  # Asterisk gone: connections are refused for a while
        await asyncio.sleep(0.6)
        assert not ami.state.ready
        assert ami.state.last_error_code == "ami.connect_failed"
        await peer.start()  # same port
        await ami.wait_ready(within=2.0)
        assert ami.state.session == 2
        assert ami.state.reconnects >= 3
    gaps = [b - a for a, b in itertools.pairwise(delays[1:])]
    assert gaps[-1] > gaps[0], f"delays between attempts should grow: {gaps}"


async def test_refused_login_is_a_clear_error_and_state_not_a_silent_loop(peer: AmiPeer) -> None:
    async with AmiClient(fast(peer, secret="wrong-secret", backoff_max=0.2)) as ami:
        with pytest.raises(
            LoginFailedError, match=r"AMI login as 'gateway' .* refused: Authentication failed"
        ):
            await ami.wait_ready(within=2.0)
        assert ami.state.login_refused
        assert ami.state.last_error_code == "ami.login_failed"
        with pytest.raises(NotConnectedError, match=r"ami.login_failed"):
            await ami.send(safety.ping())
        await asyncio.sleep(0.5)
        attempts = peer.connections
    assert 2 <= attempts <= 10, "retries are spaced by the backoff, not a tight loop"


async def test_md5_challenge_login(peer: AmiPeer) -> None:
    async with AmiClient(fast(peer)) as ami:
        await ami.wait_ready(within=2.0)
    login = peer.actions("Login")[0]
    assert login.get("AuthType") == "MD5"
    assert login.get("Secret") is None


# --- gap: actions in flight at a disconnect hang -----------------------------------------------


async def test_actions_in_flight_fail_promptly_when_the_connection_drops(
    peer: AmiPeer, client: AmiClient
) -> None:
    peer.on("Redirect", lambda session, request: None)
    waiting = asyncio.ensure_future(
        client.send(safety.redirect("PJSIP/trunk-00000001", "transfer", "expert"), deadline=10)
    )
    await peer.wait_for(lambda: bool(peer.actions("Redirect")))
    started = time.monotonic()
    await peer.drop_all()
    with pytest.raises(ConnectionLostError, match=r"Redirect \(ActionID gw-\d+\).*lost before the answer"):
        await waiting
    assert time.monotonic() - started < 0.5
    assert client.pending_actions == []


async def test_shutdown_event_fails_waiting_actions_and_reconnects(peer: AmiPeer, client: AmiClient) -> None:
    def shut_down(session: PeerSession, request: Message) -> None:
        session.send(Message.of(("Event", "Shutdown"), Shutdown="Cleanly", Restart="True"))

    peer.on("Setvar", shut_down)
    with pytest.raises(ConnectionLostError, match=r"Restart: True"):
        await client.send(safety.setvar("NIGHT_MODE", "1"), deadline=10)
    await client.wait_ready(within=2.0)
    assert client.state.session == 2


# --- gap: response shapes vary -------------------------------------------------------------------


async def test_event_lists_are_one_result_with_response_events_and_complete(
    peer: AmiPeer, client: AmiClient
) -> None:
    peer.on("QueueStatus", replay_answer("queuestatus-60"))
    result = await client.send(safety.queue_status())
    assert result.ok
    assert result.response.get("EventList") == "start"
    assert [e.event for e in result.events].count("QueueMember") == 6
    assert result.complete is not None
    assert result.complete["ListItems"] == "11"

    peer.on("QueueStatus", replay_answer("queuestatus-63"))  # unknown queue: Success, 0 items
    empty = await client.send(safety.queue_status(queue="no-such-queue"))
    assert empty.ok
    assert empty.events == ()
    assert empty.complete is not None


async def test_command_output_is_always_a_list_of_lines(peer: AmiPeer) -> None:
    peer.on("Command", replay_answer("command-51"))
    async with AmiClient(fast(peer)) as ami:
        await ami.wait_ready(within=2.0)
        result = await ami.send(safety.command("queue reload all"))
        assert result.output[0].startswith("hotline-general has 0 calls")
        assert len(result.output) == 7

        async def legacy(session: PeerSession, request: Message) -> None:
            body = (
                f"Response: Follows\r\nActionID: {request.action_id}\r\none line\r\n--END COMMAND--\r\n\r\n"
            )
            await session.write(body.encode())

        peer.on("Command", legacy)
        assert (await ami.send(safety.command("dialplan reload"))).output == ["one line"]


async def test_error_response_raises_with_the_action_and_asterisks_words(
    peer: AmiPeer, client: AmiClient
) -> None:
    peer.on("QueueAdd", lambda s, r: s.respond(r, "Error", Message="Unable to add interface: Already there"))
    with pytest.raises(
        ActionFailedError, match=r"QueueAdd \(ActionID gw-\d+\) failed: .*Already there"
    ) as caught:
        await client.send(safety.queue_add("hotline-general", "Local/1003@agents/n"))
    assert not caught.value.result.ok  # type: ignore[attr-defined]
    unchecked = await client.send(safety.queue_add("hotline-general", "Local/1003@agents/n"), check=False)
    assert unchecked.message == "Unable to add interface: Already there"


# --- gap: "successfully queued" without Async ------------------------------------------------


async def test_successfully_queued_answer_completes_an_action_without_async(
    peer: AmiPeer, client: AmiClient
) -> None:
    def queued(session: PeerSession, request: Message) -> None:
        session.respond(request, Message="Atxfer successfully queued")
        session.send(Message.of(("Event", "Hold"), Channel=request["Channel"]))

    peer.on("Atxfer", queued)
    held: list[Message] = []
    client.add_event_listener(lambda m: held.append(m) if m.event == "Hold" else None)
    result = await client.send(safety.atxfer("Local/1002@agents-0000000d;1", "7004", context="transfer"))
    assert result.message == "Atxfer successfully queued"
    assert result.events == ()
    await peer.wait_for(lambda: bool(held))


async def test_originate_response_event_with_our_action_id_reaches_listeners(
    peer: AmiPeer, client: AmiClient
) -> None:
    def originate(session: PeerSession, request: Message) -> None:
        session.respond(request, Message="Originate successfully queued")
        session.send(
            Message.of(
                ("Event", "OriginateResponse"), ActionID=request.action_id or "", Response="Success", Reason=4
            )
        )

    peer.on("Originate", originate)
    seen: list[Message] = []
    client.add_event_listener(seen.append)
    await client.send(safety.originate("Local/1004@agents/n", application="ConfBridge", data="7107"))
    await peer.wait_for(lambda: any(m.event == "OriginateResponse" for m in seen))


# --- readiness, listeners, privileges ----------------------------------------------------------


async def test_ready_only_once_asterisk_has_booted(peer: AmiPeer) -> None:
    """Trace 11d: logins work before app_queue is loaded; QueueSummary answers unknown command."""
    peer.after_login = ()  # a least-privilege user never sees FullyBooted (Privilege: system)
    probes: list[Message] = []

    def booting(session: PeerSession, request: Message) -> None:
        probes.append(request)
        if len(probes) < 3:
            session.respond(request, "Error", Message="Invalid/unknown command: QueueSummary.")
        else:
            session.respond(request, EventList="start", Message="Queue summary will follow")
            session.send(
                Message.of(
                    ("Event", "QueueSummaryComplete"),
                    ActionID=request.action_id or "",
                    EventList="Complete",
                    ListItems=0,
                )
            )

    peer.on("QueueSummary", booting)
    async with AmiClient(fast(peer, boot_probe_interval=0.01)) as ami:
        await ami.wait_ready(within=2.0)
    assert len(probes) == 3


async def test_a_failing_listener_does_not_break_the_session(peer: AmiPeer) -> None:
    async def on_login(session: PeerSession) -> None:
        session.send(
            Message.of(("Event", "Newchannel"), Uniqueid="1"),
            Message.of(("Event", "Newchannel"), Uniqueid="2"),
        )

    peer.on_login = on_login
    seen: list[str] = []

    def flaky(message: Message) -> None:
        if message.get("Uniqueid") == "1":
            raise RuntimeError("bug in a listener")
        if message.event == "Newchannel":
            seen.append(message["Uniqueid"])

    async with AmiClient(fast(peer)) as ami:
        ami.add_event_listener(flaky)
        await ami.wait_ready(within=2.0)
        await peer.wait_for(lambda: seen == ["2"])
        assert ami.state.session == 1


async def test_listeners_that_await_are_refused(client: AmiClient) -> None:
    async def awaits(message: Message) -> None:
        await asyncio.sleep(0)

    with pytest.raises(TypeError, match="must not await"):
        client.add_event_listener(awaits)  # type: ignore[arg-type]


async def test_admin_actions_are_refused_on_the_controller_session(peer: AmiPeer) -> None:
    settings = fast(peer, write_classes=frozenset({"call", "agent", "originate", "user", "reporting"}))
    async with AmiClient(settings) as ami:
        await ami.wait_ready(within=2.0)
        with pytest.raises(ActionNotAllowedError, match="Command needs write class command"):
            await ami.send(safety.command("dialplan reload"))
        assert (await ami.send(safety.ping())).ok
    assert peer.actions("Command") == []


async def test_send_without_session_fails_at_once() -> None:
    ami = AmiClient(AmiSettings(port=1))
    with pytest.raises(NotConnectedError, match=r"Ping: no AMI session to 127.0.0.1:1 \(idle\)"):
        await ami.send(safety.ping())
    await ami.close()
    assert ami.state.phase is Phase.CLOSED
