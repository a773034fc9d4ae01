"""Real processes on loopback for the chaos run: a supervised child process, and a MariaDB and a
Redis of the run's own — the machine's shared ones are never stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import MySQLdb

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def wait_for_port(port: int, *, timeout: float, proc: subprocess.Popen | None = None, name: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name or proc.args} exited with {proc.returncode} before listening on {port}")
        if port_open(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name}: nothing listens on port {port} after {timeout:g} s")


def children(pid: int) -> list[int]:
    """The direct children of `pid` (from /proc: no psutil needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class PortTaken(RuntimeError):
    pass


def start_on_a_free_port(make: Callable[[int], Process], *, attempts: int = 5) -> Process:
    """Start `make(port)` on a port free now, again on another one if it was taken meanwhile."""
    for attempt in range(attempts):
        try:
            return make(free_port()).start()
        except PortTaken:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class Process:
    """One child process in its own process group, logging to a file; restartable."""

    def __init__(self, name: str, cmd: Sequence[str], *, env: dict[str, str], log_dir: Path,
                 port: int | None = None, cwd: Path = ROOT) -> None:
        self.name, self.cmd, self.env, self.port, self.cwd = name, list(cmd), env, port, cwd
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self, *, timeout: float = 60) -> Process:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.popen = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        log.close()
        if self.port is not None:
            wait_for_port(self.port, timeout=timeout, proc=self.popen, name=self.name)
            # Someone else may have taken the port since it was picked (other runs share the
            # machine): then what answers is theirs, and ours exits with "address in use".
            time.sleep(0.3)
            if self.popen.poll() is not None:
                raise PortTaken(f"{self.name} exited ({self.popen.returncode}) after port {self.port} opened")
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: a crash, nothing cleans up."""
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, *, grace: float = 20) -> None:
        """SIGTERM to the process (it stops its own children), then SIGKILL what is left."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        self.kill()


class _PrivateServer:
    """A server of the run's own on a port picked at first start; stopped and started again on
    the same port (its clients know it)."""

    name = ""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir / self.name
        self.port = free_port()
        self.process: Process | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        """The first start may move to another port if this one was taken meanwhile."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1 if self.process else 5):
            try:
                self.process = Process(self.name, self.command(), env=dict(os.environ), log_dir=self.dir,
                                       port=self.port).start()
                return
            except PortTaken:
                if self.process or attempt == 4:
                    raise
                self.port = free_port()


class PrivateMariaDB(_PrivateServer):
    """A mariadbd of the run's own (datadir under the run directory, its own port): the chaos
    run stops it for real. root@127.0.0.1 has no password."""

    name = "mariadb"

    def install(self) -> None:
        binary = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if binary is None:
            raise RuntimeError("mariadb-install-db not found (apt-get install mariadb-server)")
        self.dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([binary, "--no-defaults", f"--datadir={self.dir / 'data'}", "--skip-test-db",
                        "--auth-root-authentication-method=normal", "--user=root"],
                       check=True, capture_output=True)

    def command(self) -> list[str]:
        return [shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.dir / 'data'}",
                f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.dir / 'mysqld.sock'}",
                f"--pid-file={self.dir / 'mysqld.pid'}", "--user=root", "--skip-name-resolve",
                "--innodb-buffer-pool-size=256M", "--max-connections=500", "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci"]

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): every connection is cut, the port refuses until start()."""
        if self.process is not None:
            self.process.stop(grace=60)

    def url(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "") -> MySQLdb.Connection:
        return MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", passwd="", db=database,
                               autocommit=True, connect_timeout=3)

    def sql(self, statement: str, *params: object, database: str = "") -> list[tuple]:
        conn = self.connect(database)
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement, params or None)
                return list(cursor.fetchall())
        finally:
            conn.close()


class PrivateRedis(_PrivateServer):
    """A redis-server of the run's own: broker, cache and breaker state; restarted for real."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        return [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--dir", str(self.dir)]

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()  # Redis restarts empty: what it held (queue, cache, breakers) is gone
