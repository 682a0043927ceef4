"""Read hotline_merge.yaml into a validated ``HotlineConfig``, or fail with every problem at once.

Owns the file-level rules (a regular file of at most 1 MiB, UTF-8, YAML syntax, plain tags only,
bounded nesting, no anchors/aliases, no duplicate keys) and the mapping from a field path back to
its line and column. What a valid config *means* lives in ``schema.py``; this module only makes
sure each complaint names the exact place. Every input ends as a config or a ``ConfigError``:
the file is untrusted (a FIFO, /dev/zero, ``!!python/name:``, 5,000 nested lists, 30 February).
"""

from __future__ import annotations

import datetime as dt
import difflib
import errno
import os
import stat
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import GatewayError
from gateway.merge.schema import PATTERN_HINTS, HotlineConfig, duplicates, semantic_problems

MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 32  # the config nests 5 levels; deep nesting would exhaust the recursive composer
# Scalars are built from these tags only; a date-like scalar stays text (the schema parses dates,
# so "2021-02-30" is reported as a bad date at its line instead of crashing the YAML constructor).
_YAML = "tag:yaml.org,2002:"
_PLAIN_TAGS = {f"{_YAML}{name}" for name in ("null", "bool", "int", "float", "str")}
_TEXT_TAGS = {f"{_YAML}timestamp"}
_COLLECTION_TAGS = {f"{_YAML}map", f"{_YAML}seq"}

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One complaint; ``line`` 0 means the file as a whole (it cannot be read as text)."""

    path: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        if not self.line:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}:{self.column}: {self.field}: {self.message}"


def _file_problem(path: str, message: str) -> ConfigError:
    return ConfigError([Problem(path, 0, 0, "(file)", message)])


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
        self.refused: set[FieldPath] = set()
        self._scalars = yaml.SafeLoader("")

    def problem(self, where: tuple[int, int], loc: FieldPath, message: str) -> None:
        self.problems.append(Problem(self.source, where[0], where[1], dotted(loc), message))

    def refuse(self, node: yaml.Node, loc: FieldPath, message: str) -> None:
        """A value that cannot be built: reported here, read as missing by the schema."""
        self.problem(_mark(node), loc, message)
        self.refused.add(loc)

    def reported(self, loc: FieldPath) -> bool:
        """True when a value at or above ``loc`` was refused already (the schema's complaint would echo it)."""
        return any(loc[:end] in self.refused for end in range(1, len(loc) + 1))

    def build(self, node: yaml.Node, loc: FieldPath) -> Any:
        self.positions.values[loc] = _mark(node)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _COLLECTION_TAGS:
            self.refuse(node, loc, f"YAML tag {node.tag!r} is not allowed (plain YAML only)")
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.scalar(key_node, loc) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str | int) or isinstance(key, bool):
                    self.problem(_mark(key_node), loc, "mapping keys must be plain words")
                    continue
                key = str(key)
                if key in out:
                    first = self.positions.keys[(*loc, key)][0]
                    self.problem(
                        _mark(key_node),
                        (*loc, key),
                        f"duplicate key (first at line {first}; the earlier one would be lost)",
                    )
                    continue
                self.positions.keys[(*loc, key)] = _mark(key_node)
                out[key] = self.build(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, loc)

    def scalar(self, node: yaml.Node, loc: FieldPath) -> Any:
        if node.tag in _TEXT_TAGS:
            return node.value
        if node.tag not in _PLAIN_TAGS:
            self.refuse(node, loc, f"YAML tag {node.tag!r} is not allowed (plain YAML only)")
            return None
        try:
            return self._scalars.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            self.refuse(node, loc, f"cannot read {node.value!r}: {exc}")
            return None


def dotted(loc: FieldPath) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _read_bytes(source: str) -> bytes:
    """At most 1 MiB + 1 byte of a regular file, whatever the path names.

    Opened non-blocking (a FIFO without a writer must not hang) and refused before any read
    unless it is a regular file (/dev/zero would never end).
    """
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise _file_problem(source, f"cannot read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise _file_problem(source, f"is {kind}; give the path of the YAML file")
        chunks: list[bytes] = []
        left = MAX_CONFIG_BYTES + 1
        while left and (chunk := os.read(fd, left)):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise _file_problem(source, "is a directory; give the path of the YAML file") from None
        raise _file_problem(source, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _read_text(path: Path) -> str:
    source = str(path)
    data = _read_bytes(source)
    if len(data) > MAX_CONFIG_BYTES:
        raise _file_problem(source, "file is over 1 MiB; the limit is 1 MiB (is it the merge config?)")
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
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            # Aliases allow "billion laughs" expansion; the config never needs them.
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise _fail_at(source, event.start_mark, "YAML anchors and aliases (&, *) are not allowed")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _fail_at(source, event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        reason = exc.problem or exc.context or "syntax error"
        raise _fail_at(source, exc.problem_mark or exc.context_mark, f"YAML syntax error: {reason}") from None
    except yaml.YAMLError as exc:
        raise _fail_at(source, None, f"YAML error: {exc}") from None


def parse_config(
    text: str, source: str = "hotline_merge.yaml", *, today: dt.date | None = None
) -> HotlineConfig:
    node = _compose(text, source)
    if node is None or not isinstance(node, yaml.MappingNode):
        raise ConfigError([Problem(source, 1, 1, "(document)", "the file must be a mapping of settings")])
    builder = _Builder(source)
    data = builder.build(node, ())
    problems = builder.problems
    try:
        config = HotlineConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            if builder.reported(loc):
                continue
            line, column = builder.positions.locate(loc)
            problems.append(Problem(source, line, column, dotted(loc), _message(err)))
        raise ConfigError(_sorted(problems)) from None
    for loc, message in semantic_problems(config, today=today or dt.date.today()):
        line, column = builder.positions.locate(loc)
        problems.append(Problem(source, line, column, dotted(loc), message))
    for loc, message, first in duplicates(config):
        line, column = builder.positions.locate(loc)
        where = f"{dotted(first)}, line {builder.positions.locate(first)[0]}"
        problems.append(Problem(source, line, column, dotted(loc), f"{message} (first at {where})"))
    if problems:
        raise ConfigError(_sorted(problems))
    return config


def load_config(path: str | Path, *, today: dt.date | None = None) -> HotlineConfig:
    path = Path(path)
    return parse_config(_read_text(path), str(path), today=today)


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line, p.column, p.field))


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        nearest = difflib.get_close_matches(key, _known_keys(tuple(err["loc"][:-1])), n=1, cutoff=0.6)
        if nearest:
            return f"unknown key (did you mean {nearest[0]}?)"
        return "unknown key (check the spelling; see hotline_merge.yaml's comments for the allowed keys)"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        hint = PATTERN_HINTS.get(str(err.get("ctx", {}).get("pattern")))
        if hint:
            return f"{err['input']!r} is not valid: {hint}"
    message = str(err["msg"])
    return message.removeprefix("Value error, ")


def _known_keys(loc: FieldPath) -> list[str]:
    """The keys the model allows at ``loc`` (for "did you mean"), or none when it is not a model."""
    model: type[BaseModel] | None = HotlineConfig
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue  # an item of a list: the list's annotation already named the item's model
        field = model.model_fields.get(part)
        model = next(_models(field.annotation), None) if field else None
    return list(model.model_fields) if model else []


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models inside an annotation such as ``list[Queue]`` or ``OptionalKey | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from _models(arg)
