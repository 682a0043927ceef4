"""Voice prompts: committed, up to date with the YAML, 8 kHz mono, and made again by the command."""

from __future__ import annotations

import datetime as dt
import json
import re
import wave
from pathlib import Path

from gateway.dialplan.prompts import generate, prompt_texts, read_manifest, spoken
from gateway.dialplan.render import PROMPTS, render
from gateway.merge.loader import load_config, parse_config
from tests.conftest import ROOT
from tests.support.dialplan_walk import parse

CONFIG = load_config(ROOT / "hotline_merge.yaml", today=dt.date(2026, 11, 27))
COMMITTED = ROOT / "recordings" / "prompts"


def test_committed_prompts_match_the_yaml_texts() -> None:
    # If this fails: run `hotline-gateway prompts` and commit recordings/prompts/.
    assert read_manifest(COMMITTED) == prompt_texts(CONFIG)
    for name in prompt_texts(CONFIG):
        with wave.open(str(COMMITTED / f"{name}.wav")) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert 1.0 < wav.getnframes() / 8000 < 20.0


def test_every_prompt_the_dialplan_plays_exists() -> None:
    files = render(CONFIG)
    text = files["extensions.conf"] + files["queues.conf"]
    referenced = set(re.findall(re.escape(PROMPTS) + r"/(hotline-[a-z0-9-]+)", text))
    plan = parse(files["extensions.conf"])
    for steps in plan["from-pstn"].values():
        for step in steps:
            name, _, value = step.data.partition("=")
            if step.app == "Set" and name in {"HOTLINE_ANNOUNCE", "HOTLINE_KEY_PROMPT"} and value:
                referenced.add(value)
    assert referenced
    assert referenced <= set(prompt_texts(CONFIG))
    assert all((COMMITTED / f"{name}.wav").exists() for name in referenced)


def test_numbers_are_read_digit_by_digit() -> None:
    assert (
        spoken("您拨打的12315热线已并入12345，请按1。") == "您拨打的幺二三幺五热线已并入幺二三四五，请按1。"
    )


def test_generate_makes_only_what_changed_and_drops_stale_prompts(tmp_path: Path) -> None:
    small = parse_config(
        (ROOT / "hotline_merge.yaml").read_text(encoding="utf-8"), today=dt.date(2026, 11, 27)
    ).model_copy(update={"legacy_lines": []})
    made = generate(small, tmp_path)
    assert sorted(made) == sorted(prompt_texts(small))
    assert generate(small, tmp_path) == []
    (tmp_path / "hotline-announce-99999.wav").write_bytes(b"old")
    manifest = read_manifest(tmp_path) | {"hotline-announce-99999": "旧提示"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    changed = small.model_copy(
        update={"hotline": small.hotline.model_copy(update={"greeting": "您好，请讲。"})}
    )
    assert generate(changed, tmp_path) == ["hotline-greeting"]
    assert not (tmp_path / "hotline-announce-99999.wav").exists()
    with wave.open(str(tmp_path / "hotline-greeting.wav")) as wav:
        assert wav.getframerate() == 8000
