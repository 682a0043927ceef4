"""The UserEvents the rendered dialplan emits: the contract between Asterisk and the gateway.

Asterisk adds the channel's own headers (Channel, Uniqueid, Linkedid, CallerIDNum, ...) to a
dialplan UserEvent, so these carry only what the channel headers do not. Every value here comes
from the validated config or from DTMF; caller-controlled text (caller id names) never goes in.
They need only the manager read class ``user``.
"""

from __future__ import annotations

# A call entered 12345 through a number: LegacyLine, MergeMode, Department, Category, Queue,
# Priority, Recording (the MixMonitor file of the call, relative to the recordings root). A call
# back the citizen answered sends it too, with Queue and Recording only.
INTAKE = "HotlineIntake"
# The caller pressed the survey key after the seat hung up: LegacyLine, Key, Result.
SURVEY = "HotlineSurvey"
# A waiting caller asked to be called back: LegacyLine, Queue, JoinTime (epoch seconds).
CALLBACK = "HotlineCallback"
# A call was handed over through the handover context: Target, Kind, Recording; a three-way
# target the gateway originated adds Call (the Linkedid of the call it works for).
HANDOVER = "HotlineHandover"

SURVEY_NO_KEY = "none"  # Result when the caller pressed nothing or an unknown key

# Linkedids of the calls the gateway places to call citizens back (not citizens calling in).
CALL_BACK_PREFIX = "cb-"
