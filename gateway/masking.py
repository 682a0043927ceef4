"""How a caller's number is shown to people who do not need it whole (seats' screens, lists).

One rule, two uses: the workbench masks the number of the caller a seat talks to as
``workbench.caller_mask`` says; a seat looking at calls it is not on always sees the last 4 digits.
Work orders always carry the whole number.
"""

from __future__ import annotations

from enum import StrEnum


class CallerMask(StrEnum):
    NONE = "none"  # 13912345678
    MIDDLE = "middle"  # 139****5678: enough to confirm with the caller, not to copy
    ALL_BUT_LAST4 = "all_but_last4"  # *******5678


def mask_number(number: str | None, how: CallerMask = CallerMask.ALL_BUT_LAST4) -> str | None:
    if number is None or how is CallerMask.NONE:
        return number
    if how is CallerMask.MIDDLE and len(number) >= 8:
        return number[:3] + "*" * (len(number) - 7) + number[-4:]
    return "*" * max(0, len(number) - 4) + number[-4:]
