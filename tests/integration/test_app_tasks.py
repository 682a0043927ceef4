"""The composition root starts every background task exactly once, and stops them all.

A task registered twice does its work twice (the live hub's delivery once ran twice, so the
dashboard's 4-per-second cap was really 8): each task has one owner and one registration.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from aiohttp.test_utils import TestServer

from gateway.app import init_app
from gateway.demo import demo_environment
from gateway.localredis import LocalRedis, free_port
from gateway.settings import Settings
from gateway.web.api import NODE
from tests.conftest import ROOT
from tests.support.polling import until

EXPECTED = {
    "lease",
    "spool-recovery",
    "resync",
    "records-pipeline",
    "ticker",
    "share",
    "records-backstop",
    "reports",
    "dispatcher-0",
    "dispatcher-1",
    "dispatcher-0-heartbeat",
    "dispatcher-1-heartbeat",
    "transfers",
    "callbacks",
    "live-hub",
    "ami-session",
    "seat-desk",
}


def _named_tasks() -> Counter[str]:
    return Counter(t.get_name() for t in asyncio.all_tasks() if not t.get_name().startswith("Task-"))


async def test_each_background_task_runs_once(redis_server: LocalRedis, tmp_path: Path) -> None:
    config = ROOT / "hotline_merge.yaml"
    env = demo_environment({"HOTLINE_REDIS_URL": redis_server.url}, config)
    env.update({
        "HOTLINE_AMI_PORT": str(free_port()),  # nobody listens: the tasks run all the same
        "HOTLINE_SPOOL_DIR": str(tmp_path / "spool"),
        "HOTLINE_DIALPLANS_DIR": str(tmp_path / "dialplans"),
    })  # fmt: skip
    app = init_app(Settings.from_env(env, config_path=config))
    before = _named_tasks()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        await until(lambda: app[NODE].controlling, "the node controlled (its AMI session started)")
        running = _named_tasks() - before
        assert set(running) == EXPECTED
        assert [name for name, count in running.items() if count > 1] == []
        assert len(app[NODE].tasks) == len({t.get_name() for t in app[NODE].tasks})
    finally:
        await server.close()
    assert set(_named_tasks()) & EXPECTED == set()
