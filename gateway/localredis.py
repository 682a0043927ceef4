"""Start and stop a private redis-server on a free loopback port.

Used by the demo (when no Redis is configured), the test suite and the benches, so every one of
them starts Redis the same way and always stops what it started. Never used in production, where
Redis is a managed service named by HOTLINE_REDIS_URL.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from gateway.errors import GatewayError


class LocalRedisError(GatewayError):
    code = "redis.local"


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port that is free now, for a server another process will bind.

    Chosen below the kernel's ephemeral range: a port the kernel hands out for port 0 is also
    what it hands the next outgoing connection, which then holds it by the time the child
    process binds (seen as "address already in use" on a busy machine)."""
    floor = _ephemeral_floor()
    for _ in range(100):
        port = random.randrange(max(1024, floor - 12_000), floor)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        fallback: int = sock.getsockname()[1]
        return fallback


class LocalRedis:
    """A redis-server child process on 127.0.0.1 with AOF on (as production is documented)."""

    def __init__(self, port: int | None = None, data_dir: Path | None = None, *, aof: bool = True) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="hotline-redis-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.aof = aof
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise LocalRedisError("redis-server is not installed (apt-get install redis-server)")
        args = [
            binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
            "--save", "", "--protected-mode", "yes", "--daemonize", "no",
            "--appendonly", "yes" if self.aof else "no", "--appendfsync", "everysec",
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise LocalRedisError(f"redis-server exited at start on port {self.port}: {err.strip()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return self
            time.sleep(0.05)
        self.stop()
        raise LocalRedisError(f"redis-server did not answer on 127.0.0.1:{self.port} within 10 s")

    def stop(self, *, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> None:
        """Stop and start on the same port and data dir (AOF replays what was written)."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
