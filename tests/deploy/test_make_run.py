"""`make run` (scripts/run_local.py) stops cleanly: SIGTERM, even repeated during the cleanup,
leaves no process it started (nor their children) running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.servers import ROOT, free_port

pytestmark = pytest.mark.timeout(240)


def session_members(session_ids: set[int]) -> set[int]:
    """Processes whose session is one of `session_ids` (each child leads its own session)."""
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        state, sid = fields[0], int(fields[3])
        if sid in session_ids and state != "Z":
            members.add(int(entry.name))
    return members


def test_sigterm_stops_every_process_make_run_started(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_URL": f"sqlite:///{tmp_path}/demo.sqlite3",
                "RUN_WEB_PORT": str(free_port()), "RUN_STRIPE_PORT": str(free_port()),
                "RUN_LOCALSTRIPE_PORT": str(free_port()),
                "RUN_SUPPLIER_PORT": str(free_port()), "RUN_LOG_DIR": str(tmp_path / "logs"),
                "RUN_STRIPE_FROM_SCRATCH": "1", "PYTHONUNBUFFERED": "1"})
    run = subprocess.Popen([sys.executable, "scripts/run_local.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = []
    deadline = time.monotonic() + 180
    try:
        for line in run.stdout:
            output.append(line)
            if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
                break
        text = "".join(output)
        assert "Reserve & Charge is running" in text, text
        children = {int(pid) for pid in re.findall(r"pid (\d+)", text)}
        assert len(children) == 5  # localstripe, the Stripe stand-in, the supplier, web, worker
        time.sleep(2)  # the worker's cluster has forked its processes
        started = session_members(children)
        assert len(started) > len(children)  # the cluster's own processes are there too

        run.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        run.send_signal(signal.SIGTERM)  # a second signal during the cleanup
        run.send_signal(signal.SIGINT)
        rest, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)

    assert "stopped." in rest, rest
    assert "Traceback" not in rest
    assert session_members(children) == set()
