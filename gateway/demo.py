"""``hotline-gateway demo``: the whole product on one machine, with the embedded PBX simulator.

Starts, on 127.0.0.1 only: Redis (a private redis-server unless HOTLINE_REDIS_URL is set), the
reference order system (SQLite, posting resolutions and follow-ups back), the PBX simulator with
the shipped merge config and Poisson traffic (Beijing's 12345 peaks at about 2 calls/s), and the
gateway with its API and dashboard. Secrets the environment does not give are made up for this
run. It prints the dashboard URL and the supervisor token, and Ctrl-C stops everything, newest first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from aiohttp import web

from gateway.app import init_app
from gateway.localredis import LocalRedis, free_port
from gateway.logging import configure_logging
from gateway.merge.loader import load_config
from gateway.ordersink.sink import FeedbackPoster, OrderSink
from gateway.settings import ENV_FEEDBACK_TOKEN, ENV_REDIS_URL, ENV_ROLE_TOKENS, Settings, seat_tokens
from gateway.sim.cli import ServiceOptions, SimulatorService
from gateway.sim.day import start_of, summary


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("hotline_merge.yaml"), help="merge config")
    parser.add_argument(
        "--http-port", type=int, default=8080, help="dashboard and API port (default: %(default)s)"
    )
    parser.add_argument(
        "--load", type=float, default=1.0,
        help="calls as a share of what the rostered seats answer at target, over the day's curve (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--start", default=None, help="Beijing time of day to start the day at, HH:MM (default: now)"
    )
    parser.add_argument(
        "--day-minutes", type=float, default=24 * 60,
        help="minutes the demo's day takes: shifts and the traffic curve run that much faster; calls do not (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--time-scale", type=float, default=1.0,
        help="real seconds per simulated second: below 1 everything on the PBX runs faster (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=None, help="replay the same traffic")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument(
        "--data", type=Path, default=None, help="keep Redis, orders and spool here (default: a temp dir)"
    )


def demo_environment(base: Mapping[str, str], config_path: Path) -> dict[str, str]:
    """The process environment plus made-up secrets for whatever it does not set."""
    config = load_config(config_path)
    env = dict(base)
    for name in (
        config.ami.secret_env,
        config.ami.admin_secret_env,
        config.order_system.token_env,
        ENV_FEEDBACK_TOKEN,
        ENV_ROLE_TOKENS["supervisor"],
        ENV_ROLE_TOKENS["admin"],
    ):
        env.setdefault(name, secrets.token_hex(16))
    # One token per roster seat: a seat token acts only for its own seat.
    env.setdefault(
        ENV_ROLE_TOKENS["seat"],
        ",".join(f"{ext}:{secrets.token_hex(16)}" for g in config.seats for ext in g.extension_list()),
    )
    return env


def run(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_demo(args))
    return 0


async def _demo(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    async with demo_stack(args) as (url, env):
        token = env[ENV_ROLE_TOKENS["supervisor"]]
        seat_token = {seat: t for t, seat in seat_tokens(env[ENV_ROLE_TOKENS["seat"]]).items()}.get("1001")
        print(f"\n12345 hotline demo is running.\n  dashboard:  {url}/dashboard\n  login token: {token}")
        print(f"  seat 1001's workbench: {url}/seat  (log in with its token: {seat_token})")
        print("  API:        curl -H 'Authorization: Bearer <token>' " + url + "/api/queues")
        print("Ctrl-C stops everything.\n", flush=True)
        await stop.wait()
    print("demo stopped.")


@contextlib.asynccontextmanager
async def demo_stack(args: argparse.Namespace) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The demo's processes in this one; yields the gateway's URL and the environment (tokens)."""
    with contextlib.ExitStack() as sync_stack:
        data = args.data or Path(
            sync_stack.enter_context(tempfile.TemporaryDirectory(prefix="hotline-demo-"))
        )
        data.mkdir(parents=True, exist_ok=True)
        env = demo_environment(os.environ, args.config)
        if ENV_REDIS_URL not in env:
            redis = sync_stack.enter_context(LocalRedis(data_dir=data / "redis"))
            env[ENV_REDIS_URL] = redis.url
        config = load_config(args.config)
        gateway_port = args.http_port
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        feedback = FeedbackPoster(gateway_url, env[ENV_FEEDBACK_TOKEN], delay_s=5.0)
        sink = OrderSink(data / "orders.sqlite3", env[config.order_system.token_env], feedback=feedback)
        start = start_of(None, args.start)
        options = ServiceOptions(
            config=args.config,
            port=free_port(),
            seed=args.seed,
            time_scale=args.time_scale,
            day_start=start,
            day_s=args.day_minutes * 60,
            load=args.load,
        )
        simulator = SimulatorService(options, env)
        assert simulator.day is not None
        print(summary(simulator.day.staffing_check(start.date())), flush=True)
        await sink.start()
        await simulator.start()
        env.update(
            {
                "HOTLINE_AMI_HOST": "127.0.0.1",
                "HOTLINE_AMI_PORT": str(simulator.sim.port),
                "HOTLINE_ORDER_URL": sink.url,
                "HOTLINE_HTTP_HOST": "127.0.0.1",
                "HOTLINE_HTTP_PORT": str(gateway_port),
                "HOTLINE_SPOOL_DIR": str(data / "spool"),
                "HOTLINE_DIALPLANS_DIR": str(data / "dialplans"),
            }
        )
        settings = Settings.from_env(env, config_path=args.config)
        runner = web.AppRunner(init_app(settings), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", gateway_port).start()
            yield gateway_url, env
        finally:
            await runner.cleanup()
            await simulator.stop()
            await sink.stop()
            await feedback.close()
