"""Many clients at once: every answer complete and byte-correct, nothing mixed up."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor

from blackbox.backend import BIGNUM_BODY
from blackbox.fanout import backend as be, endpoint as ep

CLIENTS = 32
PER_CLIENT = 25


def fanout_config(b):
    return {
        "timeout_ms": 5000,
        "endpoints": [
            ep("/api/load/{id}", [
                be("a", b.url("/id/{id}")),
                be("big", b.url("/bignum")),
                be("m", b.url(b.route({"lifted": [1, 2, 3]})), merge=True),
            ]),
        ],
    }


def test_concurrent_clients_all_correct(fo):
    start = threading.Barrier(CLIENTS)

    def client(c):
        conn = fo.connect(timeout=30)
        bad = []
        try:
            start.wait(10)
            for i in range(PER_CLIENT):
                ident = "c%dr%d" % (c, i)
                r = fo.request("GET", "/api/load/" + ident, conn=conn)
                ok = (r.status == 200
                      and r.headers.get("X-Fanout-Complete") == "true"
                      and re.search(rb'"a"\s*:\s*\{"id":"%s"\}' % ident.encode(), r.body)
                      and re.search(rb'"big"\s*:\s*' + re.escape(BIGNUM_BODY), r.body)
                      and r.pairs() == [("a", {"id": ident}), ("big", {"n": 12345678901234567890}),
                                        ("lifted", [1, 2, 3])])
                if not ok:
                    bad.append((ident, r))
        finally:
            conn.close()
        return bad

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    bad = [b for rs in results for b in rs]
    assert not bad, "%d of %d answers wrong, first: %r" % (len(bad), CLIENTS * PER_CLIENT, bad[:3])
