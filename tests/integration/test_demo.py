"""The README's main command: `hotline-gateway demo` serves a day at the centre and stops cleanly.

The demo runs its PBX twenty times faster than real time (``--time-scale 0.05``) and its day ten
times faster again (``--day-minutes 144``) from 15:50 Beijing time, so the 16:00 shift change
comes within seconds. Every wait is for a condition the API shows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from gateway.localredis import free_port
from gateway.merge.loader import load_config
from tests.conftest import ROOT

TOKEN = "demo-test-token-0123456789abcdef"  # 24+ characters, as the gateway requires
RESPONSE_FLOOR = 0.85  # the collapsing demo fell to 39.5 % within minutes
CALLS = 200


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_for(check: Callable[[], bool], what: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s  # a bound for a broken demo, not a timing margin
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.5)
    raise AssertionError(f"the demo never showed {what}")


def test_demo_serves_a_day_that_does_not_collapse_and_stops_on_ctrl_c() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_SUPERVISOR_TOKENS"] = TOKEN
    command = [sys.executable, "-m", "gateway.cli", "demo", "--http-port", str(port), "--seed", "7"]
    command += ["--start", "15:50", "--day-minutes", "144", "--time-scale", "0.05"]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    reasons = set(load_config(ROOT / "hotline_merge.yaml").workbench.pause_reasons)
    seen: dict[str, Any] = {}

    def agents() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = _get(base + "/api/agents", TOKEN)[1]["agents"]
        return found

    def general_seats_present() -> int:
        return sum(1 for a in agents() if a["id"].startswith("10") and a["state"] != "logged_out")

    def offered_enough() -> bool:
        seen.update(_get(base + "/api/queues", TOKEN)[1])
        return bool(seen["overall"]["24h"]["offered"] >= CALLS)

    try:
        _wait_for(lambda: _get(base + "/readyz")[0] == 200, "ready", 90)
        assert _get(base + "/api/queues")[0] == 401  # the API needs a token
        # The early shift's 60 general seats; at 16:00 twenty of them log out (中班: 40).
        _wait_for(lambda: general_seats_present() == 60, "the early shift logged in", 60)
        _wait_for(lambda: general_seats_present() == 40, "the shift change at 16:00", 120)
        _wait_for(
            lambda: any(a["state"] == "paused" and a["reason"] in reasons for a in agents()),
            "a seat on a break with one of the YAML's pause reasons",
            60,
        )
        _wait_for(offered_enough, f"{CALLS} calls", 240)
        overall = seen["overall"]["24h"]
        assert overall["response_rate"] >= RESPONSE_FLOOR, overall
        general = next(q for q in seen["queues"] if q["name"] == "hotline-general")
        assert general["waiting"] < 20, general  # no queue building up without end
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert f"dashboard:  {base}/dashboard" in output
    assert "Erlang C (the staffing check) on the demo's day:" in output
    assert "demo stopped." in output
    assert "Traceback" not in output
