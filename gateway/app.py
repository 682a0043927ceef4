"""The gateway process: ``init_app(settings)`` wires the AMI link, the tracker, Redis, call records,
KPIs, the HTTP API and the dashboard into one aiohttp application.

The AMI read path only updates the tracker and puts outputs on a queue (``TrackerFeed``); every
await on Redis or HTTP happens in background tasks owned by the app's cleanup contexts:

- ``_pipeline``: tracker outputs -> call records -> outbox (Redis Stream, or the spool file);
- ``_ticker``: a few times a second, lets time pass in the tracker, counts KPIs, publishes the
  dashboard snapshot, mirrors it to Redis and flushes KPI buckets;
- the AMI session, the resync loop, the outbox's spool recovery, the records backstop (work
  orders of calls that ran while no gateway watched, from the PBX's own log) and the dispatchers.
Nothing here is needed for a citizen to reach a seat: Asterisk's dialplan does that alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from gateway.ami import safety
from gateway.ami.client import AmiClient, AmiSettings, ConnectionState
from gateway.ami.errors import AmiError
from gateway.ami.result import ActionResult
from gateway.calls.resync import Resync, TrackerFeed
from gateway.calls.tracker import Output, QueueRules, Tracker
from gateway.dialplan.reload import config_digest, read_applied
from gateway.dialplan.render import CONTROLLER_USER_WRITE
from gateway.dialplan.routing import RoutingPlan, build_routing
from gateway.lease import NodeLease, instance_id
from gateway.merge.loader import ConfigError, load_config
from gateway.merge.schema import HotlineConfig
from gateway.metrics import GatewayMetrics
from gateway.queues.kpi_store import KpiStore
from gateway.queues.recorder import KpiRecorder
from gateway.queues.stats import CHINA_TZ, KpiBook
from gateway.records.backstop import Backstop
from gateway.records.client import OrderSystemClient
from gateway.records.dispatcher import Dispatcher
from gateway.records.feedback import FeedbackStore, feedback_routes
from gateway.records.from_calls import RecordBuilder
from gateway.records.metrics import OutboxMetrics
from gateway.records.outbox import Outbox
from gateway.records.spool import Spool
from gateway.reports.store import ReportStore
from gateway.settings import Settings
from gateway.web.auth import AUTH_KEY, Authenticator
from gateway.web.dashboard import setup_dashboard
from gateway.web.errors import error_middleware
from gateway.web.live import LIVE_HUB, LiveHub
from gateway.web.reports import setup_reports
from gateway.web.snapshot import LinkView, Snapshot, as_plain, build_snapshot, merge_live

log = structlog.get_logger(__name__)

TICK_S = 0.25
MIRROR_EVERY_S = 1.0
FEEDBACK_EVERY_S = 10.0
STOP_TASKS_S = 3.0
LIVE_KEY = "hotline:live"  # + ":<node>": the node's latest snapshot, for other instances


@dataclass
class Gateway:
    """Everything one gateway process runs; handlers reach it as ``request.app[GATEWAY]``."""

    settings: Settings
    plan: RoutingPlan
    redis: aioredis.Redis
    registry: CollectorRegistry
    metrics: GatewayMetrics
    tracker: Tracker
    client: AmiClient
    feed: TrackerFeed
    resync: Resync
    hub: LiveHub
    book: KpiBook
    kpi_store: KpiStore
    recorder: KpiRecorder
    outbox: Outbox
    records: RecordBuilder
    feedback: FeedbackStore
    reports: ReportStore  # half-hour report buckets, fed by the outbox and the order system's feedback
    config: HotlineConfig  # the config in force
    outputs: asyncio.Queue[Output] = field(default_factory=asyncio.Queue)
    resolution: tuple[float | None, int] = (None, 0)
    redis_ok: bool = False
    started: float = field(default_factory=time.monotonic)
    applied_sha: str = ""  # the .applied.json digest whose plan this process runs
    lease: NodeLease | None = None  # this node's lease in Redis (scale-out)
    controlling: bool = False  # holds the lease (or Redis is unreachable) and runs the AMI session
    standby: bool = False  # found the node's lease held by another instance
    peers: list[dict[str, Any]] = field(default_factory=list)  # other nodes' mirrored live state

    def adopt(self, config: HotlineConfig) -> None:
        """Run a new, already validated and applied config: routing plan, queue rules, KPI thresholds."""
        self.plan = build_routing(config)
        self.config = config
        self.tracker.queue_rules = _queue_rules(self.plan)
        self.book.service_level_s = {q.name: q.service_level_s for q in self.plan.queues.values()}
        log.info("config.adopted", queues=len(self.plan.queues), lines=len(self.plan.routes))

    def follow_applied(self) -> None:
        """Adopt the config a `hotline-gateway reload` applied (it writes .applied.json last)."""
        applied = read_applied(self.settings.dialplans_dir)
        sha = applied.get("sha256", "")
        if not sha or sha == self.applied_sha:
            return
        self.applied_sha = sha
        path = Path(applied.get("config", str(self.settings.config_path)))
        try:
            if config_digest(path) == sha:
                self.adopt(load_config(path))
        except (OSError, ConfigError) as exc:
            log.warning("config.applied_unreadable", path=str(path), error=str(exc))

    @property
    def node(self) -> str:
        return self.settings.node_id

    def link(self) -> LinkView:
        state = self.client.state
        if not self.controlling:
            return LinkView(ami="standby", stale=False, reason="")
        if not state.ready:
            why = state.last_error or "connecting to Asterisk"
            return LinkView(ami=state.phase.value, stale=True, reason=f"与Asterisk的连接中断: {why}")
        if self.tracker.stale:
            return LinkView(ami=state.phase.value, stale=True, reason="正在与Asterisk重新同步")
        return LinkView(ami=state.phase.value, stale=False, reason="")

    def snapshot(self) -> Snapshot:
        """This node's live state plus the other nodes' (from Redis), with the shared KPIs."""
        wall = dt.datetime.now(dt.UTC)
        own = build_snapshot(
            tracker=self.tracker,
            plan=self.plan,
            config=self.config,
            book=self.book,
            link=self.link(),
            now=time.monotonic(),
            wall=wall,
            resolution=self.resolution,
        )
        return merge_live(own, self.peers, now=wall.timestamp())

    async def send(self, action: safety.Action) -> ActionResult:
        """Send an AMI action, timing it for /metrics."""
        began = time.monotonic()
        outcome = "ok"
        try:
            return await self.client.send(action)
        except AmiError:
            outcome = "error"
            raise
        finally:
            self.metrics.action_seconds.labels(action.name, outcome).observe(time.monotonic() - began)


GATEWAY = web.AppKey("gateway", Gateway)
# Nodes this process took over from a dead instance (scale-out), by node id.
NODES = web.AppKey("nodes", dict[str, Gateway])


def _queue_rules(plan: RoutingPlan) -> dict[str, QueueRules]:
    return {q.name: QueueRules(q.service_level_s, q.wrapup_s) for q in plan.queues.values()}


def build_gateway(settings: Settings, redis: aioredis.Redis, holder: str) -> Gateway:
    config = settings.config
    plan = build_routing(config)
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    tracker = Tracker(queue_rules=_queue_rules(plan), emergency_numbers=plan.emergency_targets)
    client = AmiClient(
        AmiSettings(
            host=settings.ami_host,
            port=settings.ami_port,
            username=config.ami.username,
            secret=settings.ami_secret,
            # The classes its manager.conf user has (rendered from the same constant).
            write_classes=frozenset(CONTROLLER_USER_WRITE.split(",")),
        )
    )
    outputs: asyncio.Queue[Output] = asyncio.Queue()
    feed = TrackerFeed(tracker, outputs.put_nowait)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    book = KpiBook(service_level_s={q.name: q.service_level_s for q in plan.queues.values()})
    gateway = Gateway(
        settings=settings,
        plan=plan,
        redis=redis,
        registry=registry,
        metrics=metrics,
        tracker=tracker,
        client=client,
        feed=feed,
        resync=Resync(client, feed),
        hub=LiveHub(),
        book=book,
        kpi_store=KpiStore(redis),
        recorder=KpiRecorder(),
        outbox=Outbox(
            redis,
            Spool(settings.spool_dir / f"records-{settings.node_id}.jsonl"),
            metrics=OutboxMetrics(registry),
        ),
        records=RecordBuilder(settings.node_id),
        feedback=FeedbackStore(redis),
        reports=ReportStore(
            redis, lambda: book.service_level_s, retention_days=settings.reports_retention_days
        ),
        config=config,
        outputs=outputs,
        lease=NodeLease(redis, settings.node_id, holder, ttl_ms=settings.lease_ttl_ms),
    )

    def on_event(_: object) -> None:
        metrics.events.inc()

    def on_state(state: ConnectionState) -> None:
        metrics.ami_up.set(1 if state.ready else 0)
        metrics.reconnects.set(state.reconnects)

    gateway.outbox.listeners.append(gateway.reports.add)
    client.add_event_listener(on_event)
    client.add_event_listener(feed)
    client.add_state_listener(on_state)
    return gateway


def init_app(settings: Settings, *, dispatchers: int = 2) -> web.Application:
    from gateway.supervise.http import setup_supervise
    from gateway.supervise.service import SuperviseService
    from gateway.transfers.http import setup_transfers
    from gateway.web.api import setup_api

    app = web.Application(middlewares=[error_middleware])
    app[AUTH_KEY] = Authenticator(settings.role_tokens, settings.session_secret)
    redis = aioredis.Redis.from_url(
        settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=10
    )
    holder = instance_id()
    gateway = build_gateway(settings, redis, holder)
    app[GATEWAY] = gateway
    app[NODES] = {}
    app[LIVE_HUB] = gateway.hub
    app.cleanup_ctx.extend(
        [_redis_lifetime, gateway.hub.lifetime, _core_lifetime(dispatchers), _takeover_lifetime(holder)]
    )
    setup_api(app)
    setup_transfers(app)
    supervise = SuperviseService(gateway.send, lambda call_id: gateway.tracker.calls.get(call_id), redis)
    setup_supervise(app, supervise, settings.supervisor_extensions)
    setup_dashboard(app, gateway.hub)
    setup_reports(app, gateway.reports, lambda: gateway.config)
    token_env = settings.feedback_token_env
    app.add_routes(
        feedback_routes(
            gateway.feedback,
            token_env,
            environ={token_env: settings.feedback_token},
            on_feedback=gateway.reports.apply_feedback,
        )
    )
    return app


async def _redis_lifetime(app: web.Application) -> AsyncIterator[None]:
    gateway = app[GATEWAY]
    try:
        gateway.redis_ok = bool(await gateway.redis.ping())
        loaded = await gateway.kpi_store.load(gateway.book, time.time())
        log.info("kpi.loaded", buckets=loaded)
    except (RedisError, OSError) as exc:
        # Calls and records go on without Redis (records to the spool); figures restart from zero.
        log.warning("redis.unreachable_at_start", error=str(exc))
    yield
    await gateway.redis.aclose()


def _core_lifetime(dispatchers: int) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        gateway = app[GATEWAY]
        config = gateway.settings.config
        order_client = OrderSystemClient(
            gateway.settings.order_url,
            config.order_system.timeout_s,
            config.order_system.token_env,
            environ={config.order_system.token_env: gateway.settings.order_token},
        )
        stop = asyncio.Event()
        async with order_client:
            workers = [
                Dispatcher(gateway.redis, order_client, consumer=f"{gateway.node}-{i}", metrics=None)
                for i in range(dispatchers)
            ]
            tasks = [
                _task(_control(gateway), "lease"),
                _task(gateway.resync.run(), "resync"),
                _task(_pipeline(gateway), "records-pipeline"),
                _task(_ticker(gateway), "ticker"),
                _task(gateway.outbox.run_recovery(stop), "spool-recovery"),
                _task(_backstop(gateway), "records-backstop"),
                _task(gateway.reports.run(), "reports"),
                *(_task(worker.run(), f"dispatcher-{i}") for i, worker in enumerate(workers)),
            ]
            try:
                yield
            finally:
                stop.set()
                for worker in workers:
                    worker.stop()
                await _stop_node(gateway, tasks)

    return lifetime


async def _stop_node(gateway: Gateway, tasks: list[asyncio.Task[None]]) -> None:
    await gateway.client.close()
    await _cancel(tasks)
    await _flush_outputs(gateway)
    await gateway.kpi_store.flush()
    await gateway.reports.flush()
    if gateway.lease is not None and gateway.controlling:
        with contextlib.suppress(RedisError, OSError):
            await gateway.lease.release()  # a standby may take over at once


async def _control(gateway: Gateway) -> None:
    """Run the AMI session while this instance holds the node's lease; stand by otherwise."""
    assert gateway.lease is not None
    while True:
        try:
            held = await gateway.lease.acquire()
        except (RedisError, OSError):
            held = True  # nobody can take over without Redis: keep (or start) controlling
        gateway.standby = not held
        if held and not gateway.controlling:
            gateway.controlling = True
            gateway.client.start()
            log.info("node.controlling", node=gateway.node)
        elif not held and gateway.controlling:
            gateway.controlling = False
            await gateway.client.close()
            gateway.tracker.begin_resync()
            log.warning("node.lease_lost", node=gateway.node)
        await asyncio.sleep(gateway.lease.ttl_ms / 3000)


def _takeover_lifetime(holder: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """Watch the other nodes this instance may take over (HOTLINE_TAKEOVER_NODES)."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        home = app[GATEWAY]
        tasks = [
            _task(
                _takeover(
                    app, replace(home.settings, node_id=n.node_id, ami_host=n.host, ami_port=n.port), holder
                ),
                f"takeover-{n.node_id}",
            )
            for n in home.settings.takeover_nodes
        ]
        yield
        await _cancel(tasks)

    return lifetime


async def _takeover(app: web.Application, settings: Settings, holder: str) -> None:
    """Control ``settings.node_id`` whenever its lease is free, until another instance holds it."""
    home = app[GATEWAY]
    lease = NodeLease(home.redis, settings.node_id, holder, ttl_ms=settings.lease_ttl_ms)
    runtime: Gateway | None = None
    tasks: list[asyncio.Task[None]] = []
    # Give the node's own instance time to take its lease first: taking over is for dead ones.
    await asyncio.sleep(2 * lease.ttl_ms / 1000)
    try:
        while True:
            try:
                held = await (lease.acquire() if runtime is None else lease.renew())
            except (RedisError, OSError):
                held = runtime is not None  # without Redis, keep what we have, take nothing new
            if held and runtime is None:
                runtime = build_gateway(settings, home.redis, holder)
                runtime.lease, runtime.controlling = None, True  # this loop renews its lease
                runtime.client.start()
                tasks = [
                    _task(runtime.resync.run(), f"resync-{runtime.node}"),
                    _task(_pipeline(runtime), f"records-{runtime.node}"),
                    _task(_ticker(runtime), f"ticker-{runtime.node}"),
                    _task(_backstop(runtime), f"records-backstop-{runtime.node}"),
                    _task(runtime.reports.run(), f"reports-{runtime.node}"),
                ]
                app[NODES][runtime.node] = runtime
                log.warning("node.taken_over", node=runtime.node)
            elif not held and runtime is not None:
                app[NODES].pop(runtime.node, None)
                await _stop_node(runtime, tasks)
                runtime, tasks = None, []
                log.info("node.handed_back", node=settings.node_id)
            await asyncio.sleep(lease.ttl_ms / 3000)
    finally:
        if runtime is not None:
            app[NODES].pop(runtime.node, None)
            await _stop_node(runtime, tasks)
            with contextlib.suppress(RedisError, OSError):
                await lease.release()


def _backstop(gateway: Gateway) -> Awaitable[None]:
    """Records of the calls this node's gateway never saw, from the PBX's log of ended calls."""
    return Backstop(gateway.resync, gateway.records, gateway.outbox, gateway.redis).run()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    # A task stuck in a library call must not keep a stopping gateway alive (SIGTERM has a deadline).
    _, stuck = await asyncio.wait(tasks, timeout=STOP_TASKS_S) if tasks else (set(), set())
    for task in stuck:
        log.warning("task.stuck_at_shutdown", task=task.get_name())


def _task(coro: Awaitable[None], name: str) -> asyncio.Task[None]:
    async def guarded() -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task.crashed", task=name)
            raise

    return asyncio.get_running_loop().create_task(guarded(), name=name)


async def _pipeline(gateway: Gateway) -> None:
    """Tracker outputs -> KPIs and call records, in batches; never blocks the AMI path."""
    while True:
        batch = [await gateway.outputs.get()]
        await _handle_outputs(gateway, batch)


async def _flush_outputs(gateway: Gateway) -> None:
    batch = []
    while not gateway.outputs.empty():
        batch.append(gateway.outputs.get_nowait())
    if batch:
        await _handle_outputs(gateway, batch)


async def _handle_outputs(gateway: Gateway, batch: list[Output]) -> None:
    while not gateway.outputs.empty():
        batch.append(gateway.outputs.get_nowait())
    for observation in gateway.recorder.observe_outputs(batch):
        gateway.kpi_store.add(gateway.book.record(observation))
    records = gateway.records.records(batch, time.monotonic())
    if records:
        via = await gateway.outbox.append_many(records)
        log.info("records.appended", count=len(records), via=via.value)


async def _ticker(gateway: Gateway) -> None:
    next_mirror = next_feedback = 0.0
    while True:
        now, wall = time.monotonic(), dt.datetime.now(dt.UTC)
        gateway.tracker.tick(now, wall)
        for output in gateway.tracker.drain():
            gateway.feed.emit(output)
        for observation in gateway.recorder.observe(gateway.tracker.calls.values()):
            gateway.kpi_store.add(gateway.book.record(observation))
        waiting = sum(len(q.waiting) for q in gateway.tracker.queues.values())
        gateway.kpi_store.add_gauge(gateway.book.sample("waiting", wall.timestamp(), waiting))
        gateway.metrics.observe_tracker(gateway.tracker, now)
        snapshot = gateway.snapshot()
        gateway.hub.publish(snapshot)
        if now >= next_mirror:
            next_mirror = now + MIRROR_EVERY_S
            gateway.book.prune(wall.timestamp())
            gateway.redis_ok = await _share(gateway, snapshot, wall.timestamp())
        if now >= next_feedback:
            next_feedback = now + FEEDBACK_EVERY_S
            await _refresh_resolution(gateway, wall)
            gateway.follow_applied()
        await asyncio.sleep(TICK_S)


async def _share(gateway: Gateway, snapshot: Snapshot, now: float) -> bool:
    """Exchange state with the other instances through Redis: KPI increments both ways, this
    node's live state out (while controlling it), the other nodes' live state in."""
    if not await gateway.kpi_store.flush():
        return False
    try:
        await gateway.kpi_store.refresh(gateway.book, now)
        if gateway.controlling:
            own = json.dumps({**as_plain(snapshot), "node": gateway.node}, ensure_ascii=False)
            await gateway.redis.set(f"{LIVE_KEY}:{gateway.node}", own, ex=10)
        keys = [k async for k in gateway.redis.scan_iter(match=f"{LIVE_KEY}:*", count=100)]
        values = await gateway.redis.mget(keys) if keys else []
    except (RedisError, OSError):
        return False
    mine = {gateway.node} if gateway.controlling else set()
    peers = [json.loads(v) for v in values if v is not None]
    gateway.peers = [p for p in peers if p.get("node") not in mine]
    return True


async def _refresh_resolution(gateway: Gateway, wall: dt.datetime) -> None:
    midnight = wall.astimezone(CHINA_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        rates = await gateway.feedback.rates(midnight, wall)
    except (RedisError, OSError):
        return
    covered = rates.counts.get("resolution:resolved", 0) + rates.counts.get("resolution:unresolved", 0)
    gateway.resolution = (rates.resolution_rate, covered)
