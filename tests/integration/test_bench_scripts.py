"""The benchmark scripts still run and end with their figures line, at a size that takes seconds.

Nothing here is timed: the figures are the scripts' business. A bench that no longer runs (the
ingest bench's stream server once offered no MD5 challenge, so the gateway never logged in) is
found here rather than by the next person who needs its figures. ``bench/dashboard.py`` fills a
province floor for two minutes and is left to its own runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SMALL = [
    (["ingest.py", "--calls", "20", "--in-flight", "10", "--runs", "1"], "ingest: ratio "),
    (["sim.py", "--rate", "10", "--seconds", "3", "--seats", "20", "--client", "controller"], "sim: "),
    (["outbox.py", "--records", "200"], "outbox: "),
    (["reports.py", "--records", "300"], "reports: "),
]


@pytest.mark.parametrize(("command", "last_line"), SMALL, ids=[c[0] for c, _ in SMALL])
def test_a_bench_runs_and_ends_with_its_figures(command: list[str], last_line: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / command[0]), *command[1:]],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith(last_line), done.stdout[-2000:]
