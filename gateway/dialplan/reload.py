"""Safe hot reload: validate, render, diff, swap, ask Asterisk to reload, verify; or change nothing.

A config that does not validate never reaches the disk. Files are swapped only when every one is
rendered; Asterisk is then asked, over a separate AMI session of the admin user (its Reload needs
the ``config`` class, which the controller user never has), to reload exactly the modules whose
files changed. If Asterisk refuses, the previous files are put back, so the disk always holds what
Asterisk runs. Last, ``.applied.json`` records what was applied: running gateways watch it and
adopt the new routing plan. Calls in progress are not touched: a dialplan or queue reload in
Asterisk keeps every channel, caller position and dynamic member.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.ami import safety
from gateway.ami.client import AmiClient, AmiSettings
from gateway.ami.errors import AmiError
from gateway.contract import ADMIN_USER_WRITE
from gateway.dialplan.deploy import FileChange, swap_in
from gateway.dialplan.render import render
from gateway.dialplan.routing import build_routing
from gateway.errors import GatewayError
from gateway.merge.check import report as report_problems
from gateway.merge.loader import ConfigError, load_config
from gateway.merge.schema import HotlineConfig
from gateway.settings import Settings

APPLIED = ".applied.json"
# Which Asterisk module reads which rendered file.
MODULES = {
    "extensions.conf": "pbx_config.so",
    "queues.conf": "app_queue.so",
    "features.conf": "features",
    "manager.conf": "manager",
}


class ReloadError(GatewayError):
    code = "config.reload_failed"


@dataclass(frozen=True)
class ReloadReport:
    config: HotlineConfig
    changes: list[FileChange]
    reloaded: list[str]  # modules Asterisk reloaded
    verified_queues: list[str]


def config_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_applied(out_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((out_dir / APPLIED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


async def reload_config(
    config_path: Path, out_dir: Path, admin: AmiSettings, *, tracked_events: frozenset[str]
) -> ReloadReport:
    config = load_config(config_path)  # ConfigError: nothing was touched
    files = render(config, tracked_events=tracked_events)
    previous = {
        name: (out_dir / name).read_text(encoding="utf-8") for name in files if (out_dir / name).exists()
    }
    changes = swap_in(files, out_dir)
    modules = [MODULES[c.name] for c in changes if c.changed]
    try:
        reloaded, verified = await _reload_asterisk(admin, modules, config)
    except (AmiError, ReloadError) as exc:
        swap_in(previous, out_dir)
        for name in set(files) - set(previous):
            (out_dir / name).unlink(missing_ok=True)
        raise ReloadError(
            f"Asterisk did not take the new configuration; the previous files are back: {exc}"
        ) from exc
    applied = {"config": str(config_path), "sha256": config_digest(config_path)}
    (out_dir / APPLIED).write_text(json.dumps(applied) + "\n", encoding="utf-8")
    return ReloadReport(config, changes, reloaded, verified)


async def _reload_asterisk(
    admin: AmiSettings, modules: list[str], config: HotlineConfig
) -> tuple[list[str], list[str]]:
    async with AmiClient(admin) as client:
        await client.wait_ready(within=admin.connect_timeout + admin.login_timeout)
        for module in modules:
            await client.send(safety.reload(module))
        # Verify: every queue of the new plan exists in Asterisk now.
        verified = []
        for queue in build_routing(config).queues:
            result = await client.send(safety.queue_status(queue=queue))
            if not any(e.event == "QueueParams" for e in result.events):
                raise ReloadError(f"after the reload Asterisk does not know queue {queue!r}")
            verified.append(queue)
    return modules, verified


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, help="merge config (default: $HOTLINE_CONFIG or hotline_merge.yaml)"
    )
    parser.add_argument("--diff", action="store_true", help="print the unified diff of what changed")


def admin_settings(settings: Settings) -> AmiSettings:
    if not settings.ami_admin_secret:
        raise ReloadError(
            f"set {settings.config.ami.admin_secret_env}: reloads use the AMI user "
            f"{settings.config.ami.admin_username}, whose Reload needs the config class"
        )
    return AmiSettings(
        host=settings.ami_host,
        port=settings.ami_port,
        username=settings.config.ami.admin_username,
        secret=settings.ami_admin_secret,
        plain_login_fallback=settings.config.ami.plain_login,
        write_classes=frozenset(ADMIN_USER_WRITE.split(",")),
    )


def run(args: argparse.Namespace) -> int:
    from gateway.contract import TRACKED_EVENTS

    try:
        settings = Settings.from_env(config_path=args.config)
    except ConfigError as exc:
        report_problems(exc, args.config or "hotline_merge.yaml")
        return 2
    report = asyncio.run(
        reload_config(
            settings.config_path,
            settings.dialplans_dir,
            admin_settings(settings),
            tracked_events=TRACKED_EVENTS,
        )
    )
    for change in report.changes:
        print(f"{'changed  ' if change.changed else 'unchanged'} {settings.dialplans_dir / change.name}")
        if args.diff and change.changed:
            sys.stdout.write(change.diff)
    print(
        f"reloaded: {', '.join(report.reloaded) or 'nothing changed'}; queues verified: {len(report.verified_queues)}"
    )
    return 0
