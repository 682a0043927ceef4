"""Dialplan variables and functions of the simulated PBX: lookups, ``${...}`` expansion, AstDB paths.

Owns the function table (URIDECODE, IF, LEN, DIALPLAN_EXISTS, STRFTIME, FILTER, DB, and the
functions that read their channel: CHANNEL, CALLERID) and the built-in variables (EXTEN, CONTEXT,
...). The AstDB itself is ``Pbx.astdb`` (the simulator keeps it across restarts).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from gateway.sim.channel import Channel
from gateway.sim.dialplan import if_function, substitute, uridecode

if TYPE_CHECKING:
    from gateway.sim.pbx import Pbx


def channel_function(channel: Channel, args: str) -> str:
    values = {"name": channel.name, "uniqueid": channel.uniqueid, "linkedid": channel.linkedid,
              "language": channel.language, "state": channel.state_desc}  # fmt: skip
    return values.get(args.strip().lower(), "")


def callerid_function(channel: Channel, args: str) -> str:
    return {"num": channel.cid_num, "name": channel.cid_name}.get(args.strip().lower(), "")


def filter_function(args: str) -> str:
    """FILTER(allowed,string): the characters of string that are in allowed (``0-9`` is a range)."""
    allowed, _, text = args.partition(",")
    ranges = [(a, b) for a, b in re.findall(r"(.)-(.)", allowed)]
    singles = set(re.sub(r"(.)-(.)", "", allowed))
    return "".join(c for c in text if c in singles or any(a <= c <= b for a, b in ranges))


def strftime(args: str) -> str:
    """STRFTIME(epoch,timezone,format); an empty timezone is the host's local time."""
    epoch, _, rest = args.partition(",")
    zone, _, fmt = rest.partition(",")
    moment = float(epoch) if epoch.strip() else time.time()
    tz = ZoneInfo(zone.strip()) if zone.strip() else None
    return dt.datetime.fromtimestamp(moment, tz).strftime(fmt or "%c")


class DialplanVariables:
    """Reads variables and expands dialplan expressions for the PBX."""

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.functions: dict[str, Callable[[str], str]] = {
            "URIDECODE": uridecode,
            "IF": if_function,
            "LEN": lambda text: str(len(text)),
            "DIALPLAN_EXISTS": self._dialplan_exists,
            "STRFTIME": strftime,
            "FILTER": filter_function,
            "DB": self.db_read,
        }
        # Functions that read the channel they run on (the simulator's own SIM_SEAT among them).
        self.channel_functions: dict[str, Callable[[Channel, str], str]] = {
            "CHANNEL": channel_function,
            "CALLERID": callerid_function,
        }

    def lookup(self, channel: Channel | None, name: str) -> str | None:
        if channel is not None:
            value = channel.variables.get(name.lstrip("_"))
            if value is not None:
                return value
            builtin = self._builtin(channel, name)
            if builtin is not None:
                return builtin
        return self.pbx.dialplan.globals.get(name)

    def _builtin(self, channel: Channel, name: str) -> str | None:
        match name:
            case "EXTEN":
                return channel.exten
            case "CONTEXT":
                return channel.context
            case "PRIORITY":
                return str(channel.priority)
            case "CHANNEL":
                return channel.name
            case "UNIQUEID":
                return channel.uniqueid
            case "EPOCH":
                return str(int(self.pbx.clock.wall()))
            case "CALLERID(num)":
                return channel.cid_num
        return None

    # -- AstDB (func_db, app_db): "family/key", the key may itself contain "/" ----------------------
    @staticmethod
    def db_path(args: str) -> str:
        family, _, key = args.strip().partition("/")
        return f"/{family}/{key}" if key else f"/{family}"

    def db_read(self, args: str) -> str:
        return self.pbx.astdb.get(self.db_path(args), "")

    def db_write(self, args: str, value: str) -> None:
        self.pbx.astdb[self.db_path(args)] = value

    def db_deltree(self, args: str) -> int:
        """DBdeltree(family[/keytree]): removes the entries at and below that path."""
        prefix = self.db_path(args)
        doomed = [k for k in self.pbx.astdb if k == prefix or k.startswith(prefix + "/")]
        for key in doomed:
            del self.pbx.astdb[key]
        return len(doomed)

    def _dialplan_exists(self, args: str) -> str:
        parts = [part.strip() for part in args.split(",")]
        context = self.pbx.dialplan.contexts.get(parts[0])
        if context is None:
            return "0"
        if len(parts) < 2 or not parts[1]:
            return "1"
        extension = context.match(parts[1])
        if extension is None:
            return "0"
        priority = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1
        return "1" if 1 <= priority <= len(extension.steps) else "0"

    def expand(self, channel: Channel, text: str) -> str:
        if "${" not in text:
            return text
        functions = dict(self.functions)
        for name, function in self.channel_functions.items():
            functions[name] = functools.partial(function, channel)
        return substitute(text, lambda name: self.lookup(channel, name), functions)
