"""Issue 9, item 4: the system fault suite. The real processes on 127.0.0.1 (redis-server, the
order sink, the PBX simulator with traffic, the gateway, dispatchers), one fault each, and the
same accounting every time: every citizen call the simulator ended is exactly one final work
order, none lost, none duplicated, and the time it took (``bench/harness/system.py``).

Short faults here (the order system down for 5 s); ``bench/faults.py`` runs them longer and
prints the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness.system import FAULTS, TEST, Fault, run_fault, summary


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
async def test_every_call_is_exactly_one_work_order_after(fault: Fault, tmp_path: Path) -> None:
    result = await run_fault(fault, tmp_path, TEST)
    print(result)
    assert result.calls >= 10, "enough traffic to mean something"
    assert (result.lost, result.duplicated, result.dead_letters) == (0, 0, 0), summary([result])
    assert result.recovery_s is not None
    assert result.recovery_s < 15, "a supervisor-restarted gateway waits out its old lease (5 s), no longer"
    if fault.name.startswith("gateway"):
        assert result.from_pbx_log > 0, "calls that ran while no gateway watched came from the PBX's log"
