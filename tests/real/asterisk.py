"""Real Asterisk 22 processes for the real-PBX tier: finding the binary, one writable folder per
instance, start (waits until fully booted), CLI, restart and stop.

Two instances run per session, both on 127.0.0.1 with ports the test picks:
- the PBX under test (``pbx_instance``): the repo's production configuration, i.e. the files of
  ``docker/asterisk/`` with the rendered ``dialplans/`` copied unchanged into ``etc/hotline/``,
  started through ``docker/asterisk-entrypoint.sh`` itself (the entrypoint writes the AMI secrets,
  ``pjsip_site.conf`` and installs the seats' accounts that ``docker/gen_seats.py`` generated).
  The rendered dialplan plays and records under ``/var/lib/hotline/recordings``: the PBX runs in
  its own mount namespace (``unshare -m``) where a tmpfs over ``/var/lib`` holds only
  ``hotline/recordings/{prompts,calls}``, symlinks to the repo's prompts and the test's folder,
  so nothing is written outside the test's folder and the host's ``/var/lib`` is never touched.
  Test-only additions, all outside the PJSIP and dialplan configuration: the AMI port and a
  read-all recorder user (``manager.conf``), the RTP range (``rtp.conf``), the directories
  (``asterisk.conf``), and queue_log and CDR files to compare with (``logger.conf``, ``cdr.conf``,
  ``cdr_csv`` loaded);
- the outside world (``tests/real/phones.py``): seat phones and the carrier, real SIP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKER_ASTERISK = ROOT / "docker" / "asterisk"
ENTRYPOINT = ROOT / "docker" / "asterisk-entrypoint.sh"
SOUNDS = Path("/usr/share/asterisk/sounds")
MOH = Path("/usr/share/asterisk/moh")


@dataclass(frozen=True)
class Package:
    """Where an Asterisk installation keeps its binary, modules and XML documentation."""

    binary: Path
    modules: Path
    documentation: Path


def _package_of(binary: Path) -> Package | None:
    prefix = binary.resolve().parent.parent
    for modules, documentation in (
        (prefix / "lib/asterisk/modules", prefix / "var/lib/asterisk/documentation"),  # relocatable
        (Path("/usr/lib/asterisk/modules"), Path("/usr/share/asterisk/documentation")),  # Debian
        (Path("/usr/lib/x86_64-linux-gnu/asterisk/modules"), Path("/usr/share/asterisk/documentation")),
        (Path("/usr/lib/asterisk/modules"), Path("/var/lib/asterisk/documentation")),
    ):
        if modules.is_dir() and documentation.is_dir():
            return Package(binary, modules, documentation)
    return None


def find_asterisk() -> Package | str:
    """The Asterisk to test against (``ASTERISK_BIN``, else ``asterisk`` on PATH), or why none."""
    configured = os.environ.get("ASTERISK_BIN")
    found = configured or shutil.which("asterisk")
    if not found:
        return "no real Asterisk: set ASTERISK_BIN or put asterisk on PATH (CI uses ../shared/asterisk)"
    binary = Path(found)
    if not os.access(binary, os.X_OK):
        return f"ASTERISK_BIN={binary} is not an executable file"
    package = _package_of(binary)
    if package is None:
        return f"{binary}: no modules/ and documentation/ folder next to it or in the Debian places"
    missing = [
        p for p in (SOUNDS / "en" / "beep.gsm", SOUNDS / "en" / "pbx-transfer.gsm", MOH) if not p.exists()
    ]
    if missing:
        return (
            f"Asterisk sounds missing ({', '.join(map(str, missing))}): apt-get install "
            "asterisk-core-sounds-en asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm"
        )
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing: the PBX needs its own mount namespace"
    return package


def namespace_works() -> str | None:
    """None if this user can give the PBX a private mount namespace, else why not."""
    probe = subprocess.run(
        [*_unshare(), "sh", "-c", "mount -t tmpfs hotline-probe /mnt"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"cannot make a private mount namespace ({' '.join(_unshare())}): {probe.stderr.strip()}"
    return None


def _unshare() -> list[str]:
    # As root a plain mount namespace; otherwise a user namespace that maps us to root in it.
    return ["unshare", "-m", "--propagation", "private"] + ([] if os.geteuid() == 0 else ["-r"])


def _section(text: str, name: str) -> str:
    """The body of ``[name]`` in an Asterisk config text (up to the next section)."""
    match = re.search(rf"^\[{re.escape(name)}\][^\n]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


class Instance:
    """One Asterisk process with its own writable folder under ``root``."""

    def __init__(self, name: str, package: Package, root: Path, ami_port: int) -> None:
        self.name = name
        self.package = package
        self.root = root
        self.ami_port = ami_port
        self.etc = root / "etc"
        self.log = root / "log"
        self.conf = self.etc / "asterisk.conf"
        self.proc: asyncio.subprocess.Process | None = None
        for sub in ("etc", "lib/keys", "spool", "run", "log/cdr-csv", "cache", "data", "bin"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for link, target in (
            ("documentation", package.documentation),
            ("sounds", SOUNDS),
            ("moh", MOH),
        ):
            (root / "data" / link).symlink_to(target)

    def directories(self) -> str:
        r, p = self.root, self.package
        return (
            f"[directories]\nastetcdir => {r}/etc\nastmoddir => {p.modules}\nastvarlibdir => {r}/lib\n"
            f"astdbdir => {r}/lib\nastkeydir => {r}/lib\nastdatadir => {r}/data\nastagidir => {r}/lib/agi-bin\n"
            f"astspooldir => {r}/spool\nastrundir => {r}/run\nastlogdir => {r}/log\nastcachedir => {r}/cache\n"
            f"astsbindir => {p.binary.parent}\n"
        )

    def write(self, name: str, text: str) -> None:
        (self.etc / name).write_text(text, encoding="utf-8")

    def command(self) -> list[str]:
        return [str(self.package.binary), "-C", str(self.conf), "-f"]

    def environment(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}

    async def start(self, within: float = 60) -> None:
        out = (self.log / "stdout.log").open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command(),
                env=self.environment(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        finally:
            out.close()
        await self.wait_booted(within)

    async def wait_booted(self, within: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if self.proc is None or self.proc.returncode is not None:
                raise RuntimeError(f"{self.name}: Asterisk exited while booting:\n{self.tail()}")
            ok, _ = await self.cli_result("core waitfullybooted")
            if ok:
                return
            if loop.time() > deadline:
                raise RuntimeError(f"{self.name}: not fully booted within {within:g} s:\n{self.tail()}")
            await asyncio.sleep(0.2)

    async def cli_result(self, command: str) -> tuple[bool, str]:
        proc = await asyncio.create_subprocess_exec(
            str(self.package.binary),
            "-C",
            str(self.conf),
            "-rx",
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode == 0, out.decode("utf-8", "replace")

    async def cli(self, command: str) -> str:
        ok, out = await self.cli_result(command)
        if not ok:
            raise RuntimeError(f"{self.name}: asterisk -rx {command!r} failed: {out}")
        return out

    async def restart_now(self) -> None:
        """``core restart now``: every call is cut, the same process boots again."""
        with contextlib.suppress(RuntimeError):
            await self.cli("core restart now")
        await asyncio.sleep(1.0)  # the old control socket must be gone before we ask again
        await self.wait_booted()

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        await self.cli_result("core stop now")
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    def tail(self, lines: int = 30) -> str:
        texts = []
        for name in ("stdout.log", "full.log"):
            path = self.log / name
            if path.exists():
                texts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)

    def queue_log(self) -> list[list[str]]:
        """queue_log rows: time|callid|queue|agent|event|data..."""
        path = self.log / "queue_log"
        if not path.exists():
            return []
        return [line.split("|") for line in path.read_text(errors="replace").splitlines() if line]

    def cdr_rows(self) -> list[list[str]]:
        import csv

        path = self.log / "cdr-csv" / "Master.csv"
        if not path.exists():
            return []
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            return list(csv.reader(f))


@dataclass(frozen=True)
class PbxPorts:
    sip: int
    ami: int
    rtp: tuple[int, int]


@dataclass(frozen=True)
class PbxSecrets:
    ami: str
    ami_admin: str
    recorder: str


RECORDER_USER = "hotline-test-recorder"


class Pbx(Instance):
    """The PBX under test: docker/asterisk/ + dialplans/, started through the entrypoint."""

    def __init__(
        self,
        package: Package,
        root: Path,
        ports: PbxPorts,
        secrets: PbxSecrets,
        seats_dir: Path,
        carrier: str,
        carrier_match: str,
    ) -> None:
        super().__init__("pbx", package, root, ports.ami)
        self.ports = ports
        self.secrets = secrets
        self.seats_dir = seats_dir
        self.carrier = carrier
        self.carrier_match = carrier_match
        self.dialplans = self.etc / "hotline"
        self.calls_dir = root / "recordings" / "calls"
        self.calls_dir.mkdir(parents=True)
        shutil.copytree(ROOT / "dialplans", self.dialplans)
        for source in DOCKER_ASTERISK.glob("*.conf"):
            shutil.copy(source, self.etc / source.name)
        self._test_overrides()

    def _test_overrides(self) -> None:
        docker_conf = (DOCKER_ASTERISK / "asterisk.conf").read_text(encoding="utf-8")
        # The run user is the namespace's root (asterisk -rx reads it too, so it must exist here).
        options = re.sub(
            r"^(run(user|group)) = .*$", r"\1 = root", _section(docker_conf, "options"), flags=re.M
        )
        self.write("asterisk.conf", self.directories() + "\n[options]\n" + options)
        # Port, loopback and a read-all user for recording traces; the rendered users stay as they are.
        manager = (DOCKER_ASTERISK / "manager.conf").read_text(encoding="utf-8")
        self.write(
            "manager.conf",
            manager
            + f"\n; TEST ONLY (tests/real)\n[general](+)\nbindaddr = 127.0.0.1\nport = {self.ports.ami}\n"
            f"\n[{RECORDER_USER}]\nsecret = {self.secrets.recorder}\ndeny = 0.0.0.0/0.0.0.0\n"
            "permit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\n",
        )
        rtp = (DOCKER_ASTERISK / "rtp.conf").read_text(encoding="utf-8")
        rtp = re.sub(r"^rtpstart = \d+", f"rtpstart = {self.ports.rtp[0]}", rtp, flags=re.M)
        rtp = re.sub(r"^rtpend = \d+", f"rtpend = {self.ports.rtp[1]}", rtp, flags=re.M)
        self.write("rtp.conf", rtp)
        # What Asterisk itself says happened, to compare the gateway with: queue_log and CDR files.
        self.write(
            "logger.conf",
            "[general]\ndateformat = %F %T.%3q\nqueue_log = yes\n\n[logfiles]\n"
            "full.log => notice,warning,error,security,verbose(3)\n",
        )
        self.write(
            "cdr.conf",
            "[general]\nenable = yes\n\n[csv]\nusegmtime = yes\nloguniqueid = yes\nloguserfield = yes\n",
        )
        modules = (DOCKER_ASTERISK / "modules.conf").read_text(encoding="utf-8")
        self.write("modules.conf", modules.replace("noload => cdr_csv.so\n", ""))
        wrapper = self.root / "bin" / "asterisk"
        wrapper.write_text(f'#!/bin/sh\nexec "{self.package.binary}" -C "{self.conf}" "$@"\n')
        wrapper.chmod(0o755)

    def environment(self) -> dict[str, str]:
        user = "root"  # root in the PBX's namespace (really root in CI, mapped otherwise)
        return super().environment() | {
            "PATH": f"{self.root / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOTLINE_ASTERISK_ETC": str(self.etc),
            "HOTLINE_RENDERED_DIR": str(self.dialplans),
            "HOTLINE_SITE_DIR": str(self.seats_dir),
            "HOTLINE_ASTERISK_USER": user,
            "HOTLINE_ASTERISK_GROUP": user,
            "HOTLINE_AMI_SECRET": self.secrets.ami,
            "HOTLINE_AMI_ADMIN_SECRET": self.secrets.ami_admin,
            "HOTLINE_SIP_BIND": f"127.0.0.1:{self.ports.sip}",
            "HOTLINE_SIP_EXTERNAL_ADDRESS": "127.0.0.1",
            "HOTLINE_CARRIER_ADDRESS": self.carrier,
            "HOTLINE_CARRIER_MATCH": self.carrier_match,
        }

    def command(self) -> list[str]:
        recordings = "/var/lib/hotline/recordings"
        script = (
            "set -e; mount -t tmpfs -o mode=755 hotline-test /var/lib; "
            f"mkdir -p {recordings}; "
            f'ln -s "$1" {recordings}/prompts; ln -s "$2" {recordings}/calls; shift 2; exec sh "$@"'
        )
        return [
            *_unshare(),
            "sh",
            "-c",
            script,
            "sh",
            str(ROOT / "recordings" / "prompts"),
            str(self.calls_dir),
            str(ENTRYPOINT),
        ]
