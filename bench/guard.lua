-- wrk script for bench/guard.py: GET with the caller's key, the same request for the
-- guarded and the unguarded route (only the path differs).
--
-- The key comes from the environment, never from this file or wrk's command line (a file
-- would outlive the run; a command line shows in `ps`). Set once at load time: wrk sends
-- one static request and this script costs nothing per request.

local key = os.getenv("KEYPLANE_BENCH_TARGET_KEY")

if not key then
  io.stderr:write("guard.lua: set KEYPLANE_BENCH_TARGET_KEY\n")
  os.exit(2)
end

wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. key
