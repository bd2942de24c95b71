-- wrk script for POST /v1/keys/verify with Zipf-distributed keys, used by bench/scale.py.
--
-- The keys come from a file named in the environment (one key a line, in a temporary
-- directory that bench/scale.py deletes), never from this file or wrk's command line.
-- Line k is the key of popularity rank k: a request asks about rank k with probability
-- proportional to k^-s. Ranks are drawn by binary search in a cumulative table built once
-- in init() (~20 steps per request in LuaJIT; bench/scale.py reports wrk's CPU so a
-- saturated load generator would show). Each thread counts the distinct keys it asked
-- about; done() prints the total as "zipf-distinct-keys <n>" for bench/scale.py.

local threads = {}

function setup(thread)
  thread:set("id", #threads) -- a seed of its own for each thread
  table.insert(threads, thread)
end

-- Globals, not locals: done() reads `distinct` through thread:get.
keys, cdf, n, headers, seen, distinct = nil, nil, 0, nil, nil, 0

function init(args)
  local verifier = os.getenv("KEYPLANE_BENCH_VERIFIER_KEY")
  local path = os.getenv("KEYPLANE_BENCH_KEYS_FILE")
  local s = tonumber(os.getenv("KEYPLANE_BENCH_ZIPF_S") or "1.1")
  if not verifier or not path then
    io.stderr:write("zipf.lua: set KEYPLANE_BENCH_VERIFIER_KEY and KEYPLANE_BENCH_KEYS_FILE\n")
    os.exit(2)
  end
  keys = {}
  for line in io.lines(path) do
    keys[#keys + 1] = line
  end
  n = #keys
  cdf = {}
  local total = 0
  for k = 1, n do
    total = total + k ^ -s
    cdf[k] = total
  end
  for k = 1, n do
    cdf[k] = cdf[k] / total
  end
  math.randomseed(tonumber(os.getenv("KEYPLANE_BENCH_SEED") or "1") + (id or 0))
  headers = { ["Authorization"] = "Bearer " .. verifier, ["Content-Type"] = "application/json" }
  seen = {}
  distinct = 0
end

function request()
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then
      lo = mid + 1
    else
      hi = mid
    end
  end
  if not seen[lo] then
    seen[lo] = true
    distinct = distinct + 1
  end
  -- Keys are base62, so no JSON escaping is needed.
  local body = '{"key":"' .. keys[lo] .. '","scopes":["api_keys:read"]}'
  return wrk.format("POST", "/v1/keys/verify", headers, body)
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("distinct") or 0)
  end
  io.write(string.format("zipf-distinct-keys %d\n", total))
end
