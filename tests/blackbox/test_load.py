"""Many clients at once: every answer complete and byte-correct, nothing mixed up."""

import re
import socket
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
            ep("/api/churn/{id}", [
                be("a", b.url("/id/{id}")),
                be("hang", b.url("/hang"), timeout_ms=150),
                be("b", b.url(b.route({"b": 1}))),
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


def test_deadlines_and_disconnects_under_load(fo):
    """Every request has a call cut by its timeout; half the clients leave mid-request. Every
    answer that is waited for is right, and the process survives (checked by the fo fixture)."""
    clients, per_client = 16, 5
    start = threading.Barrier(clients)

    def client(c):
        bad = []
        start.wait(10)
        for i in range(per_client):
            ident = "c%dr%d" % (c, i)
            if c % 2:
                s = socket.create_connection(("127.0.0.1", fo.port), timeout=10)
                s.sendall(b"GET /api/churn/%s HTTP/1.1\r\nHost: x\r\n\r\n" % ident.encode())
                s.close()
                continue
            r = fo.get("/api/churn/" + ident)
            if r.status != 200 or r.pairs() != [("a", {"id": ident}), ("b", {"b": 1})] \
                    or r.headers.get("X-Fanout-Complete") != "false":
                bad.append((ident, r))
        return bad

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    bad = [b for rs in results for b in rs]
    assert not bad, bad[:3]
    r = fo.get("/api/churn/last")
    assert r.status == 200, r
