"""Runs each libFuzzer target (fuzz/fuzz_*.c) briefly through fuzz/run.sh: built with
-fsanitize=fuzzer,address,undefined, FANOUT_FUZZ_SECONDS (default 20) on a copy of its seed
corpus. One pytest test per target; it fails on a crash, leak, UB report or timeout, and the
failure message carries the sanitizer summary and the crashing input (also saved under
build/fuzz/artifacts/). Six targets x 20 s keep the suite's fuzzing to about 120 s."""

import glob
import os
import shutil
import subprocess

import pytest

from blackbox.fanout import REPO, allow_missing

SECONDS = int(os.environ.get("FANOUT_FUZZ_SECONDS", "20"))
BUILD_ALLOWANCE = 180  # compiling a target with every sanitizer on a slow machine
TARGETS = sorted(os.path.basename(p)[:-2] for p in glob.glob(os.path.join(REPO, "fuzz", "fuzz_*.c")))


def test_fuzz_targets_exist():
    assert TARGETS, "no fuzz/fuzz_*.c"
    for t in TARGETS:
        assert os.path.isdir(os.path.join(REPO, "fuzz", "corpus", t[len("fuzz_"):])), \
            "%s has no seed corpus fuzz/corpus/%s/" % (t, t[len("fuzz_"):])


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz(target):
    if shutil.which(os.environ.get("CLANG", "clang")) is None:
        msg = "clang is not installed (scripts/deps.sh test)"
        if allow_missing():
            pytest.skip(msg)
        pytest.fail(msg)
    p = subprocess.run(["bash", os.path.join(REPO, "fuzz", "run.sh"), str(SECONDS), target],
                       cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=SECONDS + BUILD_ALLOWANCE)
    out = "--- stdout ---\n%s\n--- stderr ---\n%s" % (p.stdout[-10000:], p.stderr[-20000:])
    assert p.returncode != 2, "%s did not build\n%s" % (target, out)
    assert p.returncode == 0, "%s found a problem\n%s" % (target, out)
