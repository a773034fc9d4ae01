"""Redis for tests: the shared one named by TEST_REDIS_URL, or a private redis-server on a
free port that a test may stop or pause (SIGSTOP) without disturbing anyone else."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.servers import free_port, wait_for_port

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/0"


def suite_redis_url() -> str:
    """The Redis the suite may write to (its own DB index; keys it writes are namespaced)."""
    return os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)


def require_redis(url: str) -> None:
    """Fail (not skip) when Redis does not answer: CI starts it (scripts/ensure_services.sh)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis at {url} does not answer ({exc}); `make test` starts it") from exc


class PrivateRedis:
    """A redis-server of our own: stop() refuses connections, pause() makes it hang."""

    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=10)


@contextmanager
def private_redis(tmp_dir: Path) -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (`make test` installs it)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    server = PrivateRedis(proc, port)
    try:
        wait_for_port(port, proc=proc)
        yield server
    finally:
        server.stop()
