"""The simulator's dialplan: extensions.conf subset, patterns, ${} and $[] as Asterisk expands them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sim.dialplan import (
    DialplanError,
    ExpressionError,
    compile_pattern,
    evaluate_expression,
    if_function,
    parse_extensions_conf,
    split_args,
    substitute,
    uridecode,
)

CONF = """
[general]
static = yes
[globals]
GREETING=hello ; a comment
[from-pstn]
exten => 12345,1,NoOp(main ${EXTEN})
 same => n(intake),Set(X=1)
 same => n,Queue(q,tT,,,120)
exten => _1XXXX,1,Goto(12345,intake)
exten => h,hint,PJSIP/1
"""


def test_parses_contexts_priorities_labels_and_globals() -> None:
    plan = parse_extensions_conf(CONF)
    assert plan.globals == {"GREETING": "hello"}
    ext = plan.find("from-pstn", "12345")
    assert ext is not None
    assert [s.app for s in ext.steps] == ["NoOp", "Set", "Queue"]
    assert ext.priority_of("intake") == 2
    assert plan.step("from-pstn", "12345", 3) is not None
    assert plan.step("from-pstn", "12345", 4) is None
    assert plan.find("from-pstn", "12399") is not None, "pattern _1XXXX"
    assert plan.find("from-pstn", "2345") is None


def test_refuses_what_it_cannot_read() -> None:
    with pytest.raises(DialplanError, match=r"extensions\.conf:2"):
        parse_extensions_conf("[c]\nsame => n,NoOp()")
    with pytest.raises(DialplanError, match="not the next one"):
        parse_extensions_conf("[c]\nexten => 1,1,NoOp()\n same => 3,NoOp()")


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("_X.", ["12", "7107"], ["", "1"]),  # "." is one or more
        ("_NXX", ["234"], ["134", "23"]),
        ("_Z!", ["1", "19"], ["0"]),
        ("_[1-3]X", ["15", "39"], ["45"]),
        ("_conf-.", ["co5f-1"], ["conf-1"]),  # letters N X Z are wildcards: trace 07's gotcha
    ],
)
def test_patterns_follow_asterisk(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = compile_pattern(pattern)
    assert all(regex.fullmatch(m) for m in matches)
    assert not any(regex.fullmatch(m) for m in misses)


def test_substitution_is_innermost_first_with_functions_and_offsets() -> None:
    values = {"KEY": "1", "RESULT_1": "satisfied", "NUM": "13800000001"}
    functions = {"IF": if_function, "URIDECODE": uridecode, "LEN": lambda text: str(len(text))}

    def expand(text: str) -> str:
        return substitute(text, values.get, functions)

    assert expand("${RESULT_${KEY}}") == "satisfied"
    assert expand("${IF(${KEY}?yes:no)}/${IF(${MISSING}?yes:no)}") == "yes/no"
    assert expand("${NUM:0:3}-${NUM:-4}") == "138-0001"
    assert expand("${URIDECODE(a%0D%0Ab)}") == "a\r\nb"
    assert expand('$[${KEY} + 1]:$["${KEY}" = "1"]') == "2:1"


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ('"" != ""', "0"),
        ('"TIMEOUT" = "TIMEOUT" & "x" != ""', "1"),
        ("5 + 2 * 3", "11"),
        ("(5 + 2) * 3", "21"),
        ("7 / 2", "3"),
        ("1 | 0", "1"),
        ("0 & 1", "0"),
        ("!0", "1"),
        ("3 > 2 ? big :: small", "big"),
        ("abc < abd", "1"),
        ("", ""),
    ],
)
def test_expressions(expression: str, value: str) -> None:
    assert evaluate_expression(expression) == value


def test_bad_expression() -> None:
    with pytest.raises(ExpressionError):
        evaluate_expression("1 + )")


@given(st.integers(-10_000, 10_000), st.integers(-10_000, 10_000))
def test_arithmetic_and_comparison_agree_with_python(a: int, b: int) -> None:
    assert evaluate_expression(f"{a} + {b}") == str(a + b)
    assert evaluate_expression(f"{a} < {b}") == str(int(a < b))
    assert evaluate_expression(f"{a} = {b}") == str(int(a == b))


def test_split_args_keeps_parentheses_together() -> None:
    assert split_args("a,b(c,d),,e") == ["a", "b(c,d)", "", "e"]
