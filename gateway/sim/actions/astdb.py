"""AstDB actions: DBPut, DBGet, DBGetTree, DBDel, DBDelTree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.ami.protocol import Message
from gateway.sim.actions.base import ActionGroup

if TYPE_CHECKING:
    from gateway.sim.manager import Session


class AstDbActions(ActionGroup):
    """The Asterisk database, kept by the simulator across restarts."""

    def db_put(self, session: Session, message: Message) -> None:
        family, key = message.get("Family"), message.get("Key")
        if not family or not key:
            self.error(session, message, "No family specified" if not family else "No key specified")
            return
        self.pbx.astdb[f"/{family}/{key}"] = message.get("Val") or ""
        self.ok(session, message, "Updated database successfully")

    def db_get(self, session: Session, message: Message) -> None:
        family, key = message.get("Family") or "", message.get("Key") or ""
        value = self.pbx.astdb.get(f"/{family}/{key}")
        if value is None:
            self.error(session, message, "Database entry not found")
            return
        self.send_list(session, message, "Result will follow",
                       [("DBGetResponse", [("Family", family), ("Key", key), ("Val", value), *self._aid(message)])],
                       "DBGetComplete")  # fmt: skip

    def _tree(self, message: Message) -> list[tuple[str, str]]:
        prefix = f"/{message.get('Family') or ''}"
        if message.get("Key"):
            prefix += f"/{message.get('Key')}"
        return sorted((k, v) for k, v in self.pbx.astdb.items() if k == prefix or k.startswith(prefix + "/"))

    def db_get_tree(self, session: Session, message: Message) -> None:
        entries = self._tree(message)
        if not entries:
            self.error(session, message, "Database entry not found")
            return
        self.send_list(session, message, "Result will follow",
                       [("DBGetTreeResponse", [("Key", k), ("Val", v), *self._aid(message)]) for k, v in entries],
                       "DBGetTreeComplete")  # fmt: skip

    def db_del(self, session: Session, message: Message) -> None:
        key = f"/{message.get('Family') or ''}/{message.get('Key') or ''}"
        if self.pbx.astdb.pop(key, None) is None:
            self.error(session, message, "Database entry not found")
            return
        self.ok(session, message, "Key deleted successfully")

    def db_del_tree(self, session: Session, message: Message) -> None:
        entries = self._tree(message)
        if not entries:
            self.error(session, message, "Database entry not found")
            return
        for key, _ in entries:
            del self.pbx.astdb[key]
        self.ok(session, message, "Key tree deleted successfully")
