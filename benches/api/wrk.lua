-- wrk script for benches/api/run. Behaviour comes from the environment, so one file serves
-- every phase:
--   BENCH_DELAY_MS  per-connection pause before each request (fixed-rate mode); fractional
--                   values are dithered, since wrk only honours whole milliseconds
--   BENCH_MODE      "ingest": POST a fresh sensor batch per request (needs BENCH_SYSTEM,
--                   BENCH_SENSOR, BENCH_MIN, BENCH_MAX; BENCH_RUN_ID keeps batch ids unique
--                   across runs; BENCH_BATCH_ID=0 leaves batch_id out for the server to assign)
-- The X-API-Key header is passed with -H on wrk's command line.
-- done() prints one machine-readable line, "BENCH key=value ...", parsed by the run script.

local mode = os.getenv("BENCH_MODE") or "get"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")

if delay_ms and delay_ms > 0 then
  local whole = math.floor(delay_ms)
  local frac = delay_ms - whole
  function delay()
    if math.random() < frac then return whole + 1 end
    return whole
  end
end

if mode == "ingest" then
  local threads = 0
  function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
  end

  local system = os.getenv("BENCH_SYSTEM") or "rig-7"
  local sensor = os.getenv("BENCH_SENSOR") or "PS1"
  local lo = tonumber(os.getenv("BENCH_MIN") or "0")
  local hi = tonumber(os.getenv("BENCH_MAX") or "250")
  local run_id = os.getenv("BENCH_RUN_ID") or tostring(os.time())
  local with_batch_id = os.getenv("BENCH_BATCH_ID") ~= "0"
  local interval_us = 10000
  local n = 100

  -- The values never change, so their JSON is built once: inside [lo, hi], away from the ends.
  local parts = {}
  for i = 1, n do
    parts[i] = string.format("%.3f", lo + (hi - lo) * (0.5 + 0.3 * math.sin(i / 7)))
  end
  local values = "[" .. table.concat(parts, ",") .. "]"
  local count = 0

  function init(args)
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
  end

  function request()
    count = count + 1
    -- Whole seconds are all LuaJIT's os.time gives; the counter spreads batches in time and
    -- %d keeps LuaJIT from printing a 16-digit number in exponent form.
    local start = string.format("%d", os.time() * 1000000 + (count % 1000) * n * interval_us)
    local id = ""
    if with_batch_id then
      id = string.format('"batch_id":"bench-%s-%d-%d",', run_id, tid or 0, count)
    end
    local body = "{" .. id .. '"system_id":"' .. system .. '","series":[{"sensor_id":"' .. sensor ..
      '","start":' .. start .. ',"interval_us":' .. interval_us .. ',"values":' .. values .. "}]}"
    return wrk.format(nil, nil, nil, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
