"""The fault schedule: three lanes run side by side, so that faults overlap as they do in real
life, while two faults of one kind never undo each other (one Stripe stand-in, one supplier):

- infrastructure: SIGKILL a gunicorn worker; SIGKILL a worker cluster (the supervisor restarts
  it); KILL CONNECTION random database sessions; restart Redis; stop MariaDB for at least 5 s;
- Stripe: down (connections refused and dropped), hanging (answers after the client's timeout),
  500s, 409 while the first request of a key is still executing, slow, and "charged but the
  answer was lost";
- supplier: down (connections dropped unanswered), flapping (5xx and 429).

Every kind runs at least once in a run; longer runs cycle through them again in a new order.
Each fault is logged with its time since the start of the load (faults.jsonl)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import MySQLdb

from chaos.processes import children, port_open
from chaos.topology import DATABASE, Topology

MARIADB_DOWN_SECONDS = 6.0


@dataclass(frozen=True)
class Fault:
    name: str
    seconds: float  # how long it lasts (0: instantaneous)
    inject: Callable[[Topology, random.Random], str]  # returns what was done
    heal: Callable[[Topology], None] | None = None


# --- infrastructure --------------------------------------------------------------------------

def _sigkill_web_worker(topology: Topology, rng: random.Random) -> str:
    web = rng.choice(topology.webs)
    workers = children(web.pid)
    if not workers:
        return f"{web.name}: no worker to kill"
    pid = rng.choice(workers)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return f"{web.name} gunicorn worker {pid} (the master starts another)"


def _sigkill_cluster(topology: Topology, rng: random.Random) -> str:
    i = rng.randrange(len(topology.clusters))
    cluster = topology.clusters[i]
    cluster.kill()
    return f"{cluster.name} (pid {cluster.pid} and its cluster processes; the supervisor restarts it)"


def _kill_db_sessions(topology: Topology, rng: random.Random) -> str:
    try:
        ids = [row[0] for row in topology.mariadb.sql(
            "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()", DATABASE)]
        chosen = rng.sample(ids, min(3, len(ids)))
        for session in chosen:
            with contextlib.suppress(MySQLdb.OperationalError):  # it may have ended meanwhile
                topology.mariadb.sql(f"KILL CONNECTION {int(session)}")
    except MySQLdb.OperationalError as exc:
        return f"not possible now: {exc}"
    return f"KILL CONNECTION {len(chosen)} of {len(ids)} sessions"


def _restart_redis(topology: Topology, rng: random.Random) -> str:
    topology.redis.stop()
    time.sleep(2)
    topology.redis.start()
    return "killed, down 2 s, restarted empty (queue, cache and breaker state lost)"


def _stop_mariadb(topology: Topology, rng: random.Random) -> str:
    topology.mariadb.stop()
    down_since = time.monotonic()
    while port_open(topology.mariadb.port):
        time.sleep(0.05)
    time.sleep(max(0.0, MARIADB_DOWN_SECONDS - (time.monotonic() - down_since)))
    topology.mariadb.start()
    return f"shut down, port closed {time.monotonic() - down_since:.1f} s, restarted"


# --- Stripe and the supplier -------------------------------------------------------------------

def _stripe(**modes: object) -> Callable[[Topology, random.Random], str]:
    def inject(topology: Topology, rng: random.Random) -> str:
        topology.stripe_control(**modes)
        return json.dumps(modes)

    return inject


def _stripe_heal(topology: Topology) -> None:
    topology.stripe_control(reset=True)


def _supplier(mode: str) -> Callable[[Topology, random.Random], str]:
    def inject(topology: Topology, rng: random.Random) -> str:
        topology.supplier_control(override=mode)
        return f"every endpoint: {mode}"

    return inject


def _supplier_heal(topology: Topology) -> None:
    topology.supplier_control(override=None)


LANES: dict[str, tuple[tuple[Fault, ...], float]] = {  # lane -> (faults, longest gap between two)
    "infrastructure": ((
        Fault("sigkill web worker", 0, _sigkill_web_worker),
        Fault("sigkill worker cluster", 0, _sigkill_cluster),
        Fault("kill db connections", 0, _kill_db_sessions),
        Fault("restart redis", 0, _restart_redis),
        Fault("stop mariadb", 0, _stop_mariadb),
    ), 12.0),
    "stripe": ((
        Fault("stripe down", 5, _stripe(down=True), _stripe_heal),
        Fault("stripe hanging", 5, _stripe(delay_seconds=8.0), _stripe_heal),
        Fault("stripe 500s", 5, _stripe(fail_with=[500, "api_error", ""]), _stripe_heal),
        Fault("stripe 409 in flight", 6, _stripe(execution_seconds=4.0), _stripe_heal),
        Fault("stripe slow", 6, _stripe(delay_seconds=1.5), _stripe_heal),
        Fault("stripe answers lost", 4, _stripe(lose_answers=True), _stripe_heal),
    ), 5.0),
    "supplier": ((
        Fault("supplier down", 6, _supplier("down"), _supplier_heal),
        Fault("supplier flapping", 8, _supplier("flap:0.5"), _supplier_heal),
    ), 15.0),
}


class FaultSchedule:
    def __init__(self, topology: Topology, *, log: Path, seconds: float, seed: int, started: float) -> None:
        self.topology, self.log, self.seconds, self.started = topology, log, seconds, started
        self.rng = random.Random(seed)
        self.injected: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run_lane, args=(lane, random.Random(self.rng.random())),
                                          name=f"faults-{lane}", daemon=True) for lane in LANES]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout)

    def _note(self, fault: Fault, detail: str, at: float) -> None:
        entry = {"t": round(at - self.started, 1), "fault": fault.name, "detail": detail}
        if fault.seconds:
            entry["detail"] = f"{detail} for {fault.seconds:g} s"
        with self._lock:
            self.injected.append(entry)
            with self.log.open("a") as out:
                out.write(json.dumps(entry) + "\n")
        print(f"  t+{entry['t']:>5}s  fault: {fault.name}: {entry['detail']}", flush=True)

    def _run_lane(self, lane: str, rng: random.Random) -> None:
        faults, longest_gap = LANES[lane]
        window_start, window_end = self.started + 0.05 * self.seconds, self.started + 0.8 * self.seconds
        busy = sum(f.seconds for f in faults)
        gap = min(max((window_end - window_start - busy) / len(faults), 0.5), longest_gap)
        at = window_start + rng.uniform(0, gap)
        for cycle in range(1000):
            for fault in rng.sample(faults, len(faults)):
                if cycle and at + fault.seconds > window_end:
                    return  # every kind ran at least once (the first cycle), and the window is over
                time.sleep(max(0.0, at - time.monotonic()))
                injected_at = time.monotonic()
                try:
                    detail = fault.inject(self.topology, rng)
                except Exception as exc:  # a fault that could not be caused is logged, not fatal
                    detail = f"could not inject: {type(exc).__name__}: {exc}"
                self._note(fault, detail, injected_at)
                if fault.seconds:
                    time.sleep(max(0.0, injected_at + fault.seconds - time.monotonic()))
                    if fault.heal is not None:
                        fault.heal(self.topology)
                at = max(time.monotonic(), at) + rng.uniform(0.5, 1.0) * gap
