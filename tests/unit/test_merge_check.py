"""The merge config checker: every error class names the exact line, column and field."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.merge.check import summary
from gateway.merge.loader import ConfigError, Problem, load_config, parse_config
from tests.conftest import ROOT

SHIPPED = (ROOT / "hotline_merge.yaml").read_text(encoding="utf-8")
TODAY = dt.date(2026, 11, 27)


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle`` (fails loudly if absent)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in config")


def edit(old: str, new: str, text: str = SHIPPED) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "merge.yaml", today=TODAY)
    return caught.value.problems


def only(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def test_shipped_config_is_valid_and_realistic() -> None:
    config = parse_config(SHIPPED, today=TODAY)
    assert config.hotline.number == "12345"
    assert len(config.legacy_lines) >= 25
    assert {line.mode.value for line in config.legacy_lines} == {"merged", "parallel", "subcenter"}
    assert {t.number for t in config.emergency_targets} == {"110", "119", "120", "122"}
    assert config.hotline.optional_key is None  # no DTMF menu by default
    assert all(len(line.category) == 6 for line in config.legacy_lines)


def test_yaml_syntax_error_points_at_the_line() -> None:
    text = edit("  policy_queue: policy-specialist", "  policy_queue: [policy-specialist")
    problem = only(text)
    assert problem.field == "(yaml)"
    assert "YAML syntax error" in problem.message
    assert problem.line >= line_of(text, "policy_queue: [policy")


def test_unknown_key_is_reported_at_the_key() -> None:
    text = edit("    ring_timeout_s: 20\n", "    ring_timout_s: 20\n")
    problem = only(text)
    assert problem.field == "queues[7].ring_timout_s"
    assert (problem.line, problem.column) == (line_of(text, "ring_timout_s"), 5)
    assert problem.message == "unknown key (did you mean ring_timeout_s?)"


def test_missing_required_field_is_reported_at_its_parent() -> None:
    text = edit(
        '{number: "12351", title: 职工维权, department: 总工会, ', '{number: "12351", title: 职工维权, '
    )
    problem = only(text)
    line = next(i for i, line in enumerate(SHIPPED.splitlines()) if '"12351"' in line)
    assert problem.field == f"legacy_lines[{_line_index('12351')}].department"
    assert problem.line == line_of(text, '"12351"') == line + 1
    assert problem.message == "required field is missing"


def _line_index(number: str) -> int:
    return [line.number for line in parse_config(SHIPPED, today=TODAY).legacy_lines].index(number)


def test_wrong_type() -> None:
    text = edit(
        "    wrapup_s: 60\n    shifts:\n      - {name: 早班",
        "    wrapup_s: sixty\n    shifts:\n      - {name: 早班",
    )
    problem = only(text)
    assert problem.field == "queues[6].wrapup_s"
    assert problem.line == line_of(text, "wrapup_s: sixty")
    assert "integer" in problem.message


@pytest.mark.parametrize("bad", ["12", "123456789012", "12a15"])
def test_numbers_must_be_3_to_11_digits(bad: str) -> None:
    text = edit('{number: "12316",', f'{{number: "{bad}",')
    problem = only(text)
    assert problem.field == f"legacy_lines[{_line_index('12316')}].number"
    assert problem.line == line_of(text, f'"{bad}"')
    assert "3 to 11 digits" in problem.message


def test_text_that_would_break_the_dialplan_is_refused() -> None:
    text = edit("title: 政策专家组", "title: 政策专家组, 二组")
    problem = only(text)
    assert (problem.field, problem.line) == ("queues[7].title", line_of(text, "二组"))
    assert "full-width punctuation" in problem.message


def test_duplicate_legacy_number() -> None:
    text = edit('{number: "12317",', '{number: "12316",')
    problem = only(text)
    assert problem.field == f"legacy_lines[{_line_index('12317')}].number"
    assert problem.line == line_of(text, "乡村振兴,")
    first = line_of(text, '"12316"')
    assert (
        problem.message
        == f"12316 is defined twice (first at legacy_lines[{_line_index('12316')}].number, line {first})"
    )


@pytest.mark.parametrize(("number", "reason"), [("12345", "hotline number"), ("110", "emergency linkage")])
def test_legacy_number_cannot_be_hotline_or_emergency(number: str, reason: str) -> None:
    text = edit('{number: "12330",', f'{{number: "{number}",')
    problem = only(text)
    assert problem.field == f"legacy_lines[{_line_index('12330')}].number"
    assert problem.line == line_of(text, "知识产权保护")
    assert reason in problem.message


def test_undefined_queue_reference() -> None:
    text = edit("mode: subcenter, queue: subcenter-tax}", "mode: subcenter, queue: subcentre-tax}")
    problem = only(text)
    assert problem.field == f"legacy_lines[{_line_index('12366')}].queue"
    assert problem.line == line_of(text, "subcentre-tax")
    assert "'subcentre-tax' is not defined" in problem.message


def test_undefined_overflow_and_policy_targets() -> None:
    text = edit("  policy_queue: policy-specialist", "  policy_queue: policy-experts")
    problem = only(text)
    assert (problem.field, problem.line) == ("handover.policy_queue", line_of(text, "policy-experts"))


def test_missing_emergency_target() -> None:
    text = edit('  - {number: "122", name: 交通事故122, dial: PJSIP/122@carrier-trunk}\n', "")
    problem = only(text)
    assert problem.field == "emergency_targets"
    assert "122 is missing" in problem.message


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("  secret_env: HOTLINE_AMI_SECRET", "  secret_env: s3cr3t-Pa55", "ami.secret_env"),
        ("  token_env: HOTLINE_ORDER_TOKEN", "  token_env: eyJhbGciOiJIUzI1NiJ9.x", "order_system.token_env"),
    ],
)
def test_inline_secret_is_refused(old: str, new: str, field: str) -> None:
    text = edit(old, new)
    problem = only(text)
    assert (problem.field, problem.line) == (field, line_of(text, new.strip()))
    assert "NAME of an environment variable" in problem.message
    assert new.split(": ")[1] not in problem.message  # never echo a secret back


def test_secret_key_itself_is_unknown() -> None:
    text = edit("  secret_env: HOTLINE_AMI_SECRET", "  secret: hunter2")
    found = problems(text)
    assert {p.field for p in found} == {"ami.secret", "ami.secret_env"}


def test_parallel_line_without_department_queue() -> None:
    text = edit("mode: parallel, queue: expert-hrss}", "mode: parallel}")
    problem = only(text)
    assert problem.field == f"legacy_lines[{_line_index('12333')}].queue"
    assert problem.line == line_of(text, '"12333"')
    assert "needs queue" in problem.message


def test_merged_line_with_a_queue_and_parallel_line_to_general_queue() -> None:
    text = edit(
        'category: "130100", priority: 5, mode: merged}',
        'category: "130100", priority: 5, mode: merged, queue: expert-market}',
    )
    text = edit("mode: parallel, queue: expert-hrss}", "mode: parallel, queue: hotline-general}", text)
    found = problems(text)
    assert [p.field for p in found] == [
        f"legacy_lines[{_line_index('12333')}].queue",
        f"legacy_lines[{_line_index('12316')}].queue",
    ]
    assert "kind general" in found[0].message
    assert "remove queue" in found[1].message


def test_bad_date_and_bad_time() -> None:
    text = edit('cutover: "2021-03-01"', 'cutover: "2021-13-01"')
    text = edit('{name: 夜班, days: daily, start: "20:00"', '{name: 夜班, days: daily, start: "25:00"', text)
    found = problems(text)
    assert [(p.field, p.line) for p in found] == [
        ("queues[6].shifts[1].start", line_of(text, '"25:00"')),
        (f"legacy_lines[{_line_index('12365')}].cutover", line_of(text, "2021-13-01")),
    ]
    assert "YYYY-MM-DD" in found[1].message


def test_7x24_gap_without_overflow() -> None:
    text = edit('      - {name: 夜班, days: daily, start: "00:00", end: "08:00", seats: 12}\n', "")
    problem = only(text)
    assert problem.field == "queues[0].shifts"
    assert "from 00:00" in problem.message
    assert "7x24" in problem.message


def test_duplicate_key() -> None:
    text = edit("  timeout_s: 5\n", "  timeout_s: 5\n  timeout_s: 9\n")
    problem = only(text)
    assert (problem.field, problem.line) == ("order_system.timeout_s", line_of(text, "timeout_s: 9"))


def test_anchors_and_aliases_are_refused() -> None:
    text = edit("  policy_queue: policy-specialist", "  policy_queue: &p policy-specialist\n  consult: *p")
    problem = problems(text)[0]
    assert (problem.field, problem.line) == ("(yaml)", line_of(text, "&p"))
    assert "anchors and aliases" in problem.message


def test_billion_laughs_is_refused_fast() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(20)
    )
    assert "anchors" in problems(bomb)[0].message


def test_large_and_non_utf8_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    with pytest.raises(ConfigError, match="limit is 1 MiB"):
        load_config(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(
        SHIPPED.encode("utf-8").replace("12345市民服务热线".encode(), "Bürger".encode("latin-1"), 1)
    )
    with pytest.raises(ConfigError) as caught:
        load_config(latin)
    problem = caught.value.problems[0]
    assert problem.line == line_of(SHIPPED, "name: 12345市民服务热线")
    assert "not UTF-8" in problem.message


def test_all_errors_of_a_stage_are_reported_at_once() -> None:
    # Structure (types, keys) is checked first, then meaning (references, duplicates, 7x24).
    text = edit("    ring_timeout_s: 20\n", "    ring_timeout_s: 2000\n")
    text = edit("  timeout_s: 8\n", "  timeout_s: soon\n", text)
    assert [p.field for p in problems(text)] == ["queues[7].ring_timeout_s", "survey.timeout_s"]
    text = edit("  policy_queue: policy-specialist", "  policy_queue: nowhere")
    text = edit('{number: "12317",', '{number: "12316",', text)
    text = edit("overflow_after_s: 20\n", "overflow_after_s: 20\n    department: 卫健委\n", text)
    assert len(problems(text)) == 3


def test_summary_fits_one_screen() -> None:
    text = summary(parse_config(SHIPPED, today=TODAY), "hotline_merge.yaml")
    assert "27 lines: 20 merged, 6 parallel, 1 subcenter" in text
    assert len(text.splitlines()) <= 24


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_exit_codes_and_format(tmp_path: Path) -> None:
    ok = _cli()
    assert ok.returncode == 0, ok.stderr
    assert "hotline_merge.yaml: OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit("mode: parallel, queue: expert-hrss}", "mode: parallel}"), encoding="utf-8")
    result = _cli(str(bad))
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    line = line_of(bad.read_text(encoding="utf-8"), '"12333"')
    assert first == (
        f"{bad}:{line}:5: "
        f"legacy_lines[{_line_index('12333')}].queue: mode parallel needs queue: the department's seats inside 12345"
    )
    missing = _cli(str(tmp_path / "absent.yaml"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr
