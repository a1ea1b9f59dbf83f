-- common.lua -- shared by the benchmark's wrk scripts (loaded with dofile by each of them).
--
-- At the end of a run wrk calls done() in its main Lua state; this prints one line
--     BENCH_JSON {"requests":...,"p50_us":...,...}
-- with the exact figures (latency in microseconds, error counts by kind) so bench.py does not
-- have to parse wrk's rounded text output. A script that counts something per response names
-- its per-thread global counters in bench_counters; done() sums them over the threads.
--
-- bench_classify() is the per-response hook of the fanout scenarios: it counts answers by
-- status (n_200, n_502, n_504, n_other) and the 200s by X-Fanout-Complete (n_complete,
-- n_partial, n_nohdr). Its cost in wrk is about a microsecond per answer, small against
-- fanout's; the reference runs (report.lua) have no hook at all.

local threads = {}
bench_counters = {}

function setup(thread)
    table.insert(threads, thread)
end

n_200, n_502, n_504, n_other, n_complete, n_partial, n_nohdr = 0, 0, 0, 0, 0, 0, 0

function bench_classify(status, headers)
    if status ~= 200 then
        if status == 504 then
            n_504 = n_504 + 1
        elseif status == 502 then
            n_502 = n_502 + 1
        else
            n_other = n_other + 1
        end
        return
    end
    n_200 = n_200 + 1
    local v = headers["X-Fanout-Complete"]
    if v == nil then
        for k, hv in pairs(headers) do
            if string.lower(k) == "x-fanout-complete" then
                v = hv
            end
        end
    end
    if v == "true" then
        n_complete = n_complete + 1
    elseif v == "false" then
        n_partial = n_partial + 1
    else
        n_nohdr = n_nohdr + 1
    end
end

local classify_counters = {"n_200", "n_502", "n_504", "n_other", "n_complete", "n_partial",
                           "n_nohdr"}

-- Turn the hook on in a script: defines the global response() wrk looks for.
function bench_use_classify()
    bench_counters = classify_counters
    response = function(status, headers, body)
        bench_classify(status, headers)
    end
end

-- Per-request latency without wrk's correction. At the end of a run wrk "corrects" its
-- histogram for coordinated omission (stats_correct): every sample longer than twice the mean
-- interval between requests on a connection gets synthetic copies at every interval below it, as
-- if the connection had been paced at the run's rate. Under a closed loop with rare long answers
-- (the slow tail: 0.04% of requests at 200 ms, when both a call and its hedge hit the slow 2%)
-- those copies outnumber the real samples above p90. bench_use_request_latency() keeps the
-- latency of each request as the client saw it instead: request() stamps an X-Request-Id and
-- the CLOCK_MONOTONIC time, response() looks the echoed id up (fanout sends it back). Buckets
-- are 10 us wide below 10 ms and 1 ms wide above; done() merges the threads' tables.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_ts;
int clock_gettime(int clk, bench_ts *ts);
]]
local ts = ffi.new("bench_ts")
local function now_us()
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

bench_lat, bench_lat_n, bench_lat_lost, bench_lat_sum = nil, 0, 0, 0
local lat_sent, lat_seq = {}, 0

local function lat_bucket(us)
    if us < 10000 then
        return math.floor(us / 10)
    end
    return 1000 + math.floor((us - 10000) / 1000)
end

local function lat_bucket_us(b) -- the middle of bucket b
    if b < 1000 then
        return b * 10 + 5
    end
    return 10000 + (b - 1000) * 1000 + 500
end

function bench_use_request_latency()
    bench_lat = {}
    local classify = response
    request = function()
        lat_seq = lat_seq + 1
        local id = "l" .. lat_seq
        lat_sent[id] = now_us()
        return wrk.format(nil, nil, {["X-Request-Id"] = id})
    end
    response = function(status, headers, body)
        if classify then
            classify(status, headers, body)
        end
        local id = headers["X-Request-Id"] or headers["x-request-id"]
        local t0 = id and lat_sent[id]
        if not t0 then
            bench_lat_lost = bench_lat_lost + 1
            return
        end
        lat_sent[id] = nil
        local us = now_us() - t0
        local b = lat_bucket(us)
        bench_lat[b] = (bench_lat[b] or 0) + 1
        bench_lat_sum = bench_lat_sum + us
        bench_lat_n = bench_lat_n + 1
    end
end

-- The per-request percentiles (p50, p99, p99.9 in us) over all threads, or nil.
local function request_percentiles()
    local merged, n, lost, sum = {}, 0, 0, 0
    for _, t in ipairs(threads) do
        local h = t:get("bench_lat")
        if h then
            for b, c in pairs(h) do
                merged[b] = (merged[b] or 0) + c
            end
            n = n + (t:get("bench_lat_n") or 0)
            lost = lost + (t:get("bench_lat_lost") or 0)
            sum = sum + (t:get("bench_lat_sum") or 0)
        end
    end
    if n == 0 then
        return nil
    end
    local keys = {}
    for b in pairs(merged) do
        table.insert(keys, b)
    end
    table.sort(keys)
    local out, want, seen, k = {}, {50, 99, 99.9}, 0, 1
    for _, b in ipairs(keys) do
        seen = seen + merged[b]
        while k <= #want and seen >= n * want[k] / 100 do
            out[k] = lat_bucket_us(b)
            k = k + 1
        end
    end
    return out, n, lost, sum / n
end

local function num(v)
    if v == nil then
        return "null"
    end
    return string.format("%.17g", v)
end

function done(summary, latency, requests)
    local e = summary.errors
    local fields = {
        {"requests", summary.requests}, {"duration_us", summary.duration},
        {"bytes", summary.bytes}, {"err_connect", e.connect}, {"err_read", e.read},
        {"err_write", e.write}, {"err_status", e.status}, {"err_timeout", e.timeout},
        {"lat_min_us", latency.min}, {"lat_mean_us", latency.mean}, {"lat_max_us", latency.max},
        {"p50_us", latency:percentile(50)}, {"p90_us", latency:percentile(90)},
        {"p99_us", latency:percentile(99)}, {"p999_us", latency:percentile(99.9)},
        -- The p99 of the slowest of 3 independent draws from this distribution: F(x)^3 = 0.99.
        {"p99_of_3_us", latency:percentile(100 * 0.99 ^ (1 / 3))},
    }
    local rp, rn, rlost, rmean = request_percentiles()
    if rp then
        table.insert(fields, {"req_p50_us", rp[1]})
        table.insert(fields, {"req_p99_us", rp[2]})
        table.insert(fields, {"req_p999_us", rp[3]})
        table.insert(fields, {"req_mean_us", rmean})
        table.insert(fields, {"req_n", rn})
        table.insert(fields, {"req_lost", rlost})
    end
    for _, name in ipairs(bench_counters) do
        local total = 0
        for _, t in ipairs(threads) do
            total = total + (t:get(name) or 0)
        end
        table.insert(fields, {name, total})
    end
    local parts = {}
    for _, f in ipairs(fields) do
        table.insert(parts, string.format("%q:%s", f[1], num(f[2])))
    end
    io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
