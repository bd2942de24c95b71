-- wrk script for POST /v1/keys/verify, used by bench/verify.py.
--
-- The two keys come from the environment, never from this file or wrk's command line:
-- a file would outlive the run and a command line shows in `ps` to every user.
-- Everything is set once at load time, so wrk sends one static request and this script
-- costs nothing per request.

local verifier = os.getenv("KEYPLANE_BENCH_VERIFIER_KEY")
local target = os.getenv("KEYPLANE_BENCH_TARGET_KEY")
local scope = os.getenv("KEYPLANE_BENCH_SCOPE") or "api_keys:read"

if not verifier or not target then
  io.stderr:write("verify.lua: set KEYPLANE_BENCH_VERIFIER_KEY and KEYPLANE_BENCH_TARGET_KEY\n")
  os.exit(2)
end

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. verifier
wrk.headers["Content-Type"] = "application/json"
-- Keys and scopes are base62 and [a-z_:], so no JSON escaping is needed.
wrk.body = '{"key":"' .. target .. '","scopes":["' .. scope .. '"]}'
