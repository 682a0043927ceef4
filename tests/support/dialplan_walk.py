"""Parse extensions.conf as Asterisk reads it and walk a call through it, for tests.

Parsing: contexts, ``exten =>`` / ``same =>`` lines, ``n`` and labelled priorities, comments.
Walking: a symbolic call that follows Set, Goto, GotoIf, ExecIf, Return and records what a real
channel would do at each application (Queue, Playback, Read, UserEvent, MixMonitor, Dial, ...).
Expressions are evaluated for the forms the renderer writes; anything else fails loudly, so a
renderer change that this walker does not understand shows up as a test error, not a pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:\(([^()]*)\))?\}")


@dataclass
class Step:
    priority: int
    label: str | None
    app: str
    data: str


Dialplan = dict[str, dict[str, list[Step]]]


def parse(text: str) -> Dialplan:
    plan: Dialplan = {}
    context: str | None = None
    current: list[Step] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip() if not raw.lstrip().startswith("same") else _strip_comment(raw)
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            context = line[1:-1]
            plan.setdefault(context, {})
            continue
        kind, _, rest = line.partition("=>")
        kind = kind.strip()
        if kind not in {"exten", "same"} or context is None:
            continue
        rest = rest.strip()
        if kind == "exten":
            exten, prio, app = rest.split(",", 2)
            current = plan[context].setdefault(exten, [])
        else:
            prio, app = rest.split(",", 1)
        assert current is not None, f"'same =>' before any 'exten =>' in [{context}]"
        label_match = re.fullmatch(r"(\w+)(?:\((\w+)\))?", prio.strip())
        assert label_match, f"bad priority {prio!r}"
        number = int(label_match[1]) if label_match[1].isdigit() else len(current) + 1
        name, _, data = app.partition("(")
        current.append(Step(number, label_match[2], name, data.removesuffix(")")))
    return plan


def _strip_comment(raw: str) -> str:
    # Semicolons inside application data are escaped in real dialplans; ours has none.
    return raw.split(";", 1)[0].strip()


@dataclass
class Walk:
    """What a channel did: variables, applications run, UserEvents sent, queues entered."""

    variables: dict[str, str] = field(default_factory=dict)
    apps: list[tuple[str, str]] = field(default_factory=list)
    user_events: list[dict[str, str]] = field(default_factory=list)
    queues: list[tuple[str, str]] = field(default_factory=list)  # (queue, timeout)
    ended: str = ""

    def app_names(self) -> list[str]:
        return [name for name, _ in self.apps]


QueueOutcome = Callable[[str, Walk], dict[str, str]]


class Walker:
    def __init__(self, plan: Dialplan, *, channel: dict[str, str] | None = None) -> None:
        self.plan = plan
        self.channel = {"EPOCH": "1795798895", "UNIQUEID": "1795798895.7", **(channel or {})}

    def run(
        self,
        context: str,
        exten: str,
        *,
        on_queue: QueueOutcome = lambda queue, walk: {"QUEUESTATUS": "TIMEOUT"},
        dtmf: str = "",
        max_steps: int = 500,
    ) -> Walk:
        walk = Walk()
        walk.variables.update(self.channel)
        position = (context, exten, 0)
        for _ in range(max_steps):
            ctx, ext, index = position
            steps = self._steps(ctx, ext)
            if index >= len(steps):
                walk.ended = "fell off the end"
                return walk
            step = steps[index]
            data = self.substitute(step.data, walk)
            walk.apps.append((step.app, data))
            jump = self._apply(step.app, data, walk, ctx, ext, on_queue, dtmf)
            if jump == "hangup":
                walk.ended = "Hangup"
                return walk
            position = jump if isinstance(jump, tuple) else (ctx, ext, index + 1)
        raise AssertionError(f"dialplan loop: more than {max_steps} steps from {context},{exten}")

    def _steps(self, context: str, exten: str) -> list[Step]:
        assert context in self.plan, f"no context [{context}]"
        if exten not in self.plan[context]:
            exten = "i"
        assert exten in self.plan[context], f"no extension {exten} in [{context}]"
        return self.plan[context][exten]

    def _goto(self, target: str, context: str, exten: str) -> tuple[str, str, int]:
        parts = [p.strip() for p in target.split(",")]
        if len(parts) == 1:
            parts = [context, exten, parts[0]]
        elif len(parts) == 2:
            parts = [context, *parts]
        ctx, ext, prio = parts
        steps = self._steps(ctx, ext)
        if ext not in self.plan[ctx]:
            ext = "i"
        if prio.isdigit():
            return (ctx, ext, next(i for i, s in enumerate(steps) if s.priority == int(prio)))
        return (ctx, ext, next(i for i, s in enumerate(steps) if s.label == prio))

    def _apply(
        self, app: str, data: str, walk: Walk, ctx: str, ext: str, on_queue: QueueOutcome, dtmf: str
    ) -> tuple[str, str, int] | str | None:
        if app == "Set":
            name, _, value = data.partition("=")
            walk.variables[name.lstrip("_")] = value
            walk.variables.setdefault("__inherit__", "")
            if name.startswith("__"):
                walk.variables["__inherit__"] += f"{name[2:]},"
        elif app == "Goto":
            return self._goto(data, ctx, ext)
        elif app == "GotoIf":
            condition, _, targets = data.partition("?")
            then, _, otherwise = targets.partition(":")
            chosen = then if self.evaluate(condition) else otherwise
            return self._goto(chosen, ctx, ext) if chosen else None
        elif app == "ExecIf":
            condition, _, call = data.partition("?")
            if self.evaluate(condition):
                name, _, inner = call.partition("(")
                walk.apps.append((name, inner.removesuffix(")")))
                return self._apply(name, inner.removesuffix(")"), walk, ctx, ext, on_queue, dtmf)
        elif app == "Queue":
            queue, *options = data.split(",")
            timeout = options[3] if len(options) > 3 else ""
            walk.queues.append((queue, timeout))
            walk.variables.update(on_queue(queue, walk))
        elif app == "Read":
            name = data.split(",")[0]
            walk.variables[name] = dtmf
        elif app == "UserEvent":
            name, *pairs = data.split(",")
            walk.user_events.append({"UserEvent": name, **dict(p.split(": ", 1) for p in pairs)})
        elif app == "Hangup":
            return "hangup"
        return None

    def substitute(self, text: str, walk: Walk | None = None) -> str:
        variables = walk.variables if walk else self.channel
        previous = None
        while previous != text:
            previous = text
            text = _VAR.sub(lambda m: self._value(m, variables), text)
            text = re.sub(r"\$\[([^\[\]$]*)\]", lambda m: str(self._arith(m[1])), text)
        return text

    def _value(self, match: re.Match[str], variables: dict[str, str]) -> str:
        name, argument = match[1], match[2]
        if argument is None:
            return variables.get(name, "")
        if name == "DIALPLAN_EXISTS":
            ctx, ext, _ = argument.split(",")
            return "1" if ext in self.plan.get(ctx, {}) else "0"
        if name == "CALLERID":
            return variables.get("CALLERID(num)", "")
        if name == "STRFTIME":
            return "20261127"
        raise AssertionError(f"walker does not know the function {name}()")

    def evaluate(self, condition: str) -> bool:
        return self._arith(condition.strip().removeprefix("$[").removesuffix("]")) not in {0, ""}

    def _arith(self, expr: str) -> int | str:
        expr = expr.strip()
        if " & " in expr:
            return int(all(self._arith(part) not in {0, ""} for part in expr.split(" & ")))
        compare = re.fullmatch(r'"(.*)" (!=|=) "(.*)"', expr)
        if compare:
            return int((compare[1] == compare[3]) == (compare[2] == "="))
        total = re.fullmatch(r"(\d+) ([+-]) (\d+)", expr)
        if total:
            return int(total[1]) + int(total[3]) * (1 if total[2] == "+" else -1)
        if re.fullmatch(r"-?\d+", expr):
            return int(expr)
        raise AssertionError(f"walker cannot evaluate $[{expr}]")
