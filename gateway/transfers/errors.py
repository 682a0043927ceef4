"""Transfer errors with stable codes and details; gateway.web.errors alone maps them to HTTP
(a missing call or transfer 404, a target or mode that does not exist 400, the rest 409)."""

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


class CallNotFoundError(GatewayError):
    """No live call with this id on this node (ended calls are in the order system)."""

    code = "call.not_found"


class TransferNotFoundError(TransferError):
    code = "transfer.not_found"


class UnknownTargetError(TransferError):
    code = "transfer.unknown_target"


class ModeNotAllowedError(TransferError):
    """The linkage target (110/119/120/122) does not take this mode of hand-over."""

    code = "transfer.mode_not_allowed"


class NotCompletableError(TransferError):
    """Only an answered consult can be completed."""

    code = "transfer.not_completable"
