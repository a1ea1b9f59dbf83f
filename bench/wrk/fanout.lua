-- fanout.lua -- GET load at fanout: every answer classified by status and X-Fanout-Complete
-- (see bench_classify in common.lua). The deadline scenario checks that all are partial.
dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
bench_use_classify()
