"""The work-order category tree (工单分类) in the style of GB/T 39666-2020, loaded and checked.

Three levels with 6-digit codes: top classes ``XX0000``, subclasses ``XXYY00`` under their class,
leaf items ``XXYYZZ`` under their subclass. The tree ships with the gateway
(``categories.yaml`` here); a city names its own in ``workbench.category_tree``. A malformed,
misplaced or repeated code is refused at load with its file, line and field.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.merge.loader import FieldPath, load_document
from gateway.merge.schema import CategoryCode, HotlineConfig

BUNDLED_TREE = Path(__file__).with_name("categories.yaml")
Name = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$")]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Item(_Node):
    code: CategoryCode
    name: Name


class Subclass(_Node):
    code: CategoryCode
    name: Name
    items: list[Item] = Field(min_length=1, max_length=200)


class TopClass(_Node):
    code: CategoryCode
    name: Name
    subclasses: list[Subclass] = Field(min_length=1, max_length=100)


class CategoryTree(_Node):
    version: Literal[1]
    classes: list[TopClass] = Field(min_length=1, max_length=100)

    def paths(self) -> dict[str, str]:
        """Every code -> its names from the top, e.g. "020101" -> "市场监管 / 消费投诉 / 商品质量"."""
        out = {}
        for top in self.classes:
            out[top.code] = top.name
            for sub in top.subclasses:
                out[sub.code] = f"{top.name} / {sub.name}"
                for item in sub.items:
                    out[item.code] = f"{top.name} / {sub.name} / {item.name}"
        return out

    def as_plain(self) -> list[dict[str, Any]]:
        return [top.model_dump() for top in self.classes]


def tree_problems(tree: CategoryTree) -> Iterator[tuple[FieldPath, str]]:
    """Codes out of place (a subclass outside its class, ...) or used twice."""
    seen: dict[str, str] = {}

    def once(code: str, loc: FieldPath) -> Iterator[tuple[FieldPath, str]]:
        if code in seen:
            yield (*loc, "code"), f"code {code} is used twice (first at {seen[code]})"
        seen.setdefault(code, ".".join(map(str, loc)))

    for t, top in enumerate(tree.classes):
        loc: FieldPath = ("classes", t)
        if not top.code.endswith("0000") or top.code == "000000":
            yield (*loc, "code"), f"a top class is XX0000 (e.g. 020000), not {top.code}"
        yield from once(top.code, loc)
        for s, sub in enumerate(top.subclasses):
            sub_loc: FieldPath = (*loc, "subclasses", s)
            if sub.code[:2] != top.code[:2] or not sub.code.endswith("00") or sub.code[2:4] == "00":
                yield (*sub_loc, "code"), f"a subclass of {top.code} is {top.code[:2]}YY00, not {sub.code}"
            yield from once(sub.code, sub_loc)
            for i, item in enumerate(sub.items):
                item_loc: FieldPath = (*sub_loc, "items", i)
                if item.code[:4] != sub.code[:4] or item.code[4:] == "00":
                    yield (
                        (*item_loc, "code"),
                        f"an item of {sub.code} is {sub.code[:4]}ZZ (ZZ not 00), not {item.code}",
                    )
                yield from once(item.code, item_loc)


def tree_path(config: HotlineConfig, config_path: Path) -> Path:
    name = config.workbench.category_tree
    return config_path.parent / name if name else BUNDLED_TREE


def load_tree(path: Path) -> CategoryTree:
    """The tree at ``path``, or ``ConfigError`` naming every problem's line."""
    return load_document(path, CategoryTree, tree_problems)


def unknown_line_categories(config: HotlineConfig, tree: CategoryTree) -> list[str]:
    """Legacy lines whose default category the tree lacks (seats could not keep it)."""
    known = tree.paths()
    return [f"{line.number}: {line.category}" for line in config.legacy_lines if line.category not in known]
