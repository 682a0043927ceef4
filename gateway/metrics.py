"""Prometheus metrics of one gateway process, on a registry of its own (tests run several apps).

Counters are bumped where things happen; gauges about live state are set from the tracker on
every tick, so /metrics never walks the call state itself.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.calls.model import SeatState
from gateway.calls.tracker import Tracker
from gateway.readback import register as register_readback


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        register_readback(registry)  # values refused when read back from Redis
        self.events = Counter("hotline_ami_events", "AMI events processed by the tracker", registry=registry)
        self.reconnects = Gauge(
            "hotline_ami_reconnects", "AMI sessions started after a loss", registry=registry
        )
        self.ami_up = Gauge(
            "hotline_ami_up", "1 while the AMI session is logged in and ready", registry=registry
        )
        self.stale = Gauge("hotline_state_stale", "1 while live state may be out of date", registry=registry)
        self.action_seconds = Histogram(
            "hotline_ami_action_seconds",
            "AMI action latency, request to complete answer",
            ["action", "outcome"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.waiting = Gauge(
            "hotline_calls_waiting", "calls waiting in a queue", ["queue"], registry=registry
        )
        self.longest_wait = Gauge(
            "hotline_longest_wait_seconds", "longest current wait in a queue", ["queue"], registry=registry
        )
        self.seats = Gauge("hotline_seats", "seats by state", ["state"], registry=registry)
        self.live_calls = Gauge("hotline_calls_live", "citizen calls in progress", registry=registry)

    def observe_tracker(self, tracker: Tracker, now: float) -> None:
        for name, figures in tracker.queues.items():
            self.waiting.labels(name).set(len(figures.waiting))
            self.longest_wait.labels(name).set(figures.longest_wait_s(now))
        states = [seat.state for seat in tracker.seats.values()]
        for state in SeatState:
            self.seats.labels(state.value).set(states.count(state))
        self.live_calls.set(len(tracker.calls))
        self.stale.set(1 if tracker.stale else 0)
