"""Read hotline_merge.yaml into a validated ``HotlineConfig``, or fail with every problem at once.

Owns the file-level rules (size, encoding, YAML syntax, no anchors/aliases, no duplicate keys)
and the mapping from a field path back to its line and column. What a valid config *means* lives
in ``schema.py``; this module only makes sure each complaint names the exact place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import GatewayError
from gateway.merge.schema import PATTERN_HINTS, HotlineConfig, semantic_problems

MAX_CONFIG_BYTES = 1 << 20

FieldPath = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.field}: {self.message}"


class ConfigError(GatewayError):
    """The config cannot be used; ``problems`` holds every error, each at its place."""

    code = "config.invalid"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Positions:
    """Where each field path starts in the file (1-based line and column)."""

    def __init__(self) -> None:
        self.values: dict[FieldPath, tuple[int, int]] = {}
        self.keys: dict[FieldPath, tuple[int, int]] = {}

    def locate(self, loc: FieldPath) -> tuple[int, int]:
        # A missing field is reported at its parent; an unknown key at the key itself.
        for end in range(len(loc), -1, -1):
            prefix = loc[:end]
            if prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return (1, 1)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns composed YAML nodes into plain data, recording positions and structural problems."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.positions = _Positions()
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")

    def problem(self, where: tuple[int, int], loc: FieldPath, message: str) -> None:
        self.problems.append(Problem(self.source, where[0], where[1], dotted(loc), message))

    def build(self, node: yaml.Node, loc: FieldPath) -> Any:
        self.positions.values[loc] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalars.construct_object(key_node)
                if not isinstance(key, str | int):
                    self.problem(_mark(key_node), loc, "mapping keys must be plain words")
                    continue
                key = str(key)
                if key in out:
                    self.problem(
                        _mark(key_node), (*loc, key), "duplicate key (the earlier one would be lost)"
                    )
                    continue
                self.positions.keys[(*loc, key)] = _mark(key_node)
                out[key] = self.build(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self._scalars.construct_object(node)


def dotted(loc: FieldPath) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _read_text(path: Path) -> str:
    source = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError([Problem(source, 1, 1, "(file)", f"cannot read: {exc.strerror}")]) from None
    if size > MAX_CONFIG_BYTES:
        raise ConfigError([Problem(source, 1, 1, "(file)", f"file is {size:,} bytes; the limit is 1 MiB")])
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            [Problem(source, line, column, "(file)", "not UTF-8 text (save the file as UTF-8)")]
        ) from None


def _fail_at(source: str, mark: Any, message: str) -> ConfigError:
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return ConfigError([Problem(source, line, column, "(yaml)", message)])


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            # Aliases allow "billion laughs" expansion; the config never needs them.
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise _fail_at(source, event.start_mark, "YAML anchors and aliases (&, *) are not allowed")
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        reason = exc.problem or exc.context or "syntax error"
        raise _fail_at(source, exc.problem_mark or exc.context_mark, f"YAML syntax error: {reason}") from None
    except yaml.YAMLError as exc:
        raise _fail_at(source, None, f"YAML error: {exc}") from None


def parse_document(
    text: str,
    source: str,
    model: type[M],
    semantic: Callable[[M], Iterable[tuple[FieldPath, str]]] | None = None,
) -> M:
    """Any YAML document of ours (the merge config, the category tree) into ``model``, or a
    ``ConfigError`` with every structural and ``semantic`` problem at its line and column."""
    node = _compose(text, source)
    if node is None or not isinstance(node, yaml.MappingNode):
        raise ConfigError([Problem(source, 1, 1, "(document)", "the file must be a mapping of settings")])
    builder = _Builder(source)
    data = builder.build(node, ())
    problems = builder.problems
    try:
        document = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            line, column = builder.positions.locate(loc)
            problems.append(Problem(source, line, column, dotted(loc), _message(err)))
        raise ConfigError(_sorted(problems)) from None
    for loc, message in semantic(document) if semantic else ():
        line, column = builder.positions.locate(loc)
        problems.append(Problem(source, line, column, dotted(loc), message))
    if problems:
        raise ConfigError(_sorted(problems))
    return document


def load_document(
    path: str | Path,
    model: type[M],
    semantic: Callable[[M], Iterable[tuple[FieldPath, str]]] | None = None,
) -> M:
    path = Path(path)
    return parse_document(_read_text(path), str(path), model, semantic)


def parse_config(
    text: str, source: str = "hotline_merge.yaml", *, today: dt.date | None = None
) -> HotlineConfig:
    day = today or dt.date.today()
    return parse_document(text, source, HotlineConfig, lambda c: semantic_problems(c, today=day))


def load_config(path: str | Path, *, today: dt.date | None = None) -> HotlineConfig:
    path = Path(path)
    return parse_config(_read_text(path), str(path), today=today)


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line, p.column, p.field))


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see hotline_merge.yaml's comments for the allowed keys)"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        hint = PATTERN_HINTS.get(str(err.get("ctx", {}).get("pattern")))
        if hint:
            return f"{err['input']!r} is not valid: {hint}"
    message = str(err["msg"])
    return message.removeprefix("Value error, ")
