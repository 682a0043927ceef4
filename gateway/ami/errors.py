"""Errors of the AMI link, each with a stable code the API and /readyz can report.

Framing and header-injection errors live in ``protocol`` (``ami.framing``, ``ami.unsafe_header``);
these are the errors of a conversation with Asterisk: connecting, logging in, waiting for answers.
"""

from __future__ import annotations

from gateway.errors import GatewayError


class AmiError(GatewayError):
    code = "ami.error"


class NotConnectedError(AmiError):
    """The client has no logged-in session right now; nothing was sent."""

    code = "ami.not_connected"


class ConnectionLostError(AmiError):
    """The session ended (EOF, reset, watchdog, Shutdown) while the action waited for its answer."""

    code = "ami.connection_lost"


class ActionTimeoutError(AmiError):
    """No complete answer within the action's deadline; its pending entry has been removed."""

    code = "ami.action_timeout"


class ActionFailedError(AmiError):
    """Asterisk answered ``Response: Error``; ``result`` holds the whole answer."""

    code = "ami.action_failed"

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


class LoginFailedError(AmiError):
    """Asterisk refused the credentials. Retrying will not help until someone fixes them."""

    code = "ami.login_failed"


class ActionNotAllowedError(AmiError):
    """The action needs a write class this session is not configured to use (e.g. Command)."""

    code = "ami.action_not_allowed"


class UnsafeValueError(AmiError):
    """A value for an action field failed its allowlist (channel, context, queue, variable, ...)."""

    code = "ami.unsafe_value"
