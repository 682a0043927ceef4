"""One error base for the whole gateway, with stable codes.

Codes are part of the API contract (clients match on them); messages are for people and say what
to fix; details name the things concerned, for programs. Mapping to HTTP statuses lives in
gateway.web, not here.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base error; subclasses set ``code``, a stable dotted identifier."""

    code = "gateway.error"

    def __init__(self, message: str, **details: str) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
