"""Start and stop a private redis-server on a free loopback port.

Used by the demo (when no Redis is configured), the test suite and the benches, so every one of
them starts Redis the same way and always stops what it started. ``LocalSentinels`` starts a
master, a replica and three sentinels for the failover test and bench. Never used in production,
where Redis is a managed service named by HOTLINE_REDIS_URL or HOTLINE_REDIS_SENTINELS.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
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

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        *,
        aof: bool = True,
        replica_of: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.replica_of = replica_of  # the master's port on 127.0.0.1, for a replica
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
            *(("--replicaof", "127.0.0.1", str(self.replica_of)) if self.replica_of else ()),
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


class LocalSentinels:
    """A master, a replica and three ``redis-sentinel`` processes on 127.0.0.1 (quorum 2).

    ``fail_over()`` kills the master (SIGKILL) and returns once the sentinels name the replica
    as the new master; ``close()`` stops every process it started.
    """

    NAME = "hotline"
    DOWN_AFTER_MS = 1000

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.master = LocalRedis(data_dir=data_dir / "master")
        self.replica = LocalRedis(data_dir=data_dir / "replica", replica_of=self.master.port)
        self.ports = [free_port() for _ in range(3)]
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> str:
        """What HOTLINE_REDIS_SENTINELS takes."""
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> LocalSentinels:
        binary = shutil.which("redis-sentinel")
        if binary is None:
            raise LocalRedisError("redis-sentinel is not installed (apt-get install redis-sentinel)")
        self.master.start()
        self.replica.start()
        for port in self.ports:
            folder = self.data_dir / f"sentinel-{port}"
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"  # sentinels rewrite their own file: one each
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {self.NAME} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.NAME} {self.DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {self.NAME} 10000\n"
                f"sentinel parallel-syncs {self.NAME} 1\n",
                encoding="utf-8",
            )
            self._sentinels.append(
                subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        # Each sentinel must know the replica and the two other sentinels, or nobody can elect.
        self._wait(
            lambda: all(self._knows_all(p) for p in self.ports), "sentinels see the replica and each other"
        )
        self._wait(lambda: b"master_link_status:up" in self._info(self.replica.port), "replica in sync")
        return self

    def master_port(self) -> int | None:
        """The master's port as the first answering sentinel names it."""
        for port in self.ports:
            reply = self._ask(port, f"SENTINEL get-master-addr-by-name {self.NAME}").split(b"\r\n")
            if len(reply) >= 5 and reply[4].isdigit():
                return int(reply[4])
        return None

    def fail_over(self) -> None:
        old = self.master.port
        self.master.stop(kill=True)
        self._wait(
            lambda: self.master_port() == self.replica.port, f"sentinels promote the replica (old {old})", 30
        )
        self._wait(lambda: b"role:master" in self._info(self.replica.port), "the replica is master", 30)

    def close(self) -> None:
        for proc in self._sentinels:
            proc.kill()
            proc.wait()
        self._sentinels.clear()
        self.replica.close()
        self.master.close()

    def _knows_all(self, port: int) -> bool:
        others = [str(p).encode() for p in self.ports if p != port]
        peers = self._ask(port, f"SENTINEL sentinels {self.NAME}")
        return str(self.replica.port).encode() in self._ask(port, f"SENTINEL replicas {self.NAME}") and all(
            o in peers for o in others
        )

    def _info(self, port: int) -> bytes:
        return self._ask(port, "INFO replication")

    @staticmethod
    def _ask(port: int, command: str) -> bytes:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.settimeout(0.5)
            s.sendall(command.encode() + b"\r\n")
            time.sleep(0.02)
            data = b""
            with contextlib.suppress(OSError):
                while chunk := s.recv(65536):
                    data += chunk
                    if len(chunk) < 65536:
                        break
            return data
        return b""

    @staticmethod
    def _wait(check: Callable[[], bool], what: str, within: float = 20) -> None:
        deadline = time.monotonic() + within
        while not check():
            if time.monotonic() > deadline:
                raise LocalRedisError(f"{what}: not within {within:g} s")
            time.sleep(0.1)

    def __enter__(self) -> LocalSentinels:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
