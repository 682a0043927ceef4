"""``hotline-gateway run``: the gateway for one Asterisk node, from hotline_merge.yaml and the environment."""

from __future__ import annotations

import argparse
import gc

from aiohttp import web

from gateway.app import init_app
from gateway.logging import configure_logging
from gateway.settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, help="merge config (default: $HOTLINE_CONFIG or hotline_merge.yaml)"
    )
    parser.add_argument("--dispatchers", type=int, default=2, help="order-system dispatchers in this process")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(config_path=args.config)
    configure_logging(settings.log_level)
    app = init_app(settings, dispatchers=args.dispatchers)
    # Modules, config and app live as long as the process (some 80,000 objects): frozen out of the
    # collector's way, each full collection at a province's scale walks a third fewer objects.
    gc.collect()
    gc.freeze()
    # A container runtime waits about 10 s after SIGTERM: finish well within it.
    web.run_app(
        app, host=settings.http_host, port=settings.http_port, print=None, access_log=None, shutdown_timeout=5
    )
    return 0
