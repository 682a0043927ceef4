"""Random mutations of the shipped config never crash the checker: a config or a ConfigError."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.merge.loader import ConfigError, parse_config
from tests.conftest import ROOT

LINES = (ROOT / "hotline_merge.yaml").read_text(encoding="utf-8").splitlines()
TOKENS = [*"{}[]:'\"#\t ", "- ", "&a ", "*a", "null", "-1", "1e9", "é", "😀", "\x00", ""]
TOKENS += ["!!python/name:os.system ", "!evil ", "2021-02-30", "[" * 100, "!!binary x"]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "replace", "indent"]))
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif action == "indent":
            lines[index] = draw(st.sampled_from(["", "  ", "    "])) + lines[index].lstrip()
        else:
            line = lines[index]
            at = draw(st.integers(0, len(line)))
            token = draw(st.sampled_from(TOKENS) | st.text(max_size=6))
            cut = at + (draw(st.integers(0, 8)) if action == "replace" else 0)
            lines[index] = line[:at] + token + line[cut:]
    return "\n".join(lines) + "\n"


# 300 parses of the whole config with PyYAML's pure-Python scanner (twice each): about 25 s on an
# idle 2-core machine, over 90 s with stress-ng on both cores, past the suite's 120 s hang guard
# under more load. The work is bounded; only the guard moves.
@pytest.mark.timeout(900)
@settings(max_examples=300)
@given(mutated())
def test_mutations_give_a_config_or_located_problems(text: str) -> None:
    try:
        parse_config(text, "fuzz.yaml", today=dt.date(2026, 11, 27))
    except ConfigError as exc:
        found = exc.problems
    else:
        return
    assert found
    for problem in found:
        assert min(problem.line, problem.column) >= 1
        assert str(problem).startswith(f"fuzz.yaml:{problem.line}:{problem.column}: {problem.field}: ")
