#!/usr/bin/env python3
"""soak_load.py -- the load and the judgement of bench/soak.sh (asyncio, stdlib only).

Sends exactly --warmup then --requests requests to a running fanout over --concurrency
keep-alive connections and checks every answer. The mix, by request number i:

  i % 20 in {0, 1}  GET /api/deadline/i   one backend hangs: 200, X-Fanout-Complete: false (10%)
  i % 20 == 2       GET /api/broken/i     one backend breaks: 200, X-Fanout-Complete: false (5%)
  i % 20 in {3, 4}  POST /aggregate       two good calls: 200, complete                    (10%)
  otherwise         GET /api/ok/i         three good calls, one merged: 200, complete      (75%)

fanout's open fds (/proc/PID/fd, sockets grouped by peer port and TCP state), threads and
VmRSS are sampled after the warm-up and after the run, each time with every client connection
closed and the process quiet, plus every 10% of the run (trend). Exit 1 when an answer was
wrong, or when something grew: fds other than kept-alive connections to the good backends
(curl's connection cache, bounded by the peak number of concurrent calls) beyond --fd-tol,
any socket left to the hanging/broken backend or in CLOSE_WAIT, more cached connections than
1.5 x the peak concurrent calls, any thread, or VmRSS beyond --rss-tol-kb. --no-growth-check
skips the growth judgement (valgrind). A deadline request answered 504 "backend_timeout" is
correct (the good backend was late too on a loaded machine) and counted. Prints a table and one "SOAK_JSON {...}" line.
"""

import argparse
import asyncio
import json
import os
import sys
import time


TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN",
              "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK", "07": "CLOSE"}


def socket_kinds(pid, fds, own_port):
    """Group the process's TCP sockets: {"<peer port or role> <state>": count}."""
    inodes = {}
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes[link[8:-1]] = True
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[9] not in inodes:
                        continue
                    lport = int(p[1].rsplit(":", 1)[1], 16)
                    rport = int(p[2].rsplit(":", 1)[1], 16)
                    state = TCP_STATES.get(p[3], p[3])
                    role = "listen" if state == "LISTEN" else (
                        "client" if lport == own_port else "to:%d" % rport)
                    key = "%s %s" % (role, state)
                    out[key] = out.get(key, 0) + 1
        except OSError:
            pass
    return out


def proc_sample(pid, own_port=0):
    s = {"t": time.monotonic()}
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
        s["fds"] = len(fds)
        s["sockets"] = socket_kinds(pid, fds, own_port)
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    s[k] = int(v.split()[0])
                elif k == "Threads":
                    s[k] = int(v)
    except OSError as e:
        s["error"] = str(e)
    return s


class Load:
    def __init__(self, args):
        self.a = args
        self.batch_body = json.dumps({"requests": {
            "a": {"url": args.good + "/a"}, "b": {"url": args.good + "/b"}}}).encode()
        self.counts = {}
        self.bad = []
        self.reconnects = 0
        self.late_good = 0  # deadline requests where the good backend missed the deadline too
        self.lat = {}

    def request(self, i):
        k = i % 20
        if k in (0, 1):
            kind, data = "deadline", b"GET /api/deadline/%d HTTP/1.1\r\nHost: s\r\n\r\n" % i
        elif k == 2:
            kind, data = "broken", b"GET /api/broken/%d HTTP/1.1\r\nHost: s\r\n\r\n" % i
        elif k in (3, 4):
            kind = "batch"
            data = (b"POST /aggregate HTTP/1.1\r\nHost: s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(self.batch_body) + self.batch_body)
        else:
            kind, data = "ok", b"GET /api/ok/%d HTTP/1.1\r\nHost: s\r\n\r\n" % i
        return kind, data

    def judge(self, kind, i, status, headers, body):
        complete = headers.get(b"x-fanout-complete")
        if status != 200 and not (kind == "deadline" and status == 504):
            return "status %d" % status
        if kind in ("ok", "batch"):
            if complete != b"true":
                return "incomplete"
            try:
                doc = json.loads(body)
            except ValueError:
                return "not JSON"
            if kind == "ok" and doc != {"a": {"a": 1, "id": str(i)}, "b": {"b": [1, 2, 3]},
                                        "c": "merged"}:
                return "wrong body %r" % body[:200]
            if kind == "batch" and doc != {"a": {"a": 1, "id": ""}, "b": {"b": [1, 2, 3]}}:
                return "wrong body %r" % body[:200]
        elif kind == "deadline" and status == 504:
            # Correct when the good backend was late too (a loaded machine): count it.
            if b'"backend_timeout"' not in body:
                return "504 without backend_timeout: %r" % body[:200]
            self.late_good += 1
        else:
            if complete != b"false":
                return "complete=%r" % complete
            try:
                doc = json.loads(body)
            except ValueError:
                return "not JSON"
            if doc.get("a", {}).get("a") != 1:
                return "wrong body %r" % body[:200]
        return None

    async def one_conn(self, queue, stop_at):
        reader = writer = None
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            kind, data = self.request(i)
            for attempt in range(2):
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", self.a.port)
                    t0 = time.monotonic()
                    writer.write(data)
                    head = await reader.readuntil(b"\r\n\r\n")
                    lines = head.split(b"\r\n")
                    status = int(lines[0].split(b" ")[1])
                    hdrs = {}
                    for h in lines[1:]:
                        k, _, v = h.partition(b":")
                        hdrs[k.strip().lower()] = v.strip()
                    body = await reader.readexactly(int(hdrs.get(b"content-length", b"0")))
                    self.lat.setdefault(kind, []).append(time.monotonic() - t0)
                    if hdrs.get(b"connection", b"").lower() == b"close":
                        writer.close()
                        writer = None
                        self.reconnects += 1
                    break
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
                    if writer is not None:
                        writer.close()
                    writer = None
                    self.reconnects += 1
                    status, hdrs, body = None, {}, repr(e).encode()
            self.counts[kind] = self.counts.get(kind, 0) + 1
            err = "no answer: %s" % body.decode() if status is None else \
                self.judge(kind, i, status, hdrs, body)
            if err:
                self.bad.append((i, kind, err))
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def run(self, first, n, on_progress=None):
        queue = asyncio.Queue()
        for i in range(first, first + n):
            queue.put_nowait(i)
        tasks = [asyncio.create_task(self.one_conn(queue, first + n))
                 for _ in range(self.a.concurrency)]
        if on_progress:
            step = max(1, n // 10)
            mark = first + step
            while not all(t.done() for t in tasks):
                await asyncio.sleep(0.2)
                done = first + n - queue.qsize()
                while done >= mark and mark < first + n:
                    on_progress(mark - first)
                    mark += step
        await asyncio.gather(*tasks)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else 0.0


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--good", required=True, help="base URL of the good backends (batch)")
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--warmup", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--quiet", type=float, default=1.5, help="seconds idle before a sample")
    ap.add_argument("--fd-tol", type=int, default=2)
    ap.add_argument("--rss-tol-kb", type=int, default=6144)
    ap.add_argument("--no-growth-check", action="store_true")
    ap.add_argument("--json-out", default="")
    a = ap.parse_args()

    load = Load(a)
    t0 = time.monotonic()
    await load.run(0, a.warmup)
    await asyncio.sleep(a.quiet)
    before = proc_sample(a.pid, a.port)
    trend = []
    t1 = time.monotonic()
    await load.run(a.warmup, a.requests,
                   lambda done: trend.append(dict(proc_sample(a.pid, a.port), done=done)))
    t2 = time.monotonic()
    await asyncio.sleep(a.quiet)
    after = proc_sample(a.pid, a.port)

    total = a.warmup + a.requests
    answered = sum(load.counts.values())
    res = {
        "requests": a.requests, "warmup": a.warmup, "concurrency": a.concurrency,
        "answered": answered, "wrong": len(load.bad), "first_wrong": load.bad[:5],
        "reconnects": load.reconnects, "mix": load.counts,
        "seconds": round(t2 - t1, 1), "rps": round(a.requests / (t2 - t1), 1),
        "latency_ms": {k: {"p50": round(pct(v, 0.5), 1), "p99": round(pct(v, 0.99), 1)}
                       for k, v in load.lat.items()},
        "before": before, "after": after, "trend": trend,
    }
    fails = []
    if answered != total:
        fails.append("answered %d of %d" % (answered, total))
    if load.bad:
        fails.append("%d wrong answers, first: %r" % (len(load.bad), load.bad[:3]))
    if "error" in before or "error" in after:
        fails.append("could not sample the process: %s %s" % (before.get("error"),
                                                               after.get("error")))
    elif not a.no_growth_check:
        # Kept-alive connections to the good backends are curl's connection cache: bounded by
        # the peak number of concurrent calls, not a leak; every other fd must not grow.
        good_port = int(a.good.rsplit(":", 1)[1])
        cached_b = before["sockets"].get("to:%d ESTABLISHED" % good_port, 0)
        cached_a = after["sockets"].get("to:%d ESTABLISHED" % good_port, 0)
        other_b, other_a = before["fds"] - cached_b, after["fds"] - cached_a
        res["fds_other"] = [other_b, other_a]
        res["cached_good_conns"] = [cached_b, cached_a]
        if other_a - other_b > a.fd_tol:
            fails.append("open fds other than cached backend connections grew %d -> %d "
                         "(tolerance %d): %s" % (other_b, other_a, a.fd_tol, after["sockets"]))
        peak_calls = a.concurrency * 3
        if cached_a > peak_calls * 1.5:
            fails.append("%d cached connections to the good backend for at most %d concurrent "
                         "calls" % (cached_a, peak_calls))
        left = {k: v for k, v in after["sockets"].items()
                if not k.startswith(("listen ", "to:%d ESTABLISHED" % good_port))}
        if left:
            fails.append("sockets left after the run: %s" % left)
        if after["Threads"] > before["Threads"]:
            fails.append("threads grew %d -> %d" % (before["Threads"], after["Threads"]))
        if after["VmRSS"] - before["VmRSS"] > a.rss_tol_kb:
            fails.append("RSS grew %d -> %d kB (tolerance %d kB)" % (
                before["VmRSS"], after["VmRSS"], a.rss_tol_kb))
    res["fails"] = fails

    res["deadline_504"] = load.late_good
    print("soak: %d requests (+%d warm-up) at concurrency %d in %.1f s (%.0f req/s), "
          "%d reconnects, %d deadline requests answered 504 (good backend late too)"
          % (a.requests, a.warmup, a.concurrency, t2 - t1, res["rps"], load.reconnects,
             load.late_good))
    print("  mix: %s" % ", ".join("%s %d" % kv for kv in sorted(load.counts.items())))
    for k, v in sorted(res["latency_ms"].items()):
        print("  %-9s p50 %6.1f ms  p99 %6.1f ms" % (k, v["p50"], v["p99"]))
    print("  %-12s %8s %8s %10s %10s" % ("sample", "fds", "threads", "VmRSS kB", "VmHWM kB"))
    rows = [("after warm-up", before)] + [("at %d" % s["done"], s) for s in trend] + \
        [("after run", after)]
    for name, s in rows:
        print("  %-12s %8s %8s %10s %10s  %s" % (
            name, s.get("fds"), s.get("Threads"), s.get("VmRSS"), s.get("VmHWM"),
            " ".join("%s=%d" % kv for kv in sorted(s.get("sockets", {}).items()))))
    if fails:
        for f in fails:
            print("FAIL: " + f)
    else:
        print("PASS")
    print("SOAK_JSON " + json.dumps(res))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(res, f, indent=1)
    _ = t0
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
