"""Voice prompts from the texts in hotline_merge.yaml: espeak-ng (Mandarin) and sox, 8 kHz mono.

The WAV files are committed under recordings/prompts/ with a manifest of the text each was made
from, so a deployment needs no generator and a test can tell when the YAML's texts and the
committed prompts drift apart. Only prompts whose text changed are made again.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from gateway.dialplan.routing import prompt_name
from gateway.errors import GatewayError
from gateway.merge.check import load_or_report
from gateway.merge.schema import HotlineConfig

MANIFEST = "manifest.json"
VOICE = "cmn"  # espeak-ng's Mandarin
SPEED_WPM = "170"
# Phone numbers are read digit by digit, with 1 as 幺 (yāo) as Chinese operators say it:
# "12345" is 幺二三四五, not 一万二千三百四十五.
_DIGITS = str.maketrans("0123456789", "零幺二三四五六七八九")
_NUMBER = re.compile(r"[0-9]{3,}")


def spoken(text: str) -> str:
    return _NUMBER.sub(lambda m: m[0].translate(_DIGITS), text)


SAMPLE_RATE = 8000  # telephony narrowband, what Asterisk plays without transcoding to G.711


class PromptError(GatewayError):
    code = "prompts.failed"


def prompt_texts(config: HotlineConfig) -> dict[str, str]:
    """Prompt name -> the text it speaks, for every prompt the rendered dialplan plays."""
    texts = {
        prompt_name("greeting"): config.hotline.greeting,
        prompt_name("survey"): config.survey.prompt,
        prompt_name("survey-thanks"): config.survey.thanks,
        prompt_name("callback-offer"): config.callback.offer,
        prompt_name("callback-confirm"): config.callback.confirm,
    }
    if config.hotline.optional_key:
        texts[prompt_name("key", config.hotline.number)] = config.hotline.optional_key.prompt
    for line in config.legacy_lines:
        if line.announcement:
            texts[prompt_name("announce", line.number)] = line.announcement
        if line.optional_key:
            texts[prompt_name("key", line.number)] = line.optional_key.prompt
    return dict(sorted(texts.items()))


def read_manifest(out_dir: Path) -> dict[str, str]:
    path = out_dir / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def generate(config: HotlineConfig, out_dir: Path, *, force: bool = False) -> list[str]:
    """Make the prompts whose text is new or changed; drop prompts no longer used. Returns made names."""
    tools = {name: shutil.which(name) for name in ("espeak-ng", "sox")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        raise PromptError(f"install {' and '.join(missing)} (Debian packages espeak-ng, sox) to make prompts")
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = prompt_texts(config)
    manifest = read_manifest(out_dir)
    made = []
    for name, text in wanted.items():
        if not force and manifest.get(name) == text and (out_dir / f"{name}.wav").exists():
            continue
        _speak(text, out_dir / f"{name}.wav", str(tools["espeak-ng"]), str(tools["sox"]))
        made.append(name)
    for stale in set(manifest) - set(wanted):
        (out_dir / f"{stale}.wav").unlink(missing_ok=True)
    (out_dir / MANIFEST).write_text(json.dumps(wanted, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return made


def _speak(text: str, target: Path, espeak: str, sox: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        steps = [
            [espeak, "-v", VOICE, "-s", SPEED_WPM, "-w", str(raw), spoken(text)],
            # -D: no dither, so the same text always gives the same bytes (diff-friendly in git).
            [sox, "-D", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(target)],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, timeout=60, check=False)
            if result.returncode != 0:
                raise PromptError(f"{Path(step[0]).name} failed for {target.name}: {result.stderr.strip()}")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="hotline_merge.yaml", help="merge config (default: %(default)s)")
    parser.add_argument("--out", default="recordings/prompts", help="output folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="make every prompt again")


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    made = generate(config, Path(args.out), force=args.force)
    print(f"{len(made)} prompt(s) made, {len(prompt_texts(config)) - len(made)} unchanged in {args.out}")
    return 0
