"""The dialplan the simulated PBX executes: contexts, extensions, priorities, ``${}`` expressions.

Two sources produce the same structure: ``parse_extensions_conf`` reads the subset of
extensions.conf the traces' test bench and the rendered dialplans use (``exten =>``, ``same =>``,
``n`` priorities, labels, ``_X.`` patterns, ``[globals]``), and ``gateway.sim.plan`` builds one
from a ``RoutingPlan``. Applications are looked up by name at run time (``gateway.sim.apps``).

Pattern letters follow Asterisk: ``X`` ``Z`` ``N`` are digit classes (case-insensitive, so
``_conf-.`` does not match "conf-..."), ``[..]`` a set, ``.`` one or more, ``!`` zero or more.
"""

from __future__ import annotations

import operator
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError


class DialplanError(GatewayError):
    code = "sim.dialplan"


@dataclass(frozen=True)
class Step:
    app: str
    data: str = ""
    label: str | None = None


@dataclass
class Extension:
    name: str
    steps: list[Step] = field(default_factory=list)

    def priority_of(self, label: str) -> int | None:
        for index, step in enumerate(self.steps):
            if step.label == label:
                return index + 1
        return None


@dataclass
class Context:
    name: str
    exact: dict[str, Extension] = field(default_factory=dict)
    patterns: list[tuple[re.Pattern[str], Extension]] = field(default_factory=list)

    def extension(self, name: str, *, create: bool = False) -> Extension | None:
        if name.startswith("_"):
            for _, ext in self.patterns:
                if ext.name == name:
                    return ext
            if not create:
                return None
            ext = Extension(name)
            self.patterns.append((compile_pattern(name), ext))
            return ext
        found = self.exact.get(name)
        if found is None and create:
            found = self.exact[name] = Extension(name)
        return found

    def match(self, exten: str) -> Extension | None:
        found = self.exact.get(exten)
        if found is not None:
            return found
        for regex, ext in self.patterns:
            if regex.fullmatch(exten):
                return ext
        return None


class Dialplan:
    def __init__(self) -> None:
        self.contexts: dict[str, Context] = {}
        self.globals: dict[str, str] = {}

    def context(self, name: str) -> Context:
        ctx = self.contexts.get(name)
        if ctx is None:
            ctx = self.contexts[name] = Context(name)
        return ctx

    def find(self, context: str, exten: str) -> Extension | None:
        ctx = self.contexts.get(context)
        return ctx.match(exten) if ctx else None

    def step(self, context: str, exten: str, priority: int) -> Step | None:
        ext = self.find(context, exten)
        if ext is None or not 1 <= priority <= len(ext.steps):
            return None
        return ext.steps[priority - 1]


_CLASSES = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]"}


def compile_pattern(pattern: str) -> re.Pattern[str]:
    out = []
    body = pattern[1:]
    i = 0
    while i < len(body):
        char = body[i]
        upper = char.upper()
        if upper in _CLASSES:
            out.append(_CLASSES[upper])
        elif char == "[":
            end = body.index("]", i)
            out.append("[" + re.sub(r"([\\\]^])", r"\\\1", body[i + 1 : end]) + "]")
            i = end
        elif char == ".":
            out.append(".+")
        elif char == "!":
            out.append(".*")
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


# -- extensions.conf --------------------------------------------------------------------------
_LINE = re.compile(r"^(exten|same)\s*=>?\s*(.*)$", re.IGNORECASE)


def split_app(text: str) -> Step:
    """``Queue(hotline-general,tT,,,120)`` -> Step("Queue", "hotline-general,tT,,,120")."""
    text = text.strip()
    paren = text.find("(")
    if paren < 0:
        return Step(text)
    if not text.endswith(")"):
        raise DialplanError(f"application call without closing parenthesis: {text!r}")
    return Step(text[:paren].strip(), text[paren + 1 : -1])


def parse_extensions_conf(text: str, *, source: str = "extensions.conf") -> Dialplan:
    """The subset of extensions.conf the traces' bench and the rendered dialplans use."""
    plan = Dialplan()
    context: str | None = None
    current: Extension | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            context, current = line[1:-1].strip(), None
            continue
        if context in (None, "general"):
            continue
        if context == "globals":
            name, _, value = line.partition("=")
            plan.globals[name.strip()] = value.strip()
            continue
        matched = _LINE.match(line)
        if not matched:
            if line.lower().startswith(("include", "switch", "ignorepat")):
                continue
            raise DialplanError(f"{source}:{number}: cannot read {raw.strip()!r}")
        kind, rest = matched.group(1).lower(), matched.group(2)
        if kind == "exten":
            exten, _, rest = rest.partition(",")
            current = plan.context(context).extension(exten.strip(), create=True)
        elif current is None:
            raise DialplanError(f"{source}:{number}: 'same =>' before any 'exten =>'")
        priority, _, app_text = rest.partition(",")
        priority = priority.strip()
        if priority == "hint":
            continue
        label = None
        label_match = re.fullmatch(r"(\w+)\((\w+)\)", priority)
        if label_match:
            priority, label = label_match.group(1), label_match.group(2)
        assert current is not None
        if priority != "n" and int(priority) != len(current.steps) + 1:
            raise DialplanError(f"{source}:{number}: priority {priority} is not the next one")
        step = split_app(app_text)
        current.steps.append(Step(step.app, step.data, label))
    return plan


def _strip_comment(line: str) -> str:
    out = []
    escaped = False
    for char in line:
        if char == ";" and not escaped:
            break
        escaped = char == "\\" and not escaped
        out.append(char)
    return "".join(out)


# -- ${...} substitution ----------------------------------------------------------------------
Lookup = Callable[[str], str | None]
Function = Callable[[str], str]


def substitute(text: str, lookup: Lookup, functions: Mapping[str, Function]) -> str:
    """Expand ``${VAR}``, ``${FUNC(args)}`` and ``$[expr]``, innermost first, as Asterisk does."""
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        start = _next_dollar(text, i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        opener, closer = text[start + 1], "}" if text[start + 1] == "{" else "]"
        depth, j = 1, start + 2
        while j < len(text) and depth:
            if text[j] == "$" and j + 1 < len(text) and text[j + 1] == opener:
                depth, j = depth + 1, j + 2
                continue
            if text[j] == closer:
                depth -= 1
            j += 1
        inner = substitute(text[start + 2 : j - 1], lookup, functions)
        out.append(_evaluate(inner, lookup, functions) if opener == "{" else evaluate_expression(inner))
        i = j
    return "".join(out)


def _next_dollar(text: str, start: int) -> int:
    brace, bracket = text.find("${", start), text.find("$[", start)
    if brace < 0:
        return bracket
    return brace if bracket < 0 else min(brace, bracket)


def _evaluate(expr: str, lookup: Lookup, functions: Mapping[str, Function]) -> str:
    paren = expr.find("(")
    if paren > 0 and expr.endswith(")"):
        function = functions.get(expr[:paren].upper())
        return function(expr[paren + 1 : -1]) if function else ""
    offset = None
    if ":" in expr:  # ${VAR:offset[:length]}
        expr, _, offset = expr.partition(":")
    value = lookup(expr) or ""
    if offset is not None:
        start, _, length = offset.partition(":")
        value = value[int(start or 0) :]
        if length:
            value = value[: int(length)]
    return value


def uridecode(value: str) -> str:
    return urllib.parse.unquote(value)


def if_function(args: str) -> str:
    """``IF(cond?true:false)``: cond is true when non-empty and not "0"."""
    cond, _, branches = args.partition("?")
    when_true, _, when_false = branches.partition(":")
    return when_true if cond.strip() not in ("", "0") else when_false


def split_args(data: str) -> list[str]:
    """Application arguments: commas split, parentheses and quotes group (no escapes needed here)."""
    args: list[str] = []
    current: list[str] = []
    depth = 0
    for char in data:
        if char == "," and depth == 0:
            args.append("".join(current))
            current = []
            continue
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        current.append(char)
    args.append("".join(current))
    return args


# -- $[...] expressions (the subset of Asterisk's expr2 the rendered dialplan uses) ----------------
_TOKEN = re.compile(
    r'\s*(?:("(?:[^"\\]|\\.)*")|(!=|<=|>=|=~|::|[|&=<>+\-*/%!:?()])|([^\s|&=<>+\-*/%!:?()"]+))'
)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
}  # fmt: skip
_OPERATORS = {"!=", "<=", ">=", "=~", "::", "|", "&", "=", "<", ">", "+", "*", "/", "%", ":", "?", ")"}


class ExpressionError(DialplanError):
    code = "sim.dialplan.expression"


def evaluate_expression(text: str) -> str:
    """``"${X}" != ""``, ``${PRIO} + 1``, ``a = b & c != d``: comparisons give 1 or 0."""
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if not text[position:].strip():
                break
            raise ExpressionError(f"cannot read expression {text!r}")
        position = match.end()
        tokens.append(match.group(0).strip())
    if not tokens:
        return ""
    parser = _ExprParser(tokens)
    value = parser.ternary()
    if parser.index != len(tokens):
        raise ExpressionError(f"unexpected {tokens[parser.index]!r} in expression {text!r}")
    return _text(value)


Value = str | int


def _number(value: Value) -> int | None:
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except ValueError:
        return None


def _text(value: Value) -> str:
    return str(value)


def _truthy(value: Value) -> bool:
    number = _number(value)
    return number != 0 if number is not None else value != ""


class _ExprParser:
    """Precedence, low to high: ?:: | & comparisons + - * / % unary ! - ."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.index = 0

    def _peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> str:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def ternary(self) -> Value:
        condition = self.disjunction()
        if self._peek() == "?":
            self._take()
            when_true = self.ternary()
            if self._take() != "::":
                raise ExpressionError("expected :: in a conditional expression")
            when_false = self.ternary()
            return when_true if _truthy(condition) else when_false
        return condition

    def disjunction(self) -> Value:
        left = self.conjunction()
        while self._peek() == "|":
            self._take()
            right = self.conjunction()
            left = left if _truthy(left) else right
        return left

    def conjunction(self) -> Value:
        left = self.comparison()
        while self._peek() == "&":
            self._take()
            right = self.comparison()
            left = left if _truthy(left) and _truthy(right) else 0
        return left

    def comparison(self) -> Value:
        left = self.additive()
        while self._peek() in ("=", "!=", "<", ">", "<=", ">="):
            comparison = self._take()
            right = self.additive()
            a, b = _number(left), _number(right)
            if a is not None and b is not None:
                left = int(_COMPARE[comparison](a, b))
            else:  # not both numbers: compared as text
                left = int(_COMPARE[comparison](_text(left), _text(right)))
        return left

    def additive(self) -> Value:
        left = self.multiplicative()
        while self._peek() in ("+", "-"):
            operator = self._take()
            right = self.multiplicative()
            left = (_number(left) or 0) + (_number(right) or 0) * (1 if operator == "+" else -1)
        return left

    def multiplicative(self) -> Value:
        left = self.unary()
        while self._peek() in ("*", "/", "%"):
            operator = self._take()
            a, b = _number(left) or 0, _number(self.unary()) or 0
            left = (
                a * b
                if operator == "*"
                else (int(a / b) if b else 0)
                if operator == "/"
                else (a % b if b else 0)
            )
        return left

    def unary(self) -> Value:
        token = self._peek()
        if token == "!":
            self._take()
            return int(not _truthy(self.unary()))
        if token == "-":
            self._take()
            return -(_number(self.unary()) or 0)
        return self.primary()

    def primary(self) -> Value:
        if self._peek() is None:
            raise ExpressionError("expression ends where a value was expected")
        token = self._take()
        if token in _OPERATORS:
            raise ExpressionError(f"unexpected {token!r} where a value was expected")
        if token == "(":
            value = self.ternary()
            if self._peek() == ")":
                self._take()
            return value
        if token.startswith('"') and token.endswith('"') and len(token) >= 2:
            return token[1:-1]
        return token
