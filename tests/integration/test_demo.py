"""The README's main command: `hotline-gateway demo` serves live figures and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from gateway.localredis import free_port
from tests.conftest import ROOT


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_demo_shows_live_calls_and_stops_on_ctrl_c() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_SUPERVISOR_TOKENS"] = "demo-test-token-0123456789abcdef"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--http-port", str(port), "--rate", "5", "--seed", "7"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        offered = 0
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                status, _ = _get(base + "/readyz")
            except OSError:
                continue
            if status != 200:
                continue
            _, queues = _get(base + "/api/queues", "demo-test-token-0123456789abcdef")
            overall = queues["overall"]
            assert isinstance(overall, dict)
            offered = overall["today"]["offered"]
            if offered >= 3:
                break
        assert offered >= 3, "the demo did not show calls within a minute"
        assert _get(base + "/api/queues")[0] == 401  # the API needs a token
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert f"dashboard:  {base}/dashboard" in output
    assert "demo stopped." in output
    assert "Traceback" not in output
