"""The narrow dependencies the domain services take instead of the whole gateway.

``app.py`` builds a node (``gateway.node``) and hands each service only what it uses: a way to
send AMI actions (``Send``), a read-only view of the live calls and seats (``TrackerView``), the
current routing plan (``PlanSource``: a reload replaces it), a Redis client. Services never
import ``app.py`` nor the node; tests may hand them any object with these shapes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from gateway.ami.result import ActionResult
from gateway.ami.safety import Action
from gateway.calls.model import Call, Seat
from gateway.dialplan.routing import RoutingPlan

Send = Callable[[Action], Awaitable[ActionResult]]
PlanSource = Callable[[], RoutingPlan]


class TrackerView(Protocol):
    """What services read of the tracker; they never apply events to it."""

    @property
    def calls(self) -> Mapping[str, Call]: ...

    @property
    def seats(self) -> Mapping[str, Seat]: ...

    @property
    def stale(self) -> bool: ...

    def call_of_leg(self, uniqueid: str) -> Call | None: ...
