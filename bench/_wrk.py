"""wrk, the C load generator the ceilings were measured with (issue "performance"): it leaves the
2 cores to the server far more than a Python client would. `apt-get install wrk`
(`make bench` does it). One Lua script per run: each request picks one of the given paths at
random (so that writers do not all queue on one row), can carry a header unique to the request
(a fresh Idempotency-Key per pay) or a body made per request, and the script reports every
status code it saw and the latency percentiles as JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

LUA = r"""
local paths = {%(paths)s}
local method = "%(method)s"
local body_template = %(body)s
local unique_header = %(unique_header)s
local choices = {%(choices)s}
local sequential = %(sequential)s
local items = {%(items)s}
local nthreads = %(threads)d
local thread_counter = 0
local threads = {}
statuses = {}

function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("tid", thread_counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
  n = 0
end

function request()
  n = n + 1
  if #items > 0 then
    -- prepared requests, each sent once in order (then again from the start)
    local item = items[((n - 1) * nthreads + tid - 1) %% #items + 1]
    local item_headers = {}
%(headers_item)s
    for name, value in pairs(item[3]) do
      item_headers[name] = value
    end
    return wrk.format(method, item[1], item_headers, item[2])
  end
  local path
  if sequential then
    -- each path once (until they run out): thread t takes t, t + nthreads, t + 2 nthreads, ...
    path = paths[((n - 1) * nthreads + tid - 1) %% #paths + 1]
  else
    path = paths[math.random(#paths)]
  end
  local headers = {}
%(headers)s
  for name, values in pairs(choices) do
    headers[name] = values[math.random(#values)]
  end
  if unique_header ~= nil then
    headers[unique_header] = string.format("wrk-%%d-%%d-%%d-%%d", tid, n, os.time(), math.random(1000000000))
  end
  local body = nil
  if body_template ~= nil then
    body = string.gsub(body_template, "{n}", tostring(tid * 100000000 + n))
  end
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for code, count in pairs(counts) do
      merged[code] = (merged[code] or 0) + count
    end
  end
  local parts = {}
  for code, count in pairs(merged) do
    table.insert(parts, string.format('"%%s": %%d', code, count))
  end
  io.write(string.format('WRKJSON {"requests": %%d, "seconds": %%f, "p50_us": %%d, "p95_us": %%d, ' ..
    '"p99_us": %%d, "errors": %%d, "statuses": {%%s}}\n', summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", ")))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for our text


def wrk(port: int, *, paths: list[str], method: str = "GET", body: str | None = None,
        headers: dict[str, str] | None = None, unique_header: str | None = None,
        header_choices: dict[str, list[str]] | None = None, connections: int = 16,
        seconds: float = 10, threads: int = 2, timeout_s: int = 10, sequential: bool = False,
        items: list[tuple[str, str, dict[str, str]]] | None = None) -> dict:
    """Runs wrk for `seconds`; returns req/s, latency percentiles (ms) and the status counts.
    `body` may contain "{n}": replaced by a number unique to the request; `header_choices` gives
    a header one of its values at random per request (many customers' tokens); `sequential`
    takes the paths in order, each once, instead of at random (a pay per reservation); `items`
    are prepared (path, body, headers) requests sent in order, each once (signed webhooks)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    lua = LUA % {
        "paths": ", ".join(_lua_string(p) for p in paths),
        "method": method,
        "sequential": "true" if sequential else "false",
        "threads": threads,
        "body": _lua_string(body) if body is not None else "nil",
        "unique_header": _lua_string(unique_header) if unique_header else "nil",
        "headers": "\n".join(f"  headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in all_headers.items()),
        "headers_item": "\n".join(f"    item_headers[{_lua_string(k)}] = {_lua_string(v)}"
                                  for k, v in all_headers.items()),
        "items": ",\n".join("{%s, %s, {%s}}" % (_lua_string(path), _lua_string(item_body), ", ".join(
            f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in item_headers.items()))
            for path, item_body, item_headers in (items or [])),
        "choices": ", ".join(f"[{_lua_string(k)}] = {{{', '.join(_lua_string(v) for v in values)}}}"
                             for k, values in (header_choices or {}).items()),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, int(seconds))}s",
                              f"--timeout={timeout_s}s", "-s", script.name, f"http://127.0.0.1:{port}"],
                             capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    return {"requests": data["requests"], "req_per_s": round(data["requests"] / data["seconds"], 1),
            "p50_ms": round(data["p50_us"] / 1000, 1), "p95_ms": round(data["p95_us"] / 1000, 1),
            "p99_ms": round(data["p99_us"] / 1000, 1), "errors": data["errors"],
            "statuses": {int(k): v for k, v in sorted(data["statuses"].items())}}
