"""Write rendered Asterisk files into a folder: validate first, diff, then swap file by file.

Every new file is written and fsynced beside its target before any target is replaced, and each
replacement is an atomic rename, so Asterisk never reads a half-written file and a failure
before the swap leaves the old configuration untouched.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileChange:
    name: str
    diff: str  # unified diff, empty for an unchanged file

    @property
    def changed(self) -> bool:
        return bool(self.diff)


def diff_rendered(files: dict[str, str], out_dir: Path) -> list[FileChange]:
    changes = []
    for name, text in sorted(files.items()):
        target = out_dir / name
        old = target.read_text(encoding="utf-8") if target.exists() else ""
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True), text.splitlines(keepends=True), f"a/{name}", f"b/{name}"
            )
        )
        changes.append(FileChange(name, diff))
    return changes


def swap_in(files: dict[str, str], out_dir: Path) -> list[FileChange]:
    """Write ``files`` into ``out_dir``; returns the per-file diffs against what was there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    changes = diff_rendered(files, out_dir)
    staged: list[tuple[Path, Path]] = []
    try:
        for change in changes:
            if not change.changed:
                continue
            fd, tmp_name = tempfile.mkstemp(prefix=f".{change.name}.", dir=out_dir)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(files[change.name])
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o644)
            staged.append((Path(tmp_name), out_dir / change.name))
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return changes
