"""The list's bodies on SQLite, the README's run command's database: its text forms (char(32)
ids, datetimes stored as text, a whole second without a fraction) are written as the
serializers write the ORM's values, and compiled inserts write the ORM's rows. In a subprocess
on a fresh SQLite file (the suite runs on MariaDB), through tests/support/sqlite_bodies.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.servers import ROOT

pytestmark = pytest.mark.timeout(240)


def test_list_bodies_equal_the_serializers_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
                "PYTHONPATH": str(ROOT)})
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True,
                   timeout=180)
    script = (ROOT / "tests" / "support" / "sqlite_bodies.py").read_text()
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=60)

    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["differ"] == []
    assert result["inserts_differ"] == []  # common.compiled.insert_row on SQLite (RETURNING the auto key)
