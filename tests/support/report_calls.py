"""For the reports' tests: final call records with known figures (one call from a few numbers), and
an app that serves what the gateway mounts for reports and nothing else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import redis.asyncio as aioredis
from aiohttp import web

from gateway.merge.schema import HotlineConfig
from gateway.queues.stats import CHINA_TZ
from gateway.records.feedback import FeedbackStore, feedback_routes
from gateway.records.model import (
    CallRecord,
    Disposition,
    Durations,
    EmergencyService,
    Handover,
    Leg,
    QueueVisit,
    Stage,
    Survey,
    SurveyResult,
    Times,
    record_id_for,
    revision_for,
)
from gateway.reports.store import ReportStore
from gateway.vocabulary import (
    DispositionKind,
    HandoverMode,
    HandoverOutcome,
    MergeMode,
    PartyKind,
    QueueResult,
    TargetKind,
)
from gateway.web.auth import AUTH_KEY
from gateway.web.dashboard import setup_dashboard
from gateway.web.errors import error_middleware
from gateway.web.live import LiveHub
from gateway.web.reports import setup_reports
from tests.browser.scene import make_auth

ORDER_TOKEN = "order-feedback-token"


def beijing(year: int, month: int, day: int, hour: int, minute: int, second: float = 0) -> dt.datetime:
    whole = int(second)
    return dt.datetime(year, month, day, hour, minute, whole, int((second - whole) * 1e6), tzinfo=CHINA_TZ)


def call(
    arrived: dt.datetime,
    *,
    linkedid: str = "1772438400.1",
    line: str | None = "12315",
    department: str | None = "市场监督管理局",
    queues: Sequence[str] = ("hotline-general",),
    wait_s: float = 10.0,
    answered: bool = True,
    talk_s: float = 100.0,
    hold_s: float = 0.0,
    wrap_up_s: float | None = 30.0,
    survey: SurveyResult | None = None,
    handover: HandoverMode | None = None,
    to_emergency: bool = False,
) -> CallRecord:
    """A citizen's call: queues in ``queues`` in turn (each but the last overflows after
    ``wait_s``), then answered by seat 1001 after ``wait_s`` in the last one, or abandoned there."""
    joined = arrived + dt.timedelta(seconds=2)
    visits = []
    for queue in queues[:-1]:
        left = joined + dt.timedelta(seconds=wait_s)
        visits.append(QueueVisit(queue=queue, joined_at=joined, left_at=left, result=QueueResult.OVERFLOWED))
        joined = left
    left = joined + dt.timedelta(seconds=wait_s)
    result = QueueResult.ANSWERED if answered else QueueResult.ABANDONED
    visits.append(QueueVisit(queue=queues[-1], joined_at=joined, left_at=left, result=result))
    first_joined = visits[0].joined_at
    ended = left + dt.timedelta(seconds=(talk_s + hold_s if answered else 0))
    legs, handovers = [], []
    if answered:
        legs.append(
            Leg(
                kind=PartyKind.SEAT,
                party="1001",
                queue=queues[-1],
                offered_at=left - dt.timedelta(seconds=1),
                answered_at=left,
                ended_at=ended,
                ring_s=1.0,
                talk_s=talk_s,
                hold_s=hold_s,
                recordings=[],
            )
        )
    if handover is not None:
        handovers.append(
            Handover(
                at=left + dt.timedelta(seconds=10),
                mode=handover,
                from_seat="1001",
                target_kind=TargetKind.EMERGENCY if to_emergency else TargetKind.SEAT,
                target="110" if to_emergency else "2001",
                emergency_service=EmergencyService.POLICE if to_emergency else None,
                outcome=HandoverOutcome.COMPLETED,
                recording=None,
            )
        )
    abandoned = not answered
    return CallRecord(
        record_id=record_id_for("pbx-1", linkedid),
        revision=revision_for(ended, Stage.FINAL),
        stage=Stage.FINAL,
        as_of=ended,
        pbx_node="pbx-1",
        linkedid=linkedid,
        caller_number="13800000001",
        legacy_line=line,
        merge_mode=MergeMode.MERGED if line else None,
        department=department,
        category_code=None,
        queues=visits,
        seat_ids=["1001"] if answered else [],
        times=Times(
            arrived_at=arrived,
            queue_joined_at=first_joined,
            answered_at=left if answered else None,
            ended_at=ended,
        ),
        durations=Durations(
            wait_s=(left - first_joined).total_seconds(),
            ring_s=1.0 if answered else 0.0,
            talk_s=talk_s if answered else 0.0,
            hold_s=hold_s if answered else 0.0,
            wrap_up_s=wrap_up_s if answered else None,
        ),
        handovers=handovers,
        legs=legs,
        recordings=[],
        survey=Survey(result=survey, key=None, at=ended) if survey else None,
        disposition=Disposition(
            kind=DispositionKind.ABANDONED if abandoned else DispositionKind.ANSWERED,
            abandoned_after_s=(left - first_joined).total_seconds() if abandoned else None,
            emergency_service=None,
            callback_number=None,
        ),
    )


def reports_app(redis: aioredis.Redis, store: ReportStore, config: HotlineConfig) -> web.Application:
    """What init_app mounts for reports, with nothing else of the gateway."""
    app = web.Application(middlewares=[error_middleware])
    app[AUTH_KEY] = make_auth(redis)
    setup_dashboard(app, LiveHub())
    setup_reports(app, store, lambda: config)
    app.add_routes(
        feedback_routes(
            FeedbackStore(redis),
            "ORDER_TOKEN",
            environ={"ORDER_TOKEN": ORDER_TOKEN},
            on_feedback=store.apply_feedback,
        )
    )
    return app
