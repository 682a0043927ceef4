"""The ``hotline-gateway`` command: one subcommand per job, each in the module that owns it.

Each module named in ``COMMANDS`` defines ``configure(parser)`` and ``run(args) -> int``; its
one-line help lives here, so ``--help`` lists every subcommand without importing any of them.
Modules are imported only when chosen, so ``check`` stays fast and needs no network libraries.
No traceback reaches the user: a GatewayError becomes one line and exit code 2, and a reader
that goes away (``check | head -1``) ends the command quietly, for every subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from gateway.errors import GatewayError

# name -> (module, one line of help: at most 52 characters, so `--help` fits 80 columns)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("gateway.merge.check", "validate the merge config (exit 2 with every error)"),
    "render": ("gateway.dialplan.cli", "render dialplans/ from the merge config"),
    "reload": ("gateway.dialplan.reload", "validate, render, swap and reload into Asterisk"),
    "prompts": ("gateway.dialplan.prompts", "make recordings/prompts/ from the config's texts"),
    "run": ("gateway.run", "run the gateway: AMI, records, API and dashboard"),
    "demo": ("gateway.demo", "a day at the centre: simulator, gateway, dashboard"),
    "simulate": ("gateway.sim.cli", "run the embedded PBX simulator (AMI over TCP)"),
    "order-sink": ("gateway.ordersink.sink", "the reference order system (SQLite, deduplicating)"),
    "credentials": ("gateway.credentials", "API credentials in Redis: add, rotate, revoke, list"),
    "staffing": ("gateway.reports.staffing", "half hours with fewer seats than Erlang C needs"),
}


class CommandModule(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> CommandModule:
    return cast(CommandModule, importlib.import_module(COMMANDS[name][0]))


class _OneLinePerCommand(argparse.HelpFormatter):
    """Each subcommand and its help on one line of 80 columns (argparse measures subcommands two
    columns less deep than it prints them, which pushes "order-sink"'s help to a line of its own)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=24, width=80)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        self._action_max_length = max(self._action_max_length, max(map(len, COMMANDS)) + 4)


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline-gateway",
        description="12345 hotline gateway",
        formatter_class=_OneLinePerCommand,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # only the chosen subcommand's module is imported
            _load(name).configure(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    try:
        code = _load(args.command).run(args)
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at exit
        return code
    except GatewayError as exc:
        print(f"hotline-gateway {args.command}: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader left (`check | head -1`): stdout goes nowhere from now on, so the
        # interpreter's final flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command killed by SIGPIPE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
