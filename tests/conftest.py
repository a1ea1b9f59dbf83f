"""Fixtures for the fanout test suite.

backend     one controllable loopback backend for the whole session
             (tests/blackbox/backend.py)
fanout_bin  the binary under test; every black-box test runs once per variant,
             "plain" (build/fanout), "asan" (build/asan/fanout, ASan+UBSan) and
             "tsan" (build/tsan/fanout, ThreadSanitizer).
             A missing binary fails the test unless FANOUT_ALLOW_MISSING=1 (then: skip).
fo          a fanout started once per test module and variant with the module's
             config, fanout_config(backend) defined in the test module; after
             every test it must still be running with a clean stderr, and at the
             end of the module SIGTERM must make it exit 0.
spawn       factory for tests that need their own instance: spawn(config, args=())
             (config None = the embedded default); every instance it started is
             stopped and checked the same way when the test ends.
"""

import os

import pytest

from blackbox.backend import Backend
from blackbox.fanout import VARIANTS, Fanout, allow_missing


@pytest.fixture(scope="session")
def backend():
    b = Backend()
    yield b
    b.close()


@pytest.fixture(scope="module", params=sorted(VARIANTS), ids=lambda v: v)
def variant(request):
    name = request.param
    path = VARIANTS[name]
    if not os.access(path, os.X_OK):
        msg = "%s binary %s is missing (build it: make variants)" % (name, path)
        if allow_missing():
            pytest.skip(msg)
        pytest.fail(msg)
    return name


@pytest.fixture(scope="module")
def fanout_bin(variant):
    return VARIANTS[variant]


@pytest.fixture(scope="module")
def _module_fo(request, variant, backend, tmp_path_factory):
    make_config = getattr(request.module, "fanout_config", None)
    assert make_config is not None, "test module has no fanout_config(backend)"
    workdir = str(tmp_path_factory.mktemp("fanout"))
    fo = Fanout.start(VARIANTS[variant], variant, make_config(backend), workdir,
                      name=request.module.__name__.rsplit(".", 1)[-1])
    yield fo
    fo.stop()


@pytest.fixture
def fo(_module_fo):
    yield _module_fo
    _module_fo.check_alive()


@pytest.fixture
def spawn(variant, tmp_path):
    started = []

    def start(config, args=()):
        fo = Fanout.start(VARIANTS[variant], variant, config, str(tmp_path), args,
                          name="spawn%d" % len(started))
        started.append(fo)
        return fo

    yield start
    errors = []
    for fo in started:
        try:
            fo.stop()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n\n".join(errors)
