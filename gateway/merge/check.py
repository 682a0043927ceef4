"""``hotline-gateway check [PATH]``: validate the merge config and print a one-screen summary.

Exit 0 with the summary, or 2 with every problem as ``PATH:LINE:COLUMN: field.path: message``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from gateway.merge.loader import ConfigError, load_config
from gateway.merge.schema import LINE_MODES, HotlineConfig


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="hotline_merge.yaml", help="config file")


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.path)
    if config is None:
        return 2
    print(summary(config, args.path))
    return 0


def load_or_report(path: str) -> HotlineConfig | None:
    """The config, or None after printing every problem (the command then exits 2)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        report(exc, path)
        return None


def report(error: ConfigError, path: str) -> None:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    count = len(error.problems)
    print(f"{path}: {count} error{'s' if count != 1 else ''}; nothing was applied", file=sys.stderr)


def summary(config: HotlineConfig, path: str) -> str:
    hotline = config.hotline
    modes = Counter(line.mode for line in config.legacy_lines)
    seats = sum(len(group.extension_list()) for group in config.seats)
    lines = [
        f"{path}: OK",
        f"hotline   {hotline.number} {hotline.name} ({hotline.service_hours}, "
        f"{'one optional key' if hotline.optional_key else 'no menu'})",
        f"legacy    {len(config.legacy_lines)} lines: "
        + ", ".join(f"{modes[mode]} {mode.value}" for mode in LINE_MODES),
    ]
    for mode in LINE_MODES:
        numbers = [line.number for line in config.legacy_lines if line.mode is mode]
        if numbers:
            lines.append(f"  {mode.value:<10} {' '.join(numbers)}")
    lines.append(f"queues    {len(config.queues)}, seats {seats}")
    for queue in config.queues:
        overflow = f" -> {queue.overflow_to} after {queue.overflow_after_s}s" if queue.overflow_to else ""
        lines.append(
            f"  {queue.name:<26} {queue.kind.value:<9} {queue.strategy.value:<11} {queue.title}{overflow}"
        )
    targets = ", ".join(f"{t.number} {t.name}" for t in config.emergency_targets)
    lines.append(f"linkage   {targets} (hand-over only)")
    lines.append(
        f"handover  at most {config.handover.max_per_call} per call"
        f"{', supervisor may override' if config.handover.supervisor_override else ''}; "
        f"policy queue {config.handover.policy_queue}"
    )
    survey = config.survey
    lines.append(
        f"survey    {'on' if survey.enabled else 'off'}, keys "
        + " ".join(f"{k}={v}" for k, v in survey.keys.items())
    )
    lines.append(f"orders    {config.order_system.url} (token from ${config.order_system.token_env})")
    ami = config.ami
    lines.append(f"ami       {ami.username}@{ami.host}:{ami.port} (secret from ${ami.secret_env})")
    return "\n".join(lines)
