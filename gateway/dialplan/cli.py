"""``hotline-gateway render``: write the Asterisk configuration for hotline_merge.yaml."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.dialplan.deploy import swap_in
from gateway.dialplan.render import render
from gateway.merge.check import load_or_report


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="hotline_merge.yaml", help="merge config (default: %(default)s)")
    parser.add_argument("--out", default="dialplans", help="output folder (default: %(default)s)")
    parser.add_argument("--diff", action="store_true", help="print the unified diff of what changed")


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    from gateway.contract import TRACKED_EVENTS

    changes = swap_in(render(config, tracked_events=TRACKED_EVENTS), Path(args.out))
    for change in changes:
        print(f"{'changed  ' if change.changed else 'unchanged'} {Path(args.out) / change.name}")
        if args.diff and change.changed:
            sys.stdout.write(change.diff)
    return 0
