"""Issue 17 item 3: no config text changes a dialplan application's arguments.

Every text either fails ``check`` at its own line, or renders so that every application call of
extensions.conf and queues.conf parses back (as Asterisk splits them, after substituting the
variables the config sets) into exactly the arguments intended, and asterisklint stays clean.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.dialplan.render import render
from gateway.merge.dialplan_text import UNSAFE, UnsafeText, dialplan_text
from gateway.merge.loader import ConfigError, dotted, parse_config
from tests.conftest import ROOT

TODAY = dt.date(2026, 11, 27)
SHIPPED: dict[str, Any] = yaml.safe_load((ROOT / "hotline_merge.yaml").read_text(encoding="utf-8"))
# The fields a text is drawn for, each as (path in the YAML, variable the dialplan sets from it).
FIELDS: dict[str, tuple[tuple[str | int, ...], str | None]] = {
    "title": (("legacy_lines", 0, "title"), None),
    "department": (("legacy_lines", 1, "department"), "DEPARTMENT"),
    "queue_title": (("queues", 7, "title"), None),
    "seat_prefix": (("seats", 0, "name_prefix"), None),
    "dial": (("emergency_targets", 0, "dial"), None),
}
SENTINELS = {name: f"甲{i}乙" for i, name in enumerate(FIELDS)}
SENTINELS["dial"] = "PJSIP/sentinel@carrier-trunk"


def configure(values: dict[str, str]) -> str:
    data: Any = copy.deepcopy(SHIPPED)
    for name, value in values.items():
        *parents, last = FIELDS[name][0]
        target: Any = data
        for part in parents:
            target = target[part]
        target[last] = value
    return yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False, width=1 << 20)


# ---- Asterisk's reading of a dialplan line -------------------------------------------------------
def strip_comment(line: str) -> str:
    """extensions.conf: ``;`` starts a comment unless escaped as ``\\;``."""
    out, escaped = [], False
    for char in line:
        if char == ";" and not escaped:
            break
        escaped = char == "\\" and not escaped
        out.append(char)
    return "".join(out).rstrip()


def separate_args(data: str) -> list[str]:
    """main/app.c's standard argument split: ``,`` outside ( ), [ ] and quotes; ``\\`` escapes."""
    args, current = [], []
    paren = bracket = 0
    quote = escaped = False
    for char in data:
        if escaped:
            current.append(char)
            escaped = False
            continue
        if char == "\\":
            escaped = True
            continue
        if char == '"':
            quote = not quote
            continue
        if char == "(":
            paren += 1
        elif char == ")" and paren:
            paren -= 1
        elif char == "[":
            bracket += 1
        elif char == "]" and bracket:
            bracket -= 1
        elif char == "," and not (paren or bracket or quote):
            args.append("".join(current))
            current = []
            continue
        current.append(char)
    args.append("".join(current))
    return args


def app_calls(text: str, variables: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """Every line as (application or setting, its arguments after substituting ``variables``)."""
    for raw in text.splitlines():
        line = strip_comment(raw)
        match = re.match(r"\s*(?:exten|same)\s*=>\s*(.*)$", line)
        if match is None:
            if "=" in line:  # queues.conf "member => iface,penalty,name"
                key, _, value = line.partition("=")
                yield key.strip(" >"), separate_args(value.lstrip(" >"))
            continue
        step = match.group(1)
        if not step.startswith("n") and "," in step:  # exten => X,1,App(...)
            step = step.split(",", 1)[1]
        step = step.split(",", 1)[1] if "," in step else step  # priority (n, 1, n(label))
        app, paren, data = step.partition("(")
        assert not paren or data.endswith(")"), raw
        for name, value in variables.items():
            data = data.replace(f"${{{name}}}", value)
        yield app, separate_args(data[:-1]) if paren else []


def rendered_calls(config_text: str, variables: dict[str, str]) -> list[tuple[str, list[str]]]:
    files = render(parse_config(config_text, today=TODAY), today=TODAY)
    return [call for name in ("extensions.conf", "queues.conf") for call in app_calls(files[name], variables)]


def variables(values: dict[str, str]) -> dict[str, str]:
    """The channel variables the dialplan sets from these texts, as Asterisk substitutes them."""
    return {variable: values[name] for name, (_, variable) in FIELDS.items() if variable}


BASELINE = rendered_calls(configure(SENTINELS), variables(SENTINELS))


def expected(values: dict[str, str]) -> list[tuple[str, list[str]]]:
    def swap(text: str) -> str:
        for name, value in values.items():
            text = text.replace(SENTINELS[name], value)
        return text

    return [(app, [swap(arg) for arg in args]) for app, args in BASELINE]


# ---- texts -------------------------------------------------------------------------------------
# Mostly harmless text with one character of any kind in it, so each unsafe one is tried alone.
PUNCTUATION = sorted(UNSAFE) + list("（），；：&=?!:/@.-_*#+ \t\n\x00\x7f")
plain = st.text(st.sampled_from(["市", "场", "局", "a", "B", "1", "-", " "]), max_size=6)
texts = st.builds(lambda a, c, b: a + c + b, plain, st.sampled_from(PUNCTUATION), plain)
dials = st.builds(
    lambda tech, resource, endpoint: f"{tech}/{resource}{endpoint}",
    st.sampled_from(["PJSIP", "IAX2", "Local", "DAHDI", "pjsip"]),
    texts,
    st.sampled_from(["", "@carrier-trunk", "@trunk;x", "@a,b"]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "title": texts,
            "department": texts,
            "queue_title": texts,
            "seat_prefix": texts,
            "dial": dials,
        },
    )
)
def test_every_text_is_refused_at_its_line_or_keeps_the_arguments(values: dict[str, str]) -> None:
    values = {name: value.strip(" \t\n") or "甲" for name, value in values.items()}
    config_text = configure({**SENTINELS, **values})
    try:
        calls = rendered_calls(config_text, variables({**SENTINELS, **values}))
    except ConfigError as exc:
        lines = config_text.splitlines()
        for problem in exc.problems:
            assert problem.field in {dotted(FIELDS[name][0]) for name in values}, problem
            assert problem.line >= 1, problem
            assert lines[problem.line - 1].strip(), problem
        return
    assert calls == expected(values)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dial", "PJSIP/110@carrier-trunk;x"),
        ("dial", "PJSIP/110@carrier-trunk,5"),
        ("dial", "PJSIP/110&PJSIP/999@carrier-trunk"),
        ("department", "市场监督管理局(东区"),
        ("department", "市场,监管"),
        ("title", "投诉${EVIL}"),
    ],
)
def test_the_probes_of_the_issue_fail_check_at_their_line(field: str, value: str) -> None:
    config_text = configure({field: value})
    with pytest.raises(ConfigError) as caught:
        parse_config(config_text, today=TODAY)
    (problem,) = caught.value.problems
    assert value in config_text.splitlines()[problem.line - 1]
    assert problem.field == dotted(FIELDS[field][0])


@pytest.mark.parametrize("char", [*sorted(UNSAFE), "\n", "\r", "\x00", "\x7f", "\u2028"])
def test_the_rule_refuses_every_character_that_splits_or_expands(char: str) -> None:
    with pytest.raises(UnsafeText):
        dialplan_text(f"市场{char}监管")


def test_the_renderer_applies_the_same_rule() -> None:
    config = parse_config(configure({}), today=TODAY)
    forged = config.model_copy(
        update={"legacy_lines": [config.legacy_lines[0].model_copy(update={"department": "x,y"})]}
    )
    with pytest.raises(UnsafeText):
        render(forged, today=TODAY)


def test_asterisklint_is_clean_with_every_kind_of_accepted_text(tmp_path: Path) -> None:
    texts = {
        "title": "标题：a-b_c.d/e@f*g#h+i=j?k!l&m",
        "department": "局（东区）、二科",
        "queue_title": "x y：z",
    }
    (tmp_path / "extensions.conf").write_text(
        render(parse_config(configure(texts), today=TODAY), today=TODAY)["extensions.conf"], encoding="utf-8"
    )
    lint = str(Path(sys.executable).with_name("asterisklint"))
    result = subprocess.run(
        [lint, "dialplan-check", "extensions.conf"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_manager_conf_binds_the_configured_address() -> None:
    manager = render(parse_config(configure({}), today=TODAY), today=TODAY)["manager.conf"]
    assert "bindaddr = 172.28.0.10" in manager.splitlines()
    assert "0.0.0.0\n" not in manager.replace("deny = 0.0.0.0/0.0.0.0", "")
