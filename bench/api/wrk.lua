-- wrk script for bench/api/run.sh: each request is a random line of $TARGETS, with
-- the bearer token $AUTH; prints requests/s, p50/p95/p99 in ms and non-2xx counts.
local targets = {}
for line in io.lines(os.getenv("TARGETS")) do targets[#targets + 1] = line end
local auth = "Bearer " .. os.getenv("AUTH")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  bad = 0
end

function request()
  return wrk.format("GET", targets[math.random(#targets)], { ["Authorization"] = auth })
end

function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, t in ipairs(threads) do bad_total = bad_total + (t:get("bad") or 0) end
  local ms = function(p) return string.format("%.2f", latency:percentile(p) / 1000) end
  io.write(string.format("requests n=%d per_s=%.0f\n", summary.requests, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency p50=%s p95=%s p99=%s max=%s\n", ms(50), ms(95), ms(99),
                         string.format("%.2f", latency.max / 1000)))
  io.write(string.format("errors non2xx=%d socket=%d\n", bad_total,
                         summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
