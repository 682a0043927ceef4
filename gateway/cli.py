"""The ``hotline-gateway`` command: one subcommand per job, each in the module that owns it.

Each module named in ``COMMANDS`` defines ``HELP``, ``configure(parser)`` and ``run(args) -> int``.
They are imported only when chosen, so ``check`` stays fast and needs no network libraries.
No traceback reaches the user: a GatewayError becomes one line and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from gateway.errors import GatewayError

COMMANDS: dict[str, str] = {
    "check": "gateway.merge.check",
    "demo": "gateway.demo",
    "order-sink": "gateway.ordersink.sink",
    "render": "gateway.dialplan.cli",
    "prompts": "gateway.dialplan.prompts",
    "simulate": "gateway.sim.cli",
    "run": "gateway.run",
    "reload": "gateway.dialplan.reload",
    "staffing": "gateway.reports.staffing",
}


class CommandModule(Protocol):
    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> CommandModule:
    return cast(CommandModule, importlib.import_module(COMMANDS[name]))


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline-gateway", description="12345 hotline gateway")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name in COMMANDS:
        # Only the chosen subcommand's module is imported; the others get a stub for --help.
        module = _load(name) if name == chosen else None
        sub_parser = sub.add_parser(name, help=module.HELP if module else None)
        if module:
            module.configure(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    try:
        return _load(args.command).run(args)
    except GatewayError as exc:
        print(f"hotline-gateway {args.command}: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
