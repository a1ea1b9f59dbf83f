-- aggregate.lua -- the ad-hoc batch scenario: POST /aggregate with the throughput scenario's
-- three calls. BENCH_BACKEND is the nginx "host:port" (it must be in aggregate.allow_hosts).
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

local backend = os.getenv("BENCH_BACKEND") or "127.0.0.1:80"
local base = "http://" .. backend .. "/static/"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"requests":{'
    .. '"a":{"url":"' .. base .. 's200.json?id=42"},'
    .. '"b":{"url":"' .. base .. 's1k.json?id=42"},'
    .. '"c":{"url":"' .. base .. 's4k.json?id=42"}}}'

bench_use_classify()
