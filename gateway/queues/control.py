"""Seat control over AMI: log a seat in or out of its roster queues, pause or unpause it everywhere.

Owns the rules (only roster seats, only the queues of their roster, a pause reason is text) and
the actions (built by ``gateway.ami.safety`` only). Raises ``SeatControlError`` with stable
``agent.*`` codes; the HTTP routes (``gateway.web.api``) read the request and map the codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.ami import safety
from gateway.dialplan.routing import SeatPlan
from gateway.errors import GatewayError
from gateway.ports import PlanSource, Send

Verb = Literal["login", "logout", "pause", "unpause"]


class SeatControlError(GatewayError):
    code = "agent.error"


class SeatNotFoundError(SeatControlError):
    code = "agent.not_found"


class InvalidReasonError(SeatControlError):
    code = "agent.invalid_reason"


class InvalidQueuesError(SeatControlError):
    code = "agent.invalid_queues"


class QueueNotInRosterError(SeatControlError):
    code = "agent.queue_not_in_roster"


@dataclass(frozen=True)
class ActionDone:
    action: str
    queue: str | None
    message: str


class SeatControl:
    """Carries out a seat's login, logout, pause and unpause on the current plan's roster."""

    def __init__(self, send: Send, plan: PlanSource) -> None:
        self.send = send
        self.plan = plan

    async def act(
        self, extension: str, verb: Verb, *, queues: object = None, reason: object = None
    ) -> list[ActionDone]:
        """``queues`` (default: the seat's roster) and ``reason`` come from outside: checked here."""
        seat = self.plan().seats.get(extension)
        if seat is None:
            raise SeatNotFoundError(
                f"seat {extension!r} is not in the roster (hotline_merge.yaml seats)", seat=extension
            )
        done = []
        for action in _actions(seat, verb, queues, reason):
            result = await self.send(action)
            done.append(ActionDone(action.name, action.get("Queue"), result.message))
        return done


def _actions(seat: SeatPlan, verb: Verb, requested: object, reason: object) -> list[safety.Action]:
    queues = _queues_of(seat, requested)
    if verb == "login":
        return [
            safety.queue_add(
                q,
                seat.interface,
                member_name=seat.name,
                penalty=seat.penalty,
                state_interface=seat.state_interface,
            )
            for q in queues
        ]
    if verb == "logout":
        return [safety.queue_remove(q, seat.interface) for q in queues]
    if reason is not None and not isinstance(reason, str):
        raise InvalidReasonError("reason must be text, e.g. 小休 or 培训", seat=seat.extension)
    return [safety.queue_pause(seat.interface, verb == "pause", reason=reason if verb == "pause" else None)]


def _queues_of(seat: SeatPlan, requested: object) -> list[str]:
    if requested is None:
        return list(seat.queues)
    if not isinstance(requested, list) or not all(isinstance(q, str) for q in requested):
        raise InvalidQueuesError("queues must be a list of queue names", seat=seat.extension)
    unknown = [q for q in requested if q not in seat.queues]
    if unknown:
        raise QueueNotInRosterError(
            f"seat {seat.extension} does not serve {', '.join(unknown)} (roster: {', '.join(seat.queues)})",
            seat=seat.extension,
        )
    return list(requested)
