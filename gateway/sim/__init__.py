"""The embedded PBX: an AMI server over TCP that behaves like Asterisk 22 on the recorded traces.

It runs the dialplan and queues rendered from hotline_merge.yaml (``plan.py``) with a model of the
channels, Local pairs, dialplan, app_queue, bridges, transfers and ConfBridge that Asterisk would
run (``pbx.py`` with ``pbx_vars.py``, ``originate.py`` and ``hangup_handlers.py``; ``apps.py``,
``queues.py`` with ``queue_engine.py``, ``queue_ring.py`` and ``queue_callers.py``; ``bridge.py``,
``transfer.py``, ``confbridge.py``, ``dial.py``), simulated people (``people.py``, ``traffic.py``), Asterisk's manager protocol
(``manager.py``, ``actions/``), a lifecycle with faults (``server.py``, ``control.py``) and the
``simulate`` command (``cli.py``). Everything runs on one simulated clock (``clock.py``): real time,
scaled time, or manual time for deterministic tests.

It deliberately does less than Asterisk: no media (prompts only take their time, nothing is
recorded), no SIP (Local channels, and ``PJSIP/...`` dials reach simulated phones), a dialplan
subset, app_queue without announcements or rules, only the core, app_queue and ConfBridge on AMI.
README.md in this folder lists every such gap; ``tests/conformance`` proves the rest against the
traces.
"""

from gateway.sim.cli import ServiceOptions, SimulatorService
from gateway.sim.people import CallerBehaviour, Endpoints, RemoteParties, SeatBehaviour
from gateway.sim.plan import SimPlan, load_asterisk_conf, plan_from_config
from gateway.sim.server import SimOptions, Simulator
from gateway.sim.traffic import TrafficGenerator

__all__ = [
    "CallerBehaviour",
    "Endpoints",
    "RemoteParties",
    "SeatBehaviour",
    "ServiceOptions",
    "SimOptions",
    "SimPlan",
    "Simulator",
    "SimulatorService",
    "TrafficGenerator",
    "load_asterisk_conf",
    "plan_from_config",
]
