"""One controlled Asterisk node: ``Node`` holds its parts and runs its background tasks.

The AMI read path only updates the tracker and puts outputs on a queue (``TrackerFeed``); every
await on Redis or HTTP happens in the node's tasks, each started once by ``Node.start``:

- ``lease``: runs the AMI session while this instance holds the node's lease (home node only);
- ``records-pipeline``: tracker outputs -> KPIs and call records (with the seats' work-order drafts)
  -> outbox (Redis Stream, or the spool); a draft saved after its call's final record -> a new revision;
- ``ticker``: a few times a second, lets time pass in the tracker, counts KPIs and builds the
  node's live state; on the home node, publishes the dashboard snapshot (every node this instance
  runs, plus the other instances' from Redis) to the live hub. It never awaits Redis;
- ``share``: every second, shares with the other instances through Redis (KPI buckets out, this
  node's live state out; on the home node, the KPI buckets and the other nodes' live state in):
  a side branch, the page never waits on it;
- ``resync``, ``spool-recovery`` (home node only) and ``records-backstop`` (work orders of calls
  that ran while no gateway watched, from the PBX's own log);
- ``reports``: the outbox's records into the half-hour report buckets (``gateway.reports.store``).
Nothing here is needed for a citizen to reach a seat: Asterisk's dialplan does that alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from gateway import keys
from gateway.ami import safety
from gateway.ami.client import AmiClient, AmiSettings, ConnectionState
from gateway.ami.errors import AmiError
from gateway.ami.result import ActionResult
from gateway.calls.resync import Resync, TrackerFeed
from gateway.calls.tracker import CallEnded, CallUpdate, Output, QueueRules, Tracker, UpdateKind
from gateway.contract import CONTROLLER_USER_WRITE
from gateway.dialplan.reload import config_digest, read_applied
from gateway.dialplan.routing import RoutingPlan, build_routing
from gateway.lease import NodeLease
from gateway.merge.loader import ConfigError, load_config
from gateway.merge.schema import HotlineConfig
from gateway.metrics import GatewayMetrics
from gateway.queues.kpi_store import KpiStore
from gateway.queues.recorder import KpiRecorder
from gateway.queues.stats import CHINA_TZ, KpiBook
from gateway.records.backstop import Backstop
from gateway.records.feedback import FeedbackStore
from gateway.records.from_calls import DraftSaved, RecordBuilder
from gateway.records.metrics import OutboxMetrics
from gateway.records.model import WorkOrderDraft
from gateway.records.outbox import Outbox
from gateway.records.spool import Spool
from gateway.reports.store import ReportStore
from gateway.settings import Settings
from gateway.tasks import cancel_tasks, start_task, stop_if_cancelled
from gateway.web.live import LiveHub
from gateway.web.snapshot import (
    LinkView,
    NodeLive,
    SeatJson,
    SeatViews,
    Snapshot,
    build_snapshot,
    node_live,
    read_live,
    read_node_id,
)
from gateway.workbench.drafts import DraftStore

log = structlog.get_logger(__name__)

TICK_S = 0.25
MIRROR_EVERY_S = 1.0
MIRROR_TTL_S = 10  # a node not heard of for this long is gone from the other instances' pages
FEEDBACK_EVERY_S = 10.0


@dataclass
class Node:
    """Everything one controlled node runs: the home node, or one taken over from a dead instance."""

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
    drafts: DraftStore
    reports: ReportStore  # half-hour report buckets, fed by the outbox and the order system's feedback
    config: HotlineConfig  # the config in force
    seat_views: SeatViews  # its seats' views, each kept while its seat does not change
    # The tracker's outputs and the drafts saved, in one queue: one task handles both in order.
    outputs: asyncio.Queue[Output | DraftSaved] = field(default_factory=asyncio.Queue)
    resolution: tuple[float | None, int] = (None, 0)
    redis_ok: bool = False
    started: float = field(default_factory=time.monotonic)
    applied_sha: str = ""  # the .applied.json digest whose plan this process runs
    lease: NodeLease | None = None  # this node's lease in Redis (scale-out)
    controlling: bool = False  # holds the lease (or Redis is unreachable) and runs the AMI session
    standby: bool = False  # found the node's lease held by another instance
    live: NodeLive | None = None  # this node's live state, at most a tick old
    mirror: SeatJson = field(default_factory=SeatJson)  # its seats' JSON in its Redis mirror
    taken_over: bool = False  # run for a dead instance: tracked and recorded, shown by the home node
    # On the home node: the nodes this instance took over (by node id), and the other instances'
    # nodes as mirrored in Redis; the dashboard shows them all.
    others: dict[str, Node] = field(default_factory=dict)
    peers: list[NodeLive] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

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
    def node_id(self) -> str:
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

    def update_live(self) -> NodeLive:
        """Build this node's live state now: what its mirror carries and the dashboard adds up."""
        self.live = node_live(
            tracker=self.tracker,
            plan=self.plan,
            seats=self.seat_views,
            link=self.link(),
            now=time.monotonic(),
            wall=time.time(),
        )
        return self.live

    def snapshot(self) -> Snapshot:
        """What the dashboard shows: this node (while this instance controls it), the nodes it took
        over, and the other instances' nodes (from Redis), with the shared KPIs."""
        live = [self.live] if self.controlling and self.live is not None else []
        live += [node.live for node in self.others.values() if node.live is not None]
        return build_snapshot(
            home=self.node_id,
            link=self.link(),
            live=[*live, *self.peers],
            plan=self.plan,
            config=self.config,
            book=self.book,
            wall=dt.datetime.now(dt.UTC),
            resolution=self.resolution,
        )

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

    def start(self, *, takeover: bool = False) -> None:
        """Start the node's background tasks, each once.

        A node taken over (``takeover``) is controlled at once: the loop that took its lease renews
        it. Its spool stays with its own instance, so only the home node recovers a spool.
        """
        if self.tasks:
            raise RuntimeError(f"node {self.node_id} is already running")
        suffix = f"-{self.node_id}" if takeover else ""
        works: list[tuple[Awaitable[None], str]] = []
        self.taken_over = takeover
        if takeover:
            self.lease, self.controlling = None, True
            self.client.start()
        else:
            works += [(_control(self), "lease"), (self.outbox.run_recovery(self.stopping), "spool-recovery")]
        works += [
            (self.resync.run(), "resync"),
            (_pipeline(self), "records-pipeline"),
            (_ticker(self), "ticker"),
            (_sharer(self), "share"),
            (_backstop(self), "records-backstop"),
            (self.reports.run(), "reports"),
        ]
        self.tasks = [start_task(work, name + suffix) for work, name in works]

    async def stop(self) -> None:
        """Stop the tasks, hand the last outputs on, flush KPIs and free the lease."""
        self.stopping.set()
        await self.client.close()
        await cancel_tasks(self.tasks)
        await _flush_outputs(self)
        await self.kpi_store.flush()
        await self.reports.flush()
        if self.lease is not None and self.controlling:
            with contextlib.suppress(RedisError, OSError):
                await self.lease.release()  # a standby may take over at once


def _queue_rules(plan: RoutingPlan) -> dict[str, QueueRules]:
    return {q.name: QueueRules(q.service_level_s, q.wrapup_s) for q in plan.queues.values()}


def build_node(settings: Settings, redis: aioredis.Redis, holder: str) -> Node:
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
            plain_login_fallback=config.ami.plain_login,
            # The classes its manager.conf user has (rendered from the same constant).
            write_classes=frozenset(CONTROLLER_USER_WRITE.split(",")),
        )
    )
    outputs: asyncio.Queue[Output | DraftSaved] = asyncio.Queue()
    feed = TrackerFeed(tracker, outputs.put_nowait)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    book = KpiBook(service_level_s={q.name: q.service_level_s for q in plan.queues.values()})
    node = Node(
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
        drafts=DraftStore(redis),
        reports=ReportStore(
            redis, lambda: book.service_level_s, retention_days=settings.reports_retention_days
        ),
        config=config,
        seat_views=SeatViews(settings.node_id),
        outputs=outputs,
        lease=NodeLease(redis, settings.node_id, holder, ttl_ms=settings.lease_ttl_ms),
    )

    def on_event(_: object) -> None:
        metrics.events.inc()

    def on_state(state: ConnectionState) -> None:
        metrics.ami_up.set(1 if state.ready else 0)
        metrics.reconnects.set(state.reconnects)

    node.outbox.listeners.append(node.reports.add)
    client.add_event_listener(on_event)
    client.add_event_listener(feed)
    client.add_state_listener(on_state)
    return node


async def _control(node: Node) -> None:
    """Run the AMI session while this instance holds the node's lease; stand by otherwise."""
    assert node.lease is not None
    while True:
        stop_if_cancelled()
        try:
            held = await node.lease.acquire()
        except (RedisError, OSError):
            held = True  # nobody can take over without Redis: keep (or start) controlling
        node.standby = not held
        if held and not node.controlling:
            node.controlling = True
            node.client.start()
            log.info("node.controlling", node=node.node_id)
        elif not held and node.controlling:
            node.controlling = False
            await node.client.close()
            node.tracker.begin_resync()
            log.warning("node.lease_lost", node=node.node_id)
        await asyncio.sleep(node.lease.ttl_ms / 3000)


async def take_over(settings: Settings, redis: aioredis.Redis, holder: str, nodes: dict[str, Node]) -> None:
    """Control ``settings.node_id`` whenever its lease is free, until another instance holds it.

    The node runs in ``nodes`` (by node id) while this instance controls it.
    """
    lease = NodeLease(redis, settings.node_id, holder, ttl_ms=settings.lease_ttl_ms)
    runtime: Node | None = None
    # Give the node's own instance time to take its lease first: taking over is for dead ones.
    await asyncio.sleep(2 * lease.ttl_ms / 1000)
    try:
        while True:
            stop_if_cancelled()
            try:
                # Not renew(): a renewal late past the TTL (a busy loop) finds the lease expired,
                # and the node would be stopped and rebuilt from scratch although nobody else holds
                # it. acquire() renews it while ours and takes it back while free.
                held = await lease.acquire()
            except (RedisError, OSError):
                held = runtime is not None  # without Redis, keep what we have, take nothing new
            if held and runtime is None:
                runtime = build_node(settings, redis, holder)
                runtime.start(takeover=True)
                nodes[runtime.node_id] = runtime
                log.warning("node.taken_over", node=runtime.node_id)
            elif not held and runtime is not None:
                nodes.pop(runtime.node_id, None)
                await runtime.stop()
                runtime = None
                log.info("node.handed_back", node=settings.node_id)
            await asyncio.sleep(lease.ttl_ms / 3000)
    finally:
        if runtime is not None:
            nodes.pop(runtime.node_id, None)
            await runtime.stop()
            with contextlib.suppress(RedisError, OSError):
                await lease.release()


def _backstop(node: Node) -> Awaitable[None]:
    """Records of the calls this node's gateway never saw, from the PBX's log of ended calls."""
    return Backstop(node.resync, node.records, node.outbox, node.redis).run()


async def _pipeline(node: Node) -> None:
    """Tracker outputs -> KPIs and call records, in batches; never blocks the AMI path."""
    while True:
        stop_if_cancelled()
        batch = [await node.outputs.get()]
        await _handle_outputs(node, batch)


async def _flush_outputs(node: Node) -> None:
    batch = []
    while not node.outputs.empty():
        batch.append(node.outputs.get_nowait())
    if batch:
        await _handle_outputs(node, batch)


async def _handle_outputs(node: Node, batch: list[Output | DraftSaved]) -> None:
    while not node.outputs.empty():
        batch.append(node.outputs.get_nowait())
    outputs = [o for o in batch if not isinstance(o, DraftSaved)]
    for observation in node.recorder.observe_outputs(outputs):
        node.kpi_store.add(node.book.record(observation))
    drafts = await _drafts_of(node, [call_id for o in outputs if (call_id := _drafted(o))])
    records = node.records.records(outputs, time.monotonic(), drafts)
    # After the records of this batch: a draft saved as its call ended is in that call's final
    # record already (read above), or amends it now.
    records += [r for o in batch if isinstance(o, DraftSaved) and (r := node.records.draft_saved(o))]
    if records:
        via = await node.outbox.append_many(records)
        log.info("records.appended", count=len(records), via=via.value)


def _drafted(output: Output) -> str | None:
    """The call whose record carries the seats' draft: the final one, and the interim one for
    110/119/120/122."""
    if isinstance(output, CallEnded):
        return output.call.call_id
    if isinstance(output, CallUpdate) and output.kind is UpdateKind.EMERGENCY_HANDOVER:
        return output.call_id
    return None


async def _drafts_of(node: Node, call_ids: list[str]) -> dict[str, WorkOrderDraft]:
    """The seats' drafts of calls that just ended; without Redis their records go without them."""
    if not call_ids:
        return {}
    try:
        return await node.drafts.get_many(call_ids)
    except (RedisError, OSError) as exc:
        log.warning("records.drafts_unreadable", calls=len(call_ids), error=str(exc))
        return {}


async def _ticker(node: Node) -> None:
    while True:
        stop_if_cancelled()
        now, wall = time.monotonic(), dt.datetime.now(dt.UTC)
        for output in node.tracker.tick(now, wall):
            node.feed.emit(output)
        for observation in node.recorder.observe(node.tracker.calls.values()):
            node.kpi_store.add(node.book.record(observation))
        node.metrics.observe_tracker(node.tracker, now)
        node.update_live()
        if not node.taken_over:  # one picture per instance: the home node's
            snapshot = node.snapshot()
            node.hub.publish(snapshot)
            # The chart's calls waiting: every node's, as the page shows them (not one node's).
            waiting = sum(q.waiting for q in snapshot.queues)
            node.kpi_store.add_gauge(node.book.sample("waiting", wall.timestamp(), waiting))
        await asyncio.sleep(TICK_S)


async def _sharer(node: Node) -> None:
    """Every second, exchange state with the other instances; every few seconds, read the order
    system's feedback and follow a config applied by `hotline-gateway reload`."""
    next_feedback = 0.0
    while True:
        stop_if_cancelled()
        wall = dt.datetime.now(dt.UTC)
        node.book.prune(wall.timestamp())
        node.redis_ok = await _share(node, wall.timestamp())
        if time.monotonic() >= next_feedback:
            next_feedback = time.monotonic() + FEEDBACK_EVERY_S
            if not node.taken_over:
                await _refresh_resolution(node, wall)
            node.follow_applied()
        await asyncio.sleep(MIRROR_EVERY_S)


async def _share(node: Node, now: float) -> bool:
    """Exchange state with the other instances through Redis: KPI increments out, this node's live
    state out (while controlling it; only its own part, never what it shows of others). The home
    node also reads the KPI buckets and the live state of the nodes this instance does not run."""
    if not await node.kpi_store.flush():
        return False
    try:
        if node.controlling and node.live is not None:
            async with node.redis.pipeline(transaction=False) as pipe:
                pipe.set(keys.live(node.node_id), node.live.to_json(node.mirror), ex=MIRROR_TTL_S)
                pipe.zadd(keys.LIVE_NODES, {node.node_id: now})
                await pipe.execute()
        if node.taken_over:
            return True
        await node.kpi_store.refresh(node.book, now)
        local = {*node.others, *([node.node_id] if node.controlling else [])}
        listed = await node.redis.zrangebyscore(keys.LIVE_NODES, now - MIRROR_TTL_S, "+inf")
        names = [
            n
            for raw in listed
            if isinstance(raw, bytes) and (n := read_node_id(raw, key=keys.LIVE_NODES)) and n not in local
        ]
        values = await node.redis.mget([keys.live(n) for n in names]) if names else []
        await node.redis.zremrangebyscore(keys.LIVE_NODES, "-inf", now - 3600)  # long gone
    except (RedisError, OSError):
        return False
    peers = [read_live(keys.live(name), v, node=name) for name, v in zip(names, values, strict=True) if v]
    node.peers = [p for p in peers if p is not None]
    return True


async def _refresh_resolution(node: Node, wall: dt.datetime) -> None:
    midnight = wall.astimezone(CHINA_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        rates = await node.feedback.rates(midnight, wall)
    except (RedisError, OSError):
        return
    covered = rates.counts.get("resolution:resolved", 0) + rates.counts.get("resolution:unresolved", 0)
    node.resolution = (rates.resolution_rate, covered)
