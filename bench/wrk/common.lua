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
    }
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
