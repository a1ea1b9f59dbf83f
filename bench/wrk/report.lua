-- report.lua -- plain GET load without a per-response hook (the reference runs at nginx).
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
