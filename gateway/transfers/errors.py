"""Transfer errors with stable codes; gateway.web.errors answers every ``transfer.*`` code with 409.

Bad input (unknown target, mode) and missing resources are ``HttpError`` 400/404 in the routes.
"""

from __future__ import annotations

from gateway.errors import GatewayError


class TransferError(GatewayError):
    code = "transfer.error"


class TransferLimitError(TransferError):
    """The call has had its hand-over(s) (handover.max_per_call); a supervisor may override."""

    code = "transfer.limit"


class TransferInProgressError(TransferError):
    code = "transfer.in_progress"


class NoSeatError(TransferError):
    """The call is not connected to a seat, so there is nothing to hand over from."""

    code = "transfer.no_seat"


class TargetUnavailableError(TransferError):
    """Nobody is logged in to the target queue: the caller would wait for no one."""

    code = "transfer.target_unavailable"


class TransferRefusedError(TransferError):
    """Asterisk refused the action; the transfer is failed and the caller stays with the seat."""

    code = "transfer.refused"


class TransferFinishedError(TransferError):
    code = "transfer.finished"


class TransferElsewhereError(TransferError):
    """Another gateway node runs this transfer; only it can act on it."""

    code = "transfer.elsewhere"
