"""gunicorn config for bench/memory.py --tracemalloc: the web role's gunicorn.conf.py, plus
tracemalloc in every worker. Each worker snapshots its Python heap BENCH_TRACE_BASE seconds
after it boots and again BENCH_TRACE_END seconds after it boots, and writes the growth between
the two, largest allocation sites first, to BENCH_TRACE_DIR/<pid>.txt. It tells growth of the
Python heap (objects the application keeps) from growth of RSS alone (the C allocator)."""

import os
import runpy
import threading
import time
import tracemalloc
from pathlib import Path

globals().update({name: value for name, value in runpy.run_path(str(Path(__file__).resolve().parent.parent
                                                                     / "gunicorn.conf.py")).items()
                  if not name.startswith("__")})


def post_worker_init(worker):
    tracemalloc.start(12)
    base_after = float(os.environ.get("BENCH_TRACE_BASE", "45"))
    end_after = float(os.environ.get("BENCH_TRACE_END", "300"))
    out = Path(os.environ.get("BENCH_TRACE_DIR", "/tmp/reserve-bench-trace"))

    def compare() -> None:
        time.sleep(base_after)
        base = tracemalloc.take_snapshot()
        time.sleep(max(0.0, end_after - base_after))
        growth = tracemalloc.take_snapshot().compare_to(base, "traceback")
        lines = [f"Python heap growth {sum(s.size_diff for s in growth) / 1024:+.1f} KiB over "
                 f"{end_after - base_after:.0f} s (traced now {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MB)"]
        for stat in growth[:8]:
            lines.append(f"  {stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks")
            lines.extend(f"      {line}" for line in stat.traceback.format()[-6:])
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{os.getpid()}.txt").write_text("\n".join(lines) + "\n")

    threading.Thread(target=compare, daemon=True, name="bench-tracemalloc").start()
