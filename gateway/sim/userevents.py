"""The UserEvents the hotline dialplan sends, shared by the simulator, the renderer and the gateway.

Both arrive as ``Event: UserEvent`` (class ``user``) with the channel's snapshot headers first,
then ``UserEvent: <name>`` and the fields below, in this order. Values are dialplan data: treat
them as untrusted text.

- ``HotlineSurvey``: after the seat hangs up, the caller presses a key (or not).
  Linkedid: the call; LegacyLine: the number dialled; Key: ``1``/``2``/``3`` or empty on timeout;
  Result: the meaning of the key from the merge config (satisfied | basic | dissatisfied), or
  ``none`` without a (known) key.
- ``HotlineCallback``: a caller who waited longer than the queue's ``callback_offer_after_s``
  pressed ``CALLBACK_KEY`` and left the queue to be called back.
  Linkedid, CallerIDNum: the number to call back, LegacyLine, Queue, Position (when leaving),
  OriginalPosition (when joining), JoinTime (epoch seconds when the caller joined; callbacks are
  made in this order), WaitTime (seconds waited).
"""

from __future__ import annotations

SURVEY_EVENT = "HotlineSurvey"
SURVEY_FIELDS = ("Linkedid", "LegacyLine", "Key", "Result")
SURVEY_NO_KEY_RESULT = "none"

CALLBACK_EVENT = "HotlineCallback"
CALLBACK_FIELDS = ("Linkedid", "CallerIDNum", "LegacyLine", "Queue", "Position", "OriginalPosition", "JoinTime",
                   "WaitTime")  # fmt: skip
CALLBACK_KEY = "1"
