-- wrk at a fixed offered rate (open loop), for test_overload.py: wrk alone is closed loop
-- (each connection sends its next request when the last one is answered), so a slow server
-- would lower the load it gets. Here every thread hands out send times from one schedule at
-- RATE/threads per second; a connection waits for its slot (delay()), and a schedule that
-- fell behind restarts from now (never a burst to catch up). With many more connections than
-- rate x latency, the load does not depend on how fast answers come: the overload model.
-- Also checks every 503: it must carry Retry-After and a JSON body with a "reason".
-- Env: RATE (requests/s; unset: closed loop). Run it with -t1 (one thread holds the schedule). Prints one JSON line at the end.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
  int clock_gettime(int clock_id, wrk_timespec *tp);
]]
local ts = ffi.new("wrk_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

statuses, shed, shed_bad = {}, 0, 0
-- Without RATE, no delay() at all: wrk's usual closed loop (the capacity measurement).
local rate = tonumber(os.getenv("RATE") or "")
if rate then
  local interval_ms = 1000 / rate -- run with -t1: one thread, one schedule
  local next_at = now_ms()
  function delay()
    local now = now_ms()
    local slot = math.max(next_at, now)
    next_at = slot + interval_ms
    return math.floor(slot - now + 0.5)
  end
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 503 then
    shed = shed + 1
    local retry_after = headers["Retry-After"] or headers["retry-after"]
    if not retry_after or not body or not body:find('"reason"', 1, true) then
      shed_bad = shed_bad + 1
    end
  end
end

function done(summary, latency, requests)
  local all, bad, total_shed = {}, 0, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      all[status] = (all[status] or 0) + n
    end
    bad = bad + thread:get("shed_bad")
    total_shed = total_shed + thread:get("shed")
  end
  local parts = {}
  for status, n in pairs(all) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "statuses": {%s}, "shed": %d, "shed_without_reason": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, table.concat(parts, ", "), total_shed, bad,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
