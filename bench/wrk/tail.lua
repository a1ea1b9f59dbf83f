-- tail.lua -- the slow-tail scenarios (issue 12): fanout.lua's classification plus the latency
-- of each request as the client saw it (bench_use_request_latency in common.lua), the figure
-- the hedging target is judged on.
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
bench_use_classify()
bench_use_request_latency()
