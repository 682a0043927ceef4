"""``hotline-gateway demo``: the README's main job.

Validates the merge config and prints its summary. It grows into the full embedded demo (PBX
simulator, gateway, order sink and dashboard) as those parts land.
"""

from __future__ import annotations

import argparse

from gateway.merge import check

HELP = "run the embedded demo: simulator + gateway + order sink + dashboard"


def configure(parser: argparse.ArgumentParser) -> None:
    check.configure(parser)


def run(args: argparse.Namespace) -> int:
    return check.run(args)
