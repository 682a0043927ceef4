"""Turn what the tracker knows about calls into KPI observations, each counted exactly once.

A queue visit is counted as offered when the tracker first shows it and as answered, abandoned
or callback when it closes; a survey when the call has one. Consultation calls a seat places into
a queue (attended transfers) are work for that queue but not a citizen's call, so they are not
counted as offered, nor are the calls the gateway places to call citizens back (they would count
as offered and answered at once and flatter the service level). Pure: no I/O; ``observe`` is called from the app's tick with live calls and
with calls that just ended.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.calls.model import Call, QueueVisit
from gateway.calls.tracker import CallEnded, Output, UpdateKind
from gateway.contract import CALL_BACK_PREFIX
from gateway.queues.stats import Fact, Observation
from gateway.vocabulary import QueueResult

_CLOSED = {
    QueueResult.ANSWERED: Fact.ANSWERED,
    QueueResult.ABANDONED: Fact.ABANDONED,
    QueueResult.CALLBACK_REQUESTED: Fact.CALLBACK,
}


class KpiRecorder:
    def __init__(self) -> None:
        # (call id, leg, join time) -> closed yet; forgotten when the call ends.
        self._visits: dict[tuple[str, str, float], bool] = {}
        self._surveyed: set[str] = set()

    def observe(self, calls: Iterable[Call], *, ended: bool = False) -> list[Observation]:
        found: list[Observation] = []
        for call in calls:
            if call.call_id.startswith(CALL_BACK_PREFIX):
                continue
            line = call.legacy_line or ""
            for visit in call.queues:
                if not visit.consult:
                    found.extend(self._visit(call.call_id, line, visit))
            if call.survey is not None and call.call_id not in self._surveyed:
                self._surveyed.add(call.call_id)
                found.append(
                    Observation(Fact.SURVEY, call.survey.at.timestamp(), line=line, value=call.survey.result)
                )
            if ended:
                self.forget(call)
        return found

    def observe_outputs(self, outputs: Iterable[Output]) -> list[Observation]:
        """Calls that ended (their last visits and survey), and surveys that came after the end."""
        found = self.observe((o.call for o in outputs if isinstance(o, CallEnded)), ended=True)
        for output in outputs:
            if not isinstance(output, CallEnded) and output.kind is UpdateKind.LATE_SURVEY and output.survey:
                found.append(
                    Observation(Fact.SURVEY, output.survey.at.timestamp(), value=output.survey.result)
                )
        return found

    def forget(self, call: Call) -> None:
        self._surveyed.discard(call.call_id)
        for visit in call.queues:
            self._visits.pop((call.call_id, visit.leg, visit.joined_mono), None)

    def _visit(self, call_id: str, line: str, visit: QueueVisit) -> list[Observation]:
        key = (call_id, visit.leg, visit.joined_mono)
        closed = visit.result is not None and visit.left_at is not None
        if self._visits.get(key) is True:
            return []
        found = []
        if key not in self._visits:
            found.append(Observation(Fact.OFFERED, visit.joined_at.timestamp(), visit.queue, line))
        self._visits[key] = closed
        if closed and visit.left_at is not None and visit.result in _CLOSED:
            wait = (visit.left_mono or visit.joined_mono) - visit.joined_mono
            found.append(
                Observation(_CLOSED[visit.result], visit.left_at.timestamp(), visit.queue, line, wait_s=wait)
            )
        return found
