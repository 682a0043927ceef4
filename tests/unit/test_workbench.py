"""The workbench's pure parts: the category tree and its checks, caller masking, pause reasons,
"ready now" as Asterisk can do it, and the config's workbench section."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ami.protocol import Message
from gateway.ami.result import ActionResult
from gateway.ami.safety import Action
from gateway.dialplan.routing import build_routing
from gateway.masking import CallerMask, mask_number
from gateway.merge.loader import ConfigError, load_config, parse_config
from gateway.queues.control import InvalidReasonError, SeatControl
from gateway.workbench.categories import BUNDLED_TREE, load_tree, unknown_line_categories
from tests.conftest import ROOT

CONFIG = load_config(ROOT / "hotline_merge.yaml")


def test_the_bundled_tree_has_three_levels_and_every_line_default() -> None:
    tree = load_tree(BUNDLED_TREE)
    paths = tree.paths()
    assert paths["020301"] == "市场监管 / 食品药品安全 / 食品安全"
    assert {code[2:] for code in paths if code.endswith("0000")} == {"0000"}
    assert len(tree.classes) >= 13
    assert unknown_line_categories(CONFIG, tree) == []


def test_a_misplaced_or_repeated_code_is_refused_at_its_line(tmp_path: Path) -> None:
    tree = tmp_path / "tree.yaml"
    tree.write_text(
        """version: 1
classes:
  - code: "020000"
    name: 市场监管
    subclasses:
      - code: "030100"
        name: 放错大类
        items:
          - {code: "030101", name: 甲}
      - code: "020100"
        name: 消费投诉
        items:
          - {code: "020100", name: 与中类同码}
          - {code: "020101", name: 乙}
          - {code: "020101", name: 重复}
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as failed:
        load_tree(tree)
    found = [(p.line, p.field) for p in failed.value.problems]
    assert found == [
        (6, "classes[0].subclasses[0].code"),
        (13, "classes[0].subclasses[1].items[0].code"),  # ends in 00, and the subclass's own code
        (13, "classes[0].subclasses[1].items[0].code"),
        (15, "classes[0].subclasses[1].items[2].code"),
    ]
    assert "used twice" in failed.value.problems[-1].message


def test_masking_as_configured() -> None:
    assert mask_number("13912345678", CallerMask.MIDDLE) == "139****5678"
    assert mask_number("13912345678", CallerMask.ALL_BUT_LAST4) == "*******5678"
    assert mask_number("13912345678", CallerMask.NONE) == "13912345678"
    assert mask_number("110", CallerMask.MIDDLE) == "110"  # too short to hide anything
    assert mask_number(None, CallerMask.MIDDLE) is None


def test_pause_reasons_are_the_configs_and_refused_otherwise() -> None:
    text = (ROOT / "hotline_merge.yaml").read_text(encoding="utf-8")
    repeated = text.replace("pause_reasons: [小休, 培训,", "pause_reasons: [小休, 小休,")
    with pytest.raises(ConfigError) as failed:
        parse_config(repeated)
    (problem,) = failed.value.problems
    assert (problem.field, "repeated: 小休" in problem.message) == ("workbench.pause_reasons", True)
    assert text.splitlines()[problem.line - 1].lstrip().startswith("pause_reasons")


async def test_seat_control_pauses_with_listed_reasons_and_ready_re_adds_the_member() -> None:
    sent: list[Action] = []

    async def send(action: Action) -> ActionResult:
        sent.append(action)
        return ActionResult(action.name, "gw-1", Message([("Response", "Success")]))

    plan = build_routing(CONFIG)
    control = SeatControl(send, lambda: plan)
    await control.act("1001", "pause", reason="培训")
    assert (sent[-1].name, sent[-1].get("Reason")) == ("QueuePause", "培训")
    with pytest.raises(InvalidReasonError):
        await control.act("1001", "pause", reason="打游戏")
    sent.clear()
    await control.act("2001", "ready", queues=["expert-market", "hotline-general"])
    assert [(a.name, a.get("Queue")) for a in sent] == [
        ("QueueRemove", "expert-market"),
        ("QueueRemove", "hotline-general"),
        ("QueueAdd", "expert-market"),
        ("QueueAdd", "hotline-general"),
    ]
