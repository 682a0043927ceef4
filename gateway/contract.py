"""What the rendered dialplan and the gateway agree on: the one place both sides read it from.

Owns the names only: dialplan contexts, channel variables, the UserEvents the dialplan emits
(names and header fields), the PBX's own log of ended calls (AstDB family, version, fields), the
AMI manager users' classes and the events the controller's eventfilter lets through. The renderer
(``gateway.dialplan``) writes them into Asterisk's files; the tracker, the transfer and callback
services, the records backstop and the simulator read them here. Nothing here does anything.

Asterisk adds the channel's own headers (Channel, Uniqueid, Linkedid, CallerIDNum, ...) to a
dialplan UserEvent, so the events carry only what the channel headers do not. Every value comes
from the validated config or from DTMF; caller-controlled text (caller id names) never goes in.
They need only the manager read class ``user``.
"""

from __future__ import annotations

from typing import Final

# --- contexts ------------------------------------------------------------------------------------

INBOUND_CONTEXT: Final = "from-pstn"  # every dialled number (12345 and the legacy lines)
SEATS_CONTEXT: Final = "agents"  # seats' phones, as app_queue members Local/<ext>@agents/n
HANDOVER_CONTEXT: Final = "hotline-handover"
CONF_CONTEXT: Final = "hotline-conf"
CALLBACK_CONTEXT: Final = "hotline-callback"
CALLBACK_DIAL_CONTEXT: Final = "hotline-callback-dial"  # the citizen answered a callback: into the queue
OUTBOUND_CONTEXT: Final = "hotline-outbound"
THREEWAY_CONTEXT: Final = "hotline-threeway"  # a three-way target, originated into the call's conference
RETURN_CONTEXT: Final = "hotline-return"  # a failed hand-over: back to the seat, else first in line
ENDED_CONTEXT: Final = "hotline-ended"  # the caller's hangup handler: writes the ended-call log
OUTBOUND_RING_S: Final = 45  # how long a call out through the trunk (a callback) rings the citizen
SUPERVISOR_PHONE_CONTEXT: Final = "hotline-supervisor-phone"  # Local/<ext>@...: rings a supervisor's phone
SUPERVISE_CONTEXT: Final = "hotline-supervise"  # listen / whisper / barge: ChanSpy on VAR_SPY_TARGET
# ChanSpy options per mode: q no beep or name announced, E end when the seat's channel hangs up
# (never move on to another channel), S end at once when it is already gone; w whisper to the
# seat, B barge in on both sides. Listen sends nothing to the call.
SUPERVISE_MODES: Final = {"listen": "qES", "whisper": "qESw", "barge": "qESB"}
SUPERVISOR_RING_S: Final = 30

# --- channel variables ---------------------------------------------------------------------------

# Set on every inbound call (inherited with the leading "__"), so seats, transfers and call records
# know which number the citizen dialled.
VAR_LEGACY_LINE: Final = "LEGACY_LINE"
VAR_DEPARTMENT: Final = "DEPARTMENT"
VAR_MERGE_MODE: Final = "MERGE_MODE"
VAR_CATEGORY: Final = "CATEGORY_CODE"
VAR_LINE_PRIORITY: Final = "LINE_PRIORITY"
# The call variables a resync asks Status for, for calls it never saw start.
CALL_VARIABLES: Final = (VAR_LEGACY_LINE, VAR_MERGE_MODE, VAR_DEPARTMENT, VAR_CATEGORY)
VAR_QUEUE: Final = "HOTLINE_QUEUE"  # the queue the caller is sent to (a call back sets it on Originate)
VAR_RECORDING: Final = "HOTLINE_RECORDING"  # the MixMonitor file, relative to the recordings root
VAR_MIXMONITOR_FILENAME: Final = "MIXMONITOR_FILENAME"  # Asterisk's own name for the same file
# Set by the gateway on the caller's channel before a blind hand-over: the seat to return to and
# how long the target queue may keep the caller. A hand-over started from a seat's phone has
# neither: it waits for the target as long as the queue does.
VAR_RETURN_SEAT: Final = "HOTLINE_RETURN"
VAR_HANDOVER_TIMEOUT: Final = "HOTLINE_HANDOVER_TIMEOUT"
VAR_JOIN_CALL: Final = "HOTLINE_JOIN"  # on a three-way target the gateway originates: the call it joins
VAR_SPY_TARGET: Final = "HOTLINE_SPY_TARGET"  # the seat's channel, set by the gateway's Originate only

# --- UserEvents ------------------------------------------------------------------------------------


class Intake:
    """A call entered 12345 through a number. A call back the citizen answered sends it too, with
    Queue and Recording only."""

    NAME: Final = "HotlineIntake"
    LEGACY_LINE: Final = "LegacyLine"
    MERGE_MODE: Final = "MergeMode"
    DEPARTMENT: Final = "Department"
    CATEGORY: Final = "Category"
    QUEUE: Final = "Queue"
    PRIORITY: Final = "Priority"
    RECORDING: Final = "Recording"  # the MixMonitor file of the call, relative to the recordings root


class Survey:
    """The caller pressed the survey key after the seat hung up."""

    NAME: Final = "HotlineSurvey"
    LEGACY_LINE: Final = "LegacyLine"
    KEY: Final = "Key"
    RESULT: Final = "Result"
    NO_KEY: Final = "none"  # Result when the caller pressed nothing or an unknown key


class Callback:
    """A waiting caller asked to be called back."""

    NAME: Final = "HotlineCallback"
    LEGACY_LINE: Final = "LegacyLine"
    QUEUE: Final = "Queue"
    JOIN_TIME: Final = "JoinTime"  # epoch seconds
    NUMBER: Final = "CallbackNumber"  # a number the caller keyed in, if a dialplan asks for one


class Handover:
    """A call was handed over through the handover context. A three-way target the gateway
    originated adds Call (the Linkedid of the call it works for)."""

    NAME: Final = "HotlineHandover"
    TARGET: Final = "Target"
    KIND: Final = "Kind"  # the target queue's kind, or "emergency" for a linkage number
    RECORDING: Final = "Recording"
    CALL: Final = "Call"
    EMERGENCY: Final = "emergency"


# Linkedids of the calls the gateway places to call citizens back (not citizens calling in).
CALL_BACK_PREFIX: Final = "cb-"

# --- the PBX's own log of ended calls ------------------------------------------------------------

# Written by the caller's hangup handler into AstDB: /hotline-ended-YYYYMMDD/HH/<Linkedid> (UTC day
# and hour of the end) = "v1|" + the fields below, "|"-separated ("|" is refused in config texts;
# the caller number is filtered to digits and +). Asterisk keeps it without the gateway, which
# reads it (DBGetTree) after every reconnect to build the work orders of calls it never saw
# (gateway.records.backstop). Pruned at intake.
ENDED_FAMILY: Final = "hotline-ended"  # + "-YYYYMMDD"
ENDED_LOG_VERSION: Final = "v1"
ENDED_KEEP_DAYS: Final = 3
ENDED_LOG_FIELDS: tuple[tuple[str, str], ...] = (
    ("line", f"${{{VAR_LEGACY_LINE}}}"),
    ("mode", f"${{{VAR_MERGE_MODE}}}"),
    ("department", f"${{{VAR_DEPARTMENT}}}"),
    ("category", f"${{{VAR_CATEGORY}}}"),
    ("caller", "${FILTER(0-9+,${CALLERID(num)})}"),
    ("queue", f"${{{VAR_QUEUE}}}"),  # the last queue the caller was sent to
    ("arrived", "${HOTLINE_ARRIVED}"),  # epoch seconds, as every time here
    ("joined", "${HOTLINE_JOINED}"),  # first queue join
    ("queued", "${HOTLINE_QUEUED}"),  # the last entry into hotline-queue (after an overflow: the second)
    ("held", "${QEHOLDTIME}"),  # seconds in that queue before a seat answered (setqueueentryvar)
    ("talk", "${ANSWEREDTIME}"),  # seconds connected to that seat
    ("seat", "${MEMBERINTERFACE}"),  # the seat connected last through a queue
    ("handed_from", "${HOTLINE_SEAT}"),  # the seat that handed the call over, if one did
    ("survey_key", "${SURVEY_KEY}"),
    ("survey", "${SURVEY_RESULT}"),
    ("callback", "${HOTLINE_CALLBACK}"),  # when the caller pressed the callback key
    ("recording", f"${{{VAR_RECORDING}}}"),
    ("ended", "${HOTLINE_ENDED}"),
)

# --- AMI manager users -------------------------------------------------------------------------------

CONTROLLER_USER_READ: Final = "call,agent,user"
# Action classes: call (Redirect, Hangup, Setvar, Getvar, Status, transfers), originate
# (Originate), agent (Queue*), user (UserEvent), reporting (CoreShowChannels, Status, QueueStatus,
# DBGetTree of the ended-calls log: reading AstDB needs no "system").
CONTROLLER_USER_WRITE: Final = "call,originate,agent,user,reporting"
ADMIN_USER_WRITE: Final = "config"  # Reload of pbx_config.so and app_queue.so; nothing else

# Events the tracker consumes live (gateway.calls.tracker has a handler for each; a test holds the
# two equal) and the ones the AMI client needs on every session.
TRACKER_EVENTS: frozenset[str] = frozenset({
    "Newchannel", "LocalBridge", "NewCallerid", "VarSet", "Newexten", "QueueCallerJoin",
    "QueueCallerAbandon", "QueueCallerLeave", "AgentCalled", "AgentRingNoAnswer", "AgentConnect",
    "Hold", "Unhold", "BlindTransfer", "AttendedTransfer", "DialBegin", "DialEnd", "ConfbridgeJoin",
    "ConfbridgeLeave", "ConfbridgeEnd", "Hangup", "QueueMemberAdded", "QueueMemberStatus",
    "QueueMemberPause", "QueueMemberPenalty", "QueueMemberRinginuse", "QueueMemberRemoved", "UserEvent",
})  # fmt: skip
CLIENT_EVENTS: frozenset[str] = frozenset({"FullyBooted", "Shutdown"})
# What the controller's least-privilege eventfilter must let through (list items answering an
# action, e.g. QueueStatus's QueueMember, are not filtered and need no entry).
TRACKED_EVENTS: frozenset[str] = TRACKER_EVENTS | CLIENT_EVENTS
