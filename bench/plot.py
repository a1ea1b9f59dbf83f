#!/usr/bin/env python3
"""plot.py -- the benchmark's PNGs with gnuplot, from bench/results/latest.json.

    python3 bench/plot.py [RUN]     (bench.py calls it at the end of `make bench`)

Writes, under bench/results/ (figures of one run: RUN, default 1):
    latency.png   wrk's p50/p90/p99/p99.9 per scenario (throughput, latency, deadline),
                  fanout and the Go peer on the same backends
    width.png     E and CPU per backend call (µs) by fan-out width (1, 4, 16, 64)
    floor.png     CPU per aggregate (throughput): fanout and Go (user, sys) beside the floor
                  (libmicrohttpd probe + 3 x libcurl probe)
Data files go to a temp dir that is removed; gnuplot gets its script on stdin.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(BENCH, "results")
PCTS = (("p50", "p50_us"), ("p90", "p90_us"), ("p99", "p99_us"), ("p99.9", "p999_us"))
TERM = "set terminal pngcairo size 1000,420 font ',10' noenhanced"


def rows_of(doc, run):
    return {r["scenario"]: r for r in doc["rows"] if r.get("run") == run}


def gnuplot(script, tmp):
    p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True, cwd=tmp,
                       timeout=60)
    if p.returncode != 0:
        raise RuntimeError("gnuplot: %s" % p.stderr.strip()[-400:])


def latency(rows, tmp, out):
    panels = [(k, t) for k, t in (("throughput", "throughput: 3 static, -c64"),
                                  ("latency", "latency: 3 at 20 ms, -c32"),
                                  ("deadline", "deadline 100 ms, 1 hangs, -c32"))
              if (rows.get(k) or {}).get("wrk")]
    if not panels:
        return False
    cmds = [TERM, "set output '%s'" % out,
            "set multiplot layout 1,%d title 'latency percentiles (wrk), fanout vs Go peer'"
            % len(panels)]
    for key, title in panels:
        dat = os.path.join(tmp, "lat-%s.dat" % key)
        with open(dat, "w") as f:
            f.write("# pct fanout go\n")
            for i, (name, k) in enumerate(PCTS):
                fo = rows[key]["wrk"].get(k)
                go = (rows.get(key + "_go") or {}).get("wrk", {}).get(k)
                f.write("%d %s %s %s\n" % (i, name, fo / 1000.0 if fo else "NaN",
                                           go / 1000.0 if go else "NaN"))
        cmds += ["set title '%s'" % title, "set ylabel 'ms'", "set grid ytics",
                 "set key top left", "set xrange [-0.3:3.3]", "set yrange [0:*]",
                 "plot '%s' using 1:3:xtic(2) with linespoints lw 2 pt 7 title 'fanout', "
                 "'' using 1:4 with linespoints lw 2 pt 5 title 'Go'" % dat]
    cmds.append("unset multiplot")
    gnuplot("\n".join(cmds) + "\n", tmp)
    return True


def width(rows, tmp, out):
    pts = []
    for n in (1, 4, 16, 64):
        r = rows.get("width_%d" % n) or {}
        if r.get("rps"):
            cpu = r.get("cpu_us_per_req")
            pts.append((n, r.get("E"), cpu / n if cpu else None))
    if not pts:
        return False
    dat = os.path.join(tmp, "width.dat")
    with open(dat, "w") as f:
        for n, e, c in pts:
            f.write("%d %s %s\n" % (n, "NaN" if e is None else e, "NaN" if c is None else c))
    floor = None
    fc, fm = rows.get("floor_curl") or {}, rows.get("floor_mhd") or {}
    if fc.get("cpu_us_per_req"):
        floor = fc["cpu_us_per_req"]
    cmds = [TERM, "set output '%s'" % out,
            "set title 'fan-out width: efficiency E and fanout CPU per backend call'",
            "set logscale x 2", "set xrange [0.8:80]", "set xtics (1,4,16,64)",
            "set xlabel 'backends per aggregate'", "set ylabel 'E'", "set yrange [0:*]",
            "set y2label 'CPU µs per backend call'", "set y2range [0:*]", "set y2tics",
            "set ytics nomirror", "set grid", "set key top center"]
    plot = ["'%s' using 1:2 axes x1y1 with linespoints lw 2 pt 7 title 'E'" % dat,
            "'' using 1:3 axes x1y2 with linespoints lw 2 pt 5 title 'CPU µs / call'"]
    if floor:
        plot.append("%f axes x1y2 with lines dt 2 lw 2 title 'libcurl probe µs / transfer'"
                    % floor)
    cmds.append("plot " + ", ".join(plot))
    gnuplot("\n".join(cmds) + "\n", tmp)
    return True


def floor(rows, tmp, out):
    f, g = rows.get("throughput") or {}, rows.get("throughput_go") or {}
    fc, fm = rows.get("floor_curl") or {}, rows.get("floor_mhd") or {}
    if not (f.get("cpu_us_per_req") and fc.get("cpu_us_per_req") and fm.get("cpu_us_per_req")):
        return False
    dat = os.path.join(tmp, "floor.dat")
    with open(dat, "w") as fh:
        fh.write("# name user sys mhd curl3\n")
        fh.write("fanout %f %f 0 0\n" % (f["cpu_user_us_per_req"], f["cpu_sys_us_per_req"]))
        if g.get("cpu_us_per_req"):
            fh.write("Go %f %f 0 0\n" % (g["cpu_user_us_per_req"], g["cpu_sys_us_per_req"]))
        fh.write("floor 0 0 %f %f\n" % (fm["cpu_us_per_req"], 3 * fc["cpu_us_per_req"]))
    cmds = [TERM, "set output '%s'" % out,
            "set title 'CPU per aggregate (3 static backends): fanout, Go, floor = MHD probe "
            "+ 3 x libcurl probe'",
            "set style data histograms", "set style histogram rowstacked",
            "set style fill solid 0.8 border -1", "set boxwidth 0.6", "set ylabel 'µs'",
            "set yrange [0:*]", "set grid ytics", "set key outside right",
            "plot '%s' using 2:xtic(1) title 'user', '' using 3 title 'sys', "
            "'' using 4 title 'libmicrohttpd probe', '' using 5 title '3 x libcurl probe'" % dat]
    gnuplot("\n".join(cmds) + "\n", tmp)
    return True


def plot_all(doc, run=1):
    """Writes the PNGs that the data of 'run' allow; returns the names written."""
    if shutil.which("gnuplot") is None:
        raise RuntimeError("gnuplot not installed (scripts/deps.sh bench)")
    rows = rows_of(doc, run)
    tmp = tempfile.mkdtemp(prefix="fanout-plot.")
    done = []
    try:
        for name, fn in (("latency.png", latency), ("width.png", width), ("floor.png", floor)):
            if fn(rows, tmp, os.path.join(RESULTS, name)):
                done.append(name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done


def main(argv):
    with open(os.path.join(RESULTS, "latest.json")) as f:
        doc = json.load(f)
    names = plot_all(doc, int(argv[0]) if argv else 1)
    print("wrote %s under bench/results/" % (", ".join(names) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
