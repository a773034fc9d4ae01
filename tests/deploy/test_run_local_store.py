"""`make run` survives localstripe's store left truncated by an interrupted run (scripts/run_local.py)."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_local():
    spec = importlib.util.spec_from_file_location("run_local", ROOT / "scripts" / "run_local.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_truncated_store_is_moved_aside(tmp_path):
    store = tmp_path / "localstripe.pickle"
    store.write_bytes(pickle.dumps({"objects": list(range(1000))})[:-40])

    assert run_local().localstripe_store_usable(store) is False
    assert not store.exists()
    assert (tmp_path / "localstripe.pickle.unreadable").exists()


def test_a_readable_store_is_kept(tmp_path):
    store = tmp_path / "localstripe.pickle"
    store.write_bytes(pickle.dumps({"objects": [1, 2, 3]}))

    assert run_local().localstripe_store_usable(store) is True
    assert store.exists()
