-- wrk script of bench/ingest.py: replays pre-built HTTP requests from a file, each thread its
-- own share (request k goes to thread k mod threads), and prints one JSON line at the end.
--   wrk -s bench/ingest.lua ... -- <requests file> <threads>
-- The file holds "<length>\n<raw request>" records, built (and signed) by bench/ingest.py.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local share = tonumber(args[2])
  requests, position, wrapped = {}, 0, 0
  local at, n = 1, 0
  while at <= #data do
    local newline = data:find("\n", at, true)
    local length = tonumber(data:sub(at, newline - 1))
    if n % share == id then
      requests[#requests + 1] = data:sub(newline + 1, newline + length)
    end
    n = n + 1
    at = newline + length + 1
  end
end

function request()
  position = position + 1
  if position > #requests then
    position, wrapped = 1, wrapped + 1
  end
  return requests[position]
end

function done(summary, latency, _)
  local wraps = 0
  for _, thread in ipairs(threads) do
    wraps = wraps + thread:get("wrapped")
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"wrapped": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout, wraps,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
