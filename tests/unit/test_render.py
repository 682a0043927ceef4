"""The rendered Asterisk configuration: lint-clean, deterministic, and it routes every line right."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import contract
from gateway.contract import TRACKED_EVENTS
from gateway.dialplan.deploy import swap_in
from gateway.dialplan.render import HEADER, PROMPTS, render
from gateway.dialplan.routing import build_routing, handover_extensions
from gateway.merge.loader import load_config, parse_config
from gateway.merge.schema import LegacyLine
from gateway.vocabulary import MergeMode
from tests.conftest import ROOT
from tests.support.dialplan_walk import Walk, Walker, parse

TODAY = dt.date(2026, 11, 27)
CONFIG = load_config(ROOT / "hotline_merge.yaml", today=TODAY)
FILES = render(CONFIG, today=TODAY, tracked_events=TRACKED_EVENTS)
DIALPLAN = parse(FILES["extensions.conf"])
PLAN = build_routing(CONFIG, today=TODAY)


def answered(queue: str, walk: Walk) -> dict[str, str]:
    return {"QUEUESTATUS": "CONTINUE", "MEMBERINTERFACE": "Local/1001@agents/n"}


def test_asterisklint_passes(tmp_path: Path) -> None:
    (tmp_path / "extensions.conf").write_text(FILES["extensions.conf"], encoding="utf-8")
    _lint(tmp_path)


def _lint(folder: Path) -> None:
    lint = str(Path(sys.executable).with_name("asterisklint"))
    result = subprocess.run(
        [lint, "dialplan-check", "extensions.conf"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_render_is_deterministic_and_marked_generated() -> None:
    again = render(
        load_config(ROOT / "hotline_merge.yaml", today=TODAY), today=TODAY, tracked_events=TRACKED_EVENTS
    )
    assert again == FILES
    assert set(FILES) == {"extensions.conf", "queues.conf", "manager.conf", "features.conf"}
    assert all(text.startswith(HEADER) for text in FILES.values())


@pytest.mark.parametrize("line", CONFIG.legacy_lines, ids=lambda line: line.number)
def test_every_legacy_line_reaches_its_queue_with_its_variables(line: LegacyLine) -> None:
    walk = Walker(DIALPLAN, channel={"CALLERID(num)": "13700000000"}).run("from-pstn", line.number)
    general = CONFIG.general_queue.name
    if line.mode is MergeMode.MERGED:
        expected = [(general, "")]
    elif line.mode is MergeMode.SUBCENTER:
        expected = [(line.queue or "", "")]
    else:  # parallel: department seats first, general seats after the department queue's wait
        department = CONFIG.queue(line.queue or "")
        expected = [(department.name, str(department.overflow_after_s)), (general, "")]
    assert walk.queues == expected
    inherited = walk.variables["__inherit__"].split(",")
    for name, value in {
        "LEGACY_LINE": line.number,
        "DEPARTMENT": line.department,
        "MERGE_MODE": line.mode.value,
        "CATEGORY_CODE": line.category,
    }.items():
        assert walk.variables[name] == value
        assert name in inherited  # seats' legs and transfers see the number dialled
    intake = walk.user_events[0]
    assert intake["UserEvent"] == contract.Intake.NAME
    assert (intake["LegacyLine"], intake["MergeMode"], intake["Queue"]) == (
        line.number,
        line.mode.value,
        expected[0][0],
    )
    assert intake["Recording"] == "calls/20261127/1795798895.7.wav"
    plays = [data for app, data in walk.apps if app == "Playback"]
    if line.mode is MergeMode.MERGED and line.announcement:
        assert plays == [f"{PROMPTS}/hotline-announce-{line.number}"]
    else:
        assert plays == [f"{PROMPTS}/hotline-greeting"]
    # No menu: nothing reads a key before the caller is queued.
    assert not {"Read", "Background", "WaitExten"} & set(walk.app_names())
    assert ("MixMonitor", f"/var/lib/hotline/recordings/{intake['Recording']},b") in walk.apps


def test_hotline_number_goes_to_general_seats() -> None:
    walk = Walker(DIALPLAN).run("from-pstn", "12345", on_queue=answered, dtmf="1")
    assert walk.queues == [("hotline-general", "")]
    assert walk.variables["MERGE_MODE"] == "hotline"


def test_one_optional_key_where_the_yaml_asks_for_it(tmp_path: Path) -> None:
    text = (
        (ROOT / "hotline_merge.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "  priority_callers:",
            "  optional_key: {key: '9', prompt: 政策咨询请按9。, queue: policy-specialist}\n  priority_callers:",
        )
    )
    config = parse_config(text, today=TODAY)
    dialplan = parse(render(config, today=TODAY)["extensions.conf"])
    pressed = Walker(dialplan).run("from-pstn", "12345", dtmf="9")
    assert ("Read", f"HOTLINE_PRESSED,{PROMPTS}/hotline-key-12345,1,,1,3") in pressed.apps
    assert pressed.queues[0] == ("policy-specialist", "")
    assert pressed.user_events[0]["Queue"] == "policy-specialist"
    assert Walker(dialplan).run("from-pstn", "12345", dtmf="").queues == [("hotline-general", "")]
    # Other lines stay menu-free.
    assert "Read" not in Walker(dialplan).run("from-pstn", "12369").app_names()
    (tmp_path / "extensions.conf").write_text(
        render(config, today=TODAY)["extensions.conf"], encoding="utf-8"
    )
    _lint(tmp_path)


def test_priority_callers_are_boosted() -> None:
    normal = Walker(DIALPLAN, channel={"CALLERID(num)": "13700000000"}).run("from-pstn", "12345")
    elderly = Walker(DIALPLAN, channel={"CALLERID(num)": "13800000001"}).run("from-pstn", "12345")
    assert int(elderly.variables["QUEUE_PRIO"]) == int(normal.variables["QUEUE_PRIO"]) + 10


def test_cutover_keeps_the_old_route_until_the_day() -> None:
    before = parse(render(CONFIG, today=dt.date(2021, 2, 28))["extensions.conf"])
    # Before the cutover the line keeps its old queue (whose own overflow still applies).
    assert Walker(before).run("from-pstn", "12365").queues == [
        ("expert-market", "30"),
        ("hotline-general", ""),
    ]
    assert Walker(DIALPLAN).run("from-pstn", "12365").queues == [("hotline-general", "")]
    # ... and says so in the call's variables, so the work order does not claim the merge yet.
    assert Walker(before).run("from-pstn", "12365").variables[contract.VAR_MERGE_MODE] == "legacy"
    assert Walker(DIALPLAN).run("from-pstn", "12365").variables[contract.VAR_MERGE_MODE] == "merged"


@pytest.mark.parametrize(
    ("key", "result"),
    [("1", "satisfied"), ("2", "basic"), ("3", "dissatisfied"), ("", "none"), ("7", "none")],
)
def test_survey_after_the_seat_hangs_up_reports_the_key(key: str, result: str) -> None:
    walk = Walker(DIALPLAN).run("from-pstn", "12369", on_queue=answered, dtmf=key)
    survey = walk.user_events[-1]
    assert survey == {"UserEvent": contract.Survey.NAME, "LegacyLine": "12369", "Key": key, "Result": result}
    assert walk.ended == "Hangup"


def test_unanswered_general_queue_does_not_survey() -> None:
    walk = Walker(DIALPLAN).run("from-pstn", "12369")
    assert [e["UserEvent"] for e in walk.user_events] == [contract.Intake.NAME]


def test_callback_key_reports_the_original_join_time() -> None:
    walker = Walker(DIALPLAN)
    walk = walker.run("from-pstn", "12345")
    callback = Walker(DIALPLAN, channel=walk.variables).run("hotline-callback", CONFIG.callback.key)
    assert callback.user_events == [
        {
            "UserEvent": contract.Callback.NAME,
            "LegacyLine": "12345",
            "Queue": "hotline-general",
            "JoinTime": "1795798895",
        }
    ]


def test_handover_targets_are_digits_and_reach_queue_or_linkage() -> None:
    targets = handover_extensions(PLAN)
    assert targets["policy-specialist"].isdigit()
    walk = Walker(DIALPLAN).run("hotline-handover", targets["policy-specialist"])
    assert walk.queues == [("policy-specialist", "")]
    assert walk.user_events[0]["Kind"] == "policy"
    linkage = Walker(DIALPLAN).run("hotline-handover", "110")
    assert ("Dial", "PJSIP/110@carrier-trunk,60,tT") in linkage.apps
    assert linkage.user_events[0] == {
        "UserEvent": contract.Handover.NAME,
        "Target": "110",
        "Kind": "emergency",
        "Recording": "calls/20261127/1795798895.7-handover.wav",
    }


def test_seats_log_in_from_their_phones_without_the_gateway() -> None:
    walk = Walker(DIALPLAN, channel={"CALLERID(num)": "2001"}).run("hotline-seat-login", "*71")
    assert [data for app, data in walk.apps if app == "AddQueueMember"] == [
        "expert-market,Local/2001@agents/n,0,,市场监管专席2001,PJSIP/2001",
        "hotline-general,Local/2001@agents/n,0,,市场监管专席2001,PJSIP/2001",
    ]


def test_queues_conf_carries_every_queue_setting() -> None:
    text = FILES["queues.conf"]
    assert "persistentmembers = yes" in text
    section = text.split("[expert-market]")[1].split("\n[")[0]
    for setting in (
        "strategy = leastrecent",
        "timeout = 15",
        "wrapuptime = 45",
        "servicelevel = 15",
        "context = hotline-callback",
    ):
        assert setting in section
    assert "periodic-announce-frequency = 180" in section


def test_manager_conf_is_least_privilege_and_holds_no_secret() -> None:
    text = FILES["manager.conf"]
    controller = text.split("[hotline-gateway]")[1].split("\n[")[0]
    settings = dict(
        line.split(" = ", 1)
        for line in controller.splitlines()
        if " = " in line and not line.startswith("event")
    )
    assert settings["read"] == "call,agent,user"
    assert not {"system", "command", "config", "all"} & set(settings["write"].split(","))
    assert "deny = 0.0.0.0/0.0.0.0" in controller
    assert "permit = 127.0.0.1/32" in controller
    assert TRACKED_EVENTS
    for name in TRACKED_EVENTS:
        assert f"eventfilter(action(include),name({name})) =" in controller
    assert "secret" not in controller.replace("#include manager_secrets_hotline-gateway.conf", "")
    admin = text.split("[hotline-admin]")[1]
    assert "write = config" in admin


def test_swap_in_writes_only_what_changed(tmp_path: Path) -> None:
    first = swap_in(FILES, tmp_path)
    assert all(change.changed for change in first)
    assert [change.changed for change in swap_in(FILES, tmp_path)] == [False] * 4
    other = render(
        parse_config(
            (ROOT / "hotline_merge.yaml")
            .read_text(encoding="utf-8")
            .replace("wrapup_s: 45", "wrapup_s: 50", 1),
            today=TODAY,
        ),
        today=TODAY,
        tracked_events=TRACKED_EVENTS,
    )
    changes = {c.name: c for c in swap_in(other, tmp_path)}
    assert [name for name, c in changes.items() if c.changed] == ["queues.conf"]
    assert "+wrapuptime = 50" in changes["queues.conf"].diff
    assert (tmp_path / "queues.conf").read_text(encoding="utf-8") == other["queues.conf"]
    assert not list(tmp_path.glob(".*"))  # no staging files left behind


def test_committed_dialplans_are_what_the_shipped_yaml_renders() -> None:
    # If this fails: run `hotline-gateway render` and commit dialplans/.
    shipped = render(load_config(ROOT / "hotline_merge.yaml"), tracked_events=TRACKED_EVENTS)
    for name, text in shipped.items():
        assert (ROOT / "dialplans" / name).read_text(encoding="utf-8") == text, name
