"""The simulator's AMI server: login, permissions, filters, framing as Asterisk parses it, faults."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

from gateway.sim.server import Simulator
from tests.sim.support import AmiTestClient

Connect = Callable[[], Awaitable[AmiTestClient]]


async def _originate(client: AmiTestClient, sim: Simulator, number: str = "12345") -> None:
    response = await client.action("Originate", Channel=f"Local/{number}@from-pstn", Application="Wait", Data="60",
                                   CallerID='"PSTN caller" <13800000001>', Async="true")  # fmt: skip
    assert response.get("Message") == "Originate successfully queued"


async def test_banner_login_ping_logoff(connect: Connect) -> None:
    client = await connect()
    login = await client.login()
    assert client.banner == "Asterisk Call Manager/11.0.0"
    assert (login.response, login.get("Message")) == ("Success", "Authentication accepted")
    pong = await client.action("Ping")
    assert pong.get("Ping") == "Pong"
    assert pong.get("Timestamp")
    bye = await client.action("Logoff")
    assert (bye.response, bye.get("Message")) == ("Goodbye", "Thanks for all the fish.")
    await asyncio.wait_for(client.eof.wait(), 2)


async def test_md5_challenge_login(connect: Connect) -> None:
    client = await connect()
    challenge = (await client.action("Challenge", AuthType="MD5")).get("Challenge") or ""
    key = hashlib.md5((challenge + "gateway-secret").encode()).hexdigest()
    answer = await client.action("Login", AuthType="MD5", Username="gateway", Key=key)
    assert answer.get("Message") == "Authentication accepted"


async def test_wrong_secret_fails_after_a_delay_and_closes(bench_sim: Simulator, connect: Connect) -> None:
    monitor = await connect()
    await monitor.login()
    client = await connect()
    await client.send(b"Action: Login\r\nActionID: x\r\nUsername: gateway\r\nSecret: wrong\r\n\r\n")
    await monitor.wait_for(lambda m: m.event == "InvalidPassword")
    await asyncio.sleep(0.01)
    assert not [m for m in client.messages if m.action_id == "x"], "answered before the delay"
    bench_sim.clock.advance(1.0)
    failed = await client.wait_for(lambda m: m.action_id == "x")
    assert (failed.response, failed.get("Message")) == ("Error", "Authentication failed")
    await asyncio.wait_for(client.eof.wait(), 2)


async def test_unknown_user_is_told_the_same(bench_sim: Simulator, connect: Connect) -> None:
    client = await connect()
    await client.send(b"Action: Login\r\nActionID: x\r\nUsername: nobody\r\nSecret: x\r\n\r\n")
    failed = await client.wait_for(lambda m: m.action_id == "x", clock=bench_sim.clock)
    assert failed.get("Message") == "Authentication failed"


async def test_actions_before_login_are_denied(connect: Connect) -> None:
    client = await connect()
    denied = await client.action("Ping")
    assert (denied.response, denied.get("Message")) == ("Error", "Permission denied")


async def test_write_classes_are_enforced(connect: Connect) -> None:
    client = await connect()
    await client.login("agentonly", "pw")
    denied = await client.action("Originate", Channel="Local/12345@from-pstn", Application="Wait", Data="1")
    assert denied.get("Message") == "Permission denied"
    allowed = await client.action("Hangup", Channel="Local/nothing;1")
    assert allowed.get("Message") == "No such channel"


async def test_read_classes_and_eventfilters_select_events(bench_sim: Simulator, connect: Connect) -> None:
    full, agent_only, filtered = await connect(), await connect(), await connect()
    await full.login()
    await agent_only.login("agentonly", "pw")
    await filtered.login("filtered", "pw")
    await _originate(full, bench_sim)
    await full.wait_for(lambda m: m.event == "AgentConnect", clock=bench_sim.clock)
    await asyncio.sleep(0.05)
    assert full.events("Newexten")
    assert full.events("Newchannel")
    assert agent_only.events("QueueCallerJoin")
    assert agent_only.events("AgentConnect")
    assert not agent_only.events("Newchannel")
    assert not agent_only.events("SuccessfulAuth")
    assert filtered.events("Newchannel")
    assert not filtered.events("Newexten")
    assert not filtered.events("VarSet")


async def test_events_off_and_on(bench_sim: Simulator, connect: Connect) -> None:
    quiet, loud = await connect(), await connect()
    await quiet.login(events="off")
    await loud.login()
    assert not quiet.events("FullyBooted")
    await _originate(loud, bench_sim)
    await loud.wait_for(lambda m: m.event == "QueueCallerJoin", clock=bench_sim.clock)
    assert not quiet.events()
    switched = await quiet.action("Events", EventMask="on")
    assert switched.get("Events") == "On"
    await _originate(loud, bench_sim, "12315")
    await quiet.wait_for(lambda m: m.event == "QueueCallerJoin", clock=bench_sim.clock)


async def test_unknown_and_missing_actions(connect: Connect) -> None:
    client = await connect()
    await client.login()
    unknown = await client.action("FooBarBaz")
    assert unknown.get("Message") == (
        "Invalid/unknown command: FooBarBaz. Use Action: ListCommands to show available commands."
    )
    await client.send(b"ActionID: nothing\r\n\r\n")
    missing = await client.wait_for(lambda m: m.action_id == "nothing")
    assert missing.get("Message") == "Missing action in request"


async def test_blank_line_inside_a_value_runs_a_smuggled_action(connect: Connect) -> None:
    """Trace 10: AMI has no escaping; CRLF CRLF in a value ends the message, the rest is a new action."""
    client = await connect()
    await client.login()
    await client.send(
        b"Action: Setvar\r\nActionID: carrier\r\nVariable: X\r\nValue: abc\r\n\r\n"
        b"Action: UserEvent\r\nActionID: smuggled\r\nUserEvent: Injected\r\n\r\n"
    )
    smuggled = await client.wait_for(lambda m: m.event == "UserEvent" and m.get("UserEvent") == "Injected")
    assert smuggled.action_id == "smuggled"
    # A single CRLF only adds headers to the same message; the first Action header wins.
    await client.send(
        b"Action: Ping\r\nActionID: single\r\nValue: a\r\nAction: UserEvent\r\nUserEvent: No\r\n\r\n"
    )
    single = await client.wait_for(lambda m: m.action_id == "single")
    assert single.get("Ping") == "Pong"


async def test_queue_actions_are_unknown_until_fully_booted(bench_sim: Simulator, connect: Connect) -> None:
    await bench_sim.shutdown(restart=True, downtime=0.0)
    client = await connect()
    await client.login()
    early = await client.action("QueueStatus")
    assert (early.get("Message") or "").startswith("Invalid/unknown command: QueueStatus")
    booted = await client.wait_for(lambda m: m.event == "FullyBooted", clock=bench_sim.clock, step=0.05)
    assert [k for k, _ in booted.headers][:3] == ["Event", "Privilege", "Status"]
    later = await client.action("QueueSummary")
    assert later.get("EventList") == "start"


async def test_restart_loses_state_and_sends_a_new_banner(bench_sim: Simulator, connect: Connect) -> None:
    client = await connect()
    await client.login()
    await _originate(client, bench_sim)
    await client.wait_for(lambda m: m.event == "QueueCallerJoin", clock=bench_sim.clock)
    await bench_sim.shutdown(restart=True, downtime=0.0)
    shutdown = await client.wait_for(lambda m: m.event == "Shutdown")
    assert (shutdown.get("Shutdown"), shutdown.get("Restart")) == ("Cleanly", "True")
    await asyncio.wait_for(client.eof.wait(), 2)
    again = await connect()
    await again.login()
    assert again.banner == "Asterisk Call Manager/11.0.0"
    channels = await again.action("CoreShowChannels")
    assert channels.get("EventList") == "start"
    await _originate(again, bench_sim)
    join = await again.wait_for(lambda m: m.event == "QueueCallerJoin", clock=bench_sim.clock)
    assert join.get("Channel") == "Local/12345@from-pstn-00000000;2", "counters start again from zero"


async def test_stall_holds_answers_then_delivers_them_in_order(
    bench_sim: Simulator, connect: Connect
) -> None:
    client = await connect()
    await client.login()
    bench_sim.stall(5.0)
    await client.send(b"Action: Ping\r\nActionID: p1\r\n\r\nAction: Ping\r\nActionID: p2\r\n\r\n")
    await asyncio.sleep(0.05)
    assert not [m for m in client.messages if m.action_id in ("p1", "p2")]
    bench_sim.clock.advance(5.0)
    await client.wait_for(lambda m: m.action_id == "p2")
    order = [m.action_id for m in client.messages if m.action_id in ("p1", "p2")]
    assert order == ["p1", "p2"]


async def test_drop_and_refuse_logins(bench_sim: Simulator, connect: Connect) -> None:
    client = await connect()
    await client.login()
    assert bench_sim.drop_connections() == 1
    await asyncio.wait_for(client.eof.wait(), 2)
    bench_sim.refuse_logins(True)
    refused = await connect()
    await refused.send(b"Action: Login\r\nActionID: r\r\nUsername: gateway\r\nSecret: gateway-secret\r\n\r\n")
    answer = await refused.wait_for(lambda m: m.action_id == "r", clock=bench_sim.clock)
    assert answer.get("Message") == "Authentication failed"
    bench_sim.refuse_logins(False)
    accepted = await connect()
    assert (await accepted.login()).get("Message") == "Authentication accepted"


async def test_astdb_survives_a_restart_members_only_when_persistent(
    bench_sim: Simulator, connect: Connect
) -> None:
    client = await connect()
    await client.login()
    await client.action("DBPut", Family="hotline", Key="seat/1001", Val="on-duty")
    added = await client.action("QueueAdd", Queue="hotline-general", Interface="Local/1003@agents/n")
    assert added.get("Message") == "Added interface to queue"
    await bench_sim.shutdown(restart=True, downtime=0.0)
    again = await connect()
    await again.login()
    bench_sim.clock.advance(1.0)
    got = await again.action("DBGet", Family="hotline", Key="seat/1001")
    assert got.get("EventList") == "start"
    assert (await again.wait_for(lambda m: m.event == "DBGetResponse")).get("Val") == "on-duty"
    status = await again.action("QueueStatus", Queue="hotline-general", Member="Local/1003@agents/n")
    assert status.get("EventList") == "start"
    await again.wait_for(lambda m: m.event == "QueueStatusComplete")
    assert not again.events("QueueMember"), "the traces' bench has persistentmembers = no"


async def test_reload_keeps_calls_and_logged_in_seats(bench_sim: Simulator, connect: Connect) -> None:
    client = await connect()
    await client.login()
    await client.action("QueueAdd", Queue="expert-market", Interface="Local/1001@agents/n")
    await _originate(client, bench_sim)
    await client.wait_for(lambda m: m.event == "QueueCallerJoin", clock=bench_sim.clock)
    reloaded = await client.action("Reload", Module="app_queue.so")
    assert reloaded.get("Message") == "Module Reloaded"
    dialplan = await client.action("Command", Command="dialplan reload")
    assert [v for k, v in dialplan.headers if k == "Output"] == ["Dialplan reloaded."]
    await client.wait_for(lambda m: m.event == "AgentConnect", clock=bench_sim.clock)
    assert bench_sim.pbx.queues.queues["expert-market"].member("Local/1001@agents/n") is not None
