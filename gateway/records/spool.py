"""The local spool: where call records wait, fsync'd, while Redis is unreachable.

Owns the file format (one JSON record per line) and its durability (append, flush, fsync; the
directory is fsync'd when a file appears or is renamed). Draining is two-phase: ``claim()``
renames the live file aside so appends continue in a fresh one, the caller moves the claimed
lines into Redis, then ``release()`` deletes the claimed file. A crash between the two leaves the
claimed file for the next drain; the outbox's dedup makes the replay harmless.

A line torn by a crash mid-write is never glued to the next record (a newline is added first) and
is kept in ``<name>.corrupt`` for a person rather than deleted. One spool path per process.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import structlog

from gateway.errors import GatewayError

log = structlog.get_logger(__name__)

CLAIMED_SUFFIX = ".claimed"


class SpoolError(GatewayError):
    """The spool file cannot be written: the last place a record could go is gone."""

    code = "records.spool"


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only JSON-lines file at ``path``; thread-safe (appends run in worker threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, lines: Iterable[bytes]) -> None:
        """Durably append records (each one JSON document without newlines). Blocks on fsync."""
        payload = b"".join(line + b"\n" for line in lines)
        if not payload:
            return
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                created = not self.path.exists()
                with self.path.open("a+b") as spool:
                    if spool.tell() > 0:
                        spool.seek(-1, os.SEEK_END)
                        if spool.read(1) != b"\n":
                            payload = b"\n" + payload  # a torn last line stays on its own line
                    spool.write(payload)
                    spool.flush()
                    os.fsync(spool.fileno())
                if created:
                    _fsync_dir(self.path.parent)
        except OSError as exc:
            raise SpoolError(f"cannot append to spool {self.path}: {exc}") from exc

    def has_records(self) -> bool:
        return bool(self.claimed_files()) or (self.path.exists() and self.path.stat().st_size > 0)

    def claimed_files(self) -> list[Path]:
        return sorted(self.path.parent.glob(f"{self.path.name}.*{CLAIMED_SUFFIX}"))

    def claim(self) -> list[Path]:
        """Move the live file aside and return every claimed file waiting to be drained."""
        with self._lock:
            if self.path.exists() and self.path.stat().st_size > 0:
                self.path.rename(self.path.with_name(f"{self.path.name}.{time.time_ns()}{CLAIMED_SUFFIX}"))
                _fsync_dir(self.path.parent)
        return self.claimed_files()

    def read(self, claimed: Path) -> list[bytes]:
        """The records of a claimed file; torn or garbled lines go to the corrupt file instead."""
        records: list[bytes] = []
        corrupt: list[bytes] = []
        for line in claimed.read_bytes().split(b"\n"):
            if line:
                (records if _is_json(line) else corrupt).append(line)
        if corrupt:
            log.error("spool_corrupt_lines", file=str(claimed), count=len(corrupt))
            self.quarantine(corrupt)
        return records

    def quarantine(self, lines: list[bytes]) -> None:
        """Keep lines that cannot be replayed in ``<name>.corrupt`` for a person to look at."""
        with self._lock, self.path.with_name(f"{self.path.name}.corrupt").open("ab") as out:
            out.write(b"".join(line + b"\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())

    def release(self, claimed: Path) -> None:
        claimed.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)
