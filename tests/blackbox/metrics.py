"""metrics.py -- read fanout's Prometheus text exposition (GET /metrics) in tests."""

import re
from typing import Dict, FrozenSet, Tuple

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')

Key = Tuple[str, FrozenSet[Tuple[str, str]]]


class Metrics:
    """One scrape: every sample keyed by name and label set."""

    def __init__(self, text: str):
        self.text = text
        self.samples: Dict[Key, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = _LINE.match(line)
            assert m, "not a Prometheus sample line: %r" % line
            name, labels, value = m.groups()
            pairs = []
            if labels:
                pos = 0
                while pos < len(labels):
                    lm = _LABEL.match(labels, pos)
                    assert lm, "bad labels in %r" % line
                    pairs.append((lm.group(1), lm.group(2)))
                    pos = lm.end()
            self.samples[(name, frozenset(pairs))] = float(value)

    def get(self, name: str, **labels) -> float:
        """The sample with exactly these labels; 0 when absent (a counter not yet touched)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.samples)

    def sum(self, name: str, **labels) -> float:
        """Sum over every sample of 'name' whose labels include 'labels'."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= ls)


def scrape(fo, path: str = "/metrics") -> Metrics:
    r = fo.get(path)
    assert r.status == 200, r
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return Metrics(r.body.decode())
