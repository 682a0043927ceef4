"""Issue 17 item 6: hostile merge configs end as ``PATH:LINE:COLUMN: message`` (or ``PATH: message``)
and exit 2, never a traceback or a hang; ``check | head -1`` ends quietly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from tests.conftest import ROOT

SHIPPED = (ROOT / "hotline_merge.yaml").read_text(encoding="utf-8")


def check(path: Path | str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Run ``hotline-gateway check PATH`` in process; assert exit 2 and no traceback; the error lines."""
    assert main(["check", str(path)]) == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    lines = out.err.splitlines()
    assert lines[-1].endswith("nothing was applied")
    return lines[:-1]


def at_line(path: Path, lines: list[str], needle: str) -> str:
    """The one problem reported at the line holding ``needle``, as ``LINE:COLUMN: rest``."""
    number = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)
    found = [line for line in lines if line.startswith(f"{path}:{number}:")]
    assert len(found) == 1, lines
    return found[0].removeprefix(f"{path}:")


def write(tmp_path: Path, old: str, new: str) -> Path:
    assert SHIPPED.count(old) == 1
    path = tmp_path / "merge.yaml"
    path.write_text(SHIPPED.replace(old, new), encoding="utf-8")
    return path


def test_impossible_unquoted_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, 'cutover: "2021-03-01"', "cutover: 2021-02-30")
    lines = check(path, capsys)
    assert len(lines) == 1
    assert re.fullmatch(
        r"\d+:\d+: legacy_lines\[\d+\]\.cutover: '2021-02-30' is not a date; write YYYY-MM-DD",
        at_line(path, lines, "2021-02-30"),
    )


@pytest.mark.parametrize("tag", ["!!python/name:os.system", "!!python/object/apply:os.system", "!evil"])
def test_yaml_tags(tag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "  max_per_call: 1", f"  max_per_call: {tag} 1")
    lines = check(path, capsys)
    assert len(lines) == 1, lines
    assert "handover.max_per_call: YAML tag" in at_line(path, lines, tag)
    assert "is not allowed (plain YAML only)" in lines[0]


def test_five_thousand_levels_of_nesting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "  max_per_call: 1", "  max_per_call: " + "[" * 5000 + "]" * 5000)
    lines = check(path, capsys)
    assert len(lines) == 1
    assert "(yaml): nested deeper than 32 levels" in at_line(path, lines, "[[[")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("directory", "is a directory; give the path of the YAML file"),
        ("fifo", "is a FIFO; give the path of the YAML file"),
        ("/dev/zero", "is a character device; give the path of the YAML file"),
        ("missing", "cannot read: No such file or directory"),
    ],
)
def test_paths_that_are_not_a_yaml_file(
    kind: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / kind
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # no writer: a blocking open would hang for ever
    elif kind.startswith("/"):
        path = Path(kind)
    assert check(path, capsys) == [f"{path}: {message}"]


def test_at_most_one_mebibyte_and_a_byte_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A FIFO whose writer never stops: the loader reads 1 MiB + 1 byte and refuses it.
    path = tmp_path / "endless"
    os.mkfifo(path)
    writer = subprocess.Popen(["sh", "-c", f"exec yes > {path}"], stderr=subprocess.DEVNULL)
    try:
        assert check(path, capsys) == [f"{path}: is a FIFO; give the path of the YAML file"]
    finally:
        writer.kill()
        writer.wait()
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * ((1 << 20) + 1))
    assert check(big, capsys) == [f"{big}: file is over 1 MiB; the limit is 1 MiB (is it the merge config?)"]


def test_typo_suggests_the_nearest_key_and_duplicates_name_the_first_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "    ring_timeout_s: 20\n", "    ring_timeout_s: 20\n    wrap_up_s: 20\n")
    lines = check(path, capsys)
    assert at_line(path, lines, "wrap_up_s").endswith(".wrap_up_s: unknown key (did you mean wrapup_s?)")
    path = write(tmp_path, "  timeout_s: 5\n", "  timeout_s: 5\n  timeout_s: 9\n")
    first = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "timeout_s: 5" in text)
    lines = check(path, capsys)
    assert lines[0].endswith(f"duplicate key (first at line {first}; the earlier one would be lost)")


def test_help_lists_one_line_per_subcommand() -> None:
    from gateway.cli import COMMANDS

    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--help"], capture_output=True, text=True, check=True
    )
    for name, (_, help_text) in COMMANDS.items():
        assert re.search(rf"^ +{re.escape(name)} +{re.escape(help_text)}$", result.stdout, re.M), name


def test_check_into_a_closed_pipe_prints_no_traceback() -> None:
    result = subprocess.run(
        f"{sys.executable} -m gateway.cli check {ROOT / 'hotline_merge.yaml'} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert result.stdout.endswith("hotline_merge.yaml: OK\n")
    assert result.stderr == ""
