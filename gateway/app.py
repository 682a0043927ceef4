"""The composition root: ``init_app(settings)`` builds every part and hands each its narrow
dependencies. Only the commands (``run``, ``demo``) and tests import it; nothing it builds does.

Parts and their background tasks, each registered once (``app.cleanup_ctx``) and reachable
through one ``web.AppKey``:
- Redis (``_redis_lifetime``): the shared client, KPI buckets loaded at start;
- the home node (``gateway.node``: AMI session, tracker, records pipeline, ticker, Redis sharing);
- the dispatchers to the order system, and the watchers of nodes this instance may take over;
- the transfer and callback services (``gateway.transfers``, ``gateway.callbacks``), given a sender,
  a read-only tracker view, the current plan and Redis (``gateway.ports``);
- the supervisors' listen / whisper / barge (``gateway.supervise``), audited like every change;
- the web: identity (``gateway.web.auth``: environment tokens, named credentials and sessions in
  Redis, throttling), the audit middleware, API, seat control (``gateway.queues.control``),
  feedback routes (which also tell the reports), dashboard + live hub, the seats' workbench,
  reports (``gateway.reports``, fed by the node's outbox).
Nothing here is needed for a citizen to reach a seat: Asterisk's dialplan does that alone.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from gateway.audit import AuditLog
from gateway.callbacks.http import setup_callbacks
from gateway.callbacks.service import CallbackService
from gateway.credentials import CredentialStore
from gateway.lease import instance_id, release_instance_id
from gateway.node.runtime import Node, build_node, take_over
from gateway.queues.control import SeatControl
from gateway.records.client import OrderSystemClient
from gateway.records.dispatcher import Dispatcher
from gateway.records.feedback import feedback_routes
from gateway.redisconn import connect
from gateway.sessions import SessionStore
from gateway.settings import Settings
from gateway.supervise.http import setup_supervise
from gateway.supervise.service import SuperviseService
from gateway.tasks import cancel_tasks, start_task
from gateway.transfers.http import setup_transfers
from gateway.transfers.service import TransferService
from gateway.web.api import NODE, NODES, setup_api
from gateway.web.audit import audit_middleware, setup_audit
from gateway.web.auth import AUTH_KEY, Authenticator, Throttle
from gateway.web.dashboard import setup_dashboard
from gateway.web.errors import error_middleware
from gateway.web.reports import setup_reports
from gateway.web.seat import setup_seat
from gateway.workbench.categories import CategoryTree, load_tree, tree_path
from gateway.workbench.desk import Desk

log = structlog.get_logger(__name__)


def init_app(settings: Settings, *, dispatchers: int = 2) -> web.Application:
    # The audit middleware sits outside the error middleware: it sees every answer as a status.
    app = web.Application(middlewares=[audit_middleware, error_middleware])
    # A bad category tree stops the start, naming its file and line, like a bad merge config.
    tree = load_tree(tree_path(settings.config, settings.config_path))
    redis = connect(settings.redis_url, settings.redis_sentinels, settings.redis_master)
    holder = instance_id(settings.spool_dir)  # a restarted instance takes its lease back at once
    node = build_node(settings, redis, holder)
    app[NODE] = node
    app[NODES] = node.others  # filled by the take-over watchers
    app[AUTH_KEY] = Authenticator(
        role_tokens=settings.role_tokens,
        seat_tokens=settings.seat_tokens,
        credentials=CredentialStore(redis),
        sessions=SessionStore(redis),
        throttle=Throttle(node.registry),
        session_secret=settings.session_secret,
    )
    audit = AuditLog(redis)
    setup_audit(app, audit)

    transfers = TransferService(
        send=node.send,
        tracker=node.tracker,
        settle=node.tracker.settle_handover,
        plan=lambda: node.plan,
        config=settings.config,
        redis=redis,
        node_id=node.node_id,
    )
    callbacks = CallbackService(
        send=node.send,
        tracker=node.tracker,
        link_ready=lambda: node.client.state.ready,
        records=node.records,
        outbox=node.outbox,
        redis=redis,
        general_queue=settings.config.general_queue.name,
        numbers=settings.config.callback.numbers,
        node_id=node.node_id,
    )
    # Services listen to AMI after the tracker, so they read the state the event made.
    node.client.add_event_listener(transfers)
    node.client.add_event_listener(callbacks)
    node.records.add_final_listener(callbacks.on_final_record)

    app.cleanup_ctx.extend(
        [
            _instance_lifetime(holder),
            _redis_lifetime,
            _node_lifetime,
            _dispatchers_lifetime(dispatchers),
            _takeover_lifetime(holder),
        ]
    )
    setup_api(app, SeatControl(node.send, lambda: node.plan))
    setup_transfers(app, transfers)
    setup_callbacks(app, callbacks, lambda: node.plan)
    supervise = SuperviseService(node.send, lambda call_id: node.tracker.calls.get(call_id), audit)
    setup_supervise(app, supervise, settings.supervisor_extensions)
    setup_dashboard(app, node.hub)
    setup_seat(app, _desk(settings, node, transfers, callbacks, tree), node, tree)
    setup_reports(app, node.reports, lambda: node.config)
    token_env = settings.feedback_token_env
    app.add_routes(
        feedback_routes(
            node.feedback,
            token_env,
            environ={token_env: settings.feedback_token},
            on_feedback=node.reports.apply_feedback,
        )
    )
    return app


def _instance_lifetime(holder: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """Keep this instance's id file locked while it runs (``gateway.lease.instance_id``)."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        yield
        release_instance_id(holder)

    return lifetime


def _desk(
    settings: Settings, node: Node, transfers: TransferService, callbacks: CallbackService, tree: CategoryTree
) -> Desk:
    """The seats' workbench views, with their own order-system client (a short timeout for the pop)."""
    config = settings.config
    token_env = config.order_system.token_env
    history = OrderSystemClient(
        settings.order_url,
        config.workbench.history_timeout_s,
        token_env,
        connections=8,
        environ={token_env: settings.order_token},
    )

    def link() -> tuple[bool, str]:
        view = node.link()
        return view.stale, view.reason

    return Desk(
        tracker=node.tracker,
        plan=lambda: node.plan,
        config=config,
        tree=tree,
        transfers=transfers,
        pending_callbacks=callbacks.pending,
        history=history,
        publish=node.hub.publish_to,
        topics=node.hub.topics,
        link=link,
    )


async def _redis_lifetime(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE]
    try:
        node.redis_ok = bool(await node.redis.ping())
        loaded = await node.kpi_store.load(node.book, time.time())
        log.info("kpi.loaded", buckets=loaded)
    except (RedisError, OSError) as exc:
        # Calls and records go on without Redis (records to the spool); figures restart from zero.
        log.warning("redis.unreachable_at_start", error=str(exc))
    yield
    await node.redis.aclose()


async def _node_lifetime(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE]
    node.start()
    yield
    await node.stop()


def _dispatchers_lifetime(count: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """Deliver the outbox (a stream shared by every node's records) to the order system."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        node = app[NODE]
        settings, config = node.settings, node.settings.config
        order_client = OrderSystemClient(
            settings.order_url,
            config.order_system.timeout_s,
            config.order_system.token_env,
            environ={config.order_system.token_env: settings.order_token},
        )
        async with order_client:
            workers = [
                Dispatcher(node.redis, order_client, consumer=f"{node.node_id}-{i}", metrics=None)
                for i in range(count)
            ]
            tasks = [start_task(worker.run(), f"dispatcher-{i}") for i, worker in enumerate(workers)]
            try:
                yield
            finally:
                for worker in workers:
                    worker.stop()
                await cancel_tasks(tasks)

    return lifetime


def _takeover_lifetime(holder: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """Watch the other nodes this instance may take over (HOTLINE_TAKEOVER_NODES)."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        home: Node = app[NODE]
        tasks = [
            start_task(
                take_over(
                    replace(home.settings, node_id=n.node_id, ami_host=n.host, ami_port=n.port),
                    home.redis,
                    holder,
                    app[NODES],
                ),
                f"takeover-{n.node_id}",
            )
            for n in home.settings.takeover_nodes
        ]
        yield
        await cancel_tasks(tasks)

    return lifetime
