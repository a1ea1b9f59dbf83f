"""Runs every C unit test binary (cmocka) built by make: build/test_*, build/asan/test_*,
build/tsan/test_*. One pytest test per binary; it passes when the binary exits 0 and no
sanitizer wrote a report. Build them with `make variants`."""

import glob
import os
import subprocess

import pytest

from blackbox.fanout import REPO, SANITIZER_MARKS, allow_missing, sanitizer_env

UNIT_TIMEOUT = 300


def unit_binaries():
    found = []
    for d in ("build", "build/asan", "build/tsan"):
        for p in sorted(glob.glob(os.path.join(REPO, d, "test_*"))):
            if os.path.isfile(p) and os.access(p, os.X_OK) and not p.endswith((".d", ".o")):
                found.append(os.path.relpath(p, REPO))
    return found


BINARIES = unit_binaries()


def test_unit_binaries_exist():
    if not BINARIES:
        msg = "no unit test binaries in build/, build/asan/, build/tsan/ (run: make variants)"
        if allow_missing():
            pytest.skip(msg)
        pytest.fail(msg)


@pytest.mark.parametrize("binary", BINARIES)
def test_unit(binary):
    env = sanitizer_env()
    env.setdefault("TSAN_OPTIONS", "second_deadlock_stack=1")
    p = subprocess.run([os.path.join(REPO, binary)], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, errors="replace", timeout=UNIT_TIMEOUT)
    out = "--- stdout ---\n%s\n--- stderr ---\n%s" % (p.stdout[-20000:], p.stderr[-20000:])
    assert p.returncode == 0, "%s exited %d\n%s" % (binary, p.returncode, out)
    for m in SANITIZER_MARKS:
        assert m not in p.stderr and m not in p.stdout, "%s: sanitizer report\n%s" % (binary, out)
