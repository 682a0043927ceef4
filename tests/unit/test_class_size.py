"""Issue 12: no class in gateway/ is over 400 lines (measured with ``ast``, decorators excluded)."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

LIMIT = 400


def _class_sizes() -> dict[str, int]:
    sizes = {}
    for path in (ROOT / "gateway").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                sizes[where] = node.end_lineno - node.lineno + 1
    return sizes


def test_no_class_is_over_the_limit() -> None:
    sizes = _class_sizes()
    assert sizes, "no classes found: is ROOT right?"
    too_long = {where: size for where, size in sizes.items() if size > LIMIT}
    assert not too_long, f"classes over {LIMIT} lines: {too_long}"
