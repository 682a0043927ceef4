"""What text from the config may reach the Asterisk dialplan: one rule, used by the checker
(``schema.py`` validates every text and dial string with it, so ``check`` reports the line) and by
the renderer (``gateway.dialplan.render`` passes every config value it writes through it again).

Asterisk splits an application's arguments at ``,`` outside ``( )``, ``[ ]`` and quotes, after
expanding ``${...}`` and ``$[...]``; ``\\`` escapes, ``;`` starts a comment in extensions.conf and
``|`` separates the fields of the PBX's ended-calls log. A text with any of them could add, drop or
swallow arguments (an unbalanced ``(`` in a department swallowed the category, queue and
recording of the intake event), so such texts are refused: admins write the full-width forms
(（），；) that Chinese text uses anyway.
"""

from __future__ import annotations

import re

UNSAFE = frozenset("(),;|$[]{}\\\"'`")
HINT = (
    "use full-width punctuation (（），；) instead of ASCII ( ) , ; | $ [ ] { } \\ and quotes, "
    "and no control characters"
)
# technology/resource[@endpoint]: one channel, no options, no second target ("&").
DIAL_STRING = re.compile(r"(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.+*#-]{1,64}(@[A-Za-z0-9_.-]{1,64})?")
DIAL_HINT = "a dial string is TECHNOLOGY/RESOURCE[@ENDPOINT] (PJSIP, SIP, IAX2 or Local), e.g. PJSIP/110@carrier-trunk"


class UnsafeText(ValueError):
    """A config value that would change a dialplan application's arguments."""


def dialplan_text(text: str) -> str:
    """``text`` unchanged if it cannot change an application's arguments; else UnsafeText."""
    bad = sorted({char for char in text if char in UNSAFE or not char.isprintable()})
    if bad:
        shown = " ".join(repr(char)[1:-1] if char.isprintable() else f"U+{ord(char):04X}" for char in bad)
        raise UnsafeText(f"{text!r} contains {shown}: {HINT}")
    return text


def dial_string(text: str) -> str:
    """``text`` unchanged if it is one channel as TECHNOLOGY/RESOURCE[@ENDPOINT]; else UnsafeText."""
    if not DIAL_STRING.fullmatch(text):
        raise UnsafeText(f"{text!r} is not valid: {DIAL_HINT}")
    return text
