"""promparse.py -- a strict parser for the Prometheus text exposition format 0.0.4.

Used to check GET /metrics where promtool is not installed, and to read values in tests.
parse(text) returns an Exposition or raises PromFormatError naming the line. It checks what
a scraper relies on:

- every line is a comment ("# HELP name text", "# TYPE name type", any other "# ..."), blank,
  or a sample "name{label="value",...} value [timestamp]";
- metric and label names are valid, label values use only the escapes \\\\, \\" and \\n, a
  label appears once per sample, no label name starts with "__";
- values are floats, "+Inf", "-Inf" or "NaN"; timestamps are integers;
- HELP and TYPE appear at most once per family, TYPE before the family's first sample, and a
  family's lines form one group (no family comes back after another one started);
- no sample (name + label set) appears twice;
- counters are not negative and not NaN; histograms have only _bucket/_sum/_count samples,
  every _bucket has an "le" label, per label set the buckets grow with "le", end with
  le="+Inf", and that bucket equals _count; _count is not negative.
"""

import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Tuple

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
HIST_SUFFIXES = ("_bucket", "_sum", "_count")
SUMMARY_SUFFIXES = ("_sum", "_count")

Key = Tuple[str, FrozenSet[Tuple[str, str]]]


class PromFormatError(AssertionError):
    """The text is not valid exposition format; the message names the line."""


@dataclass
class Sample:
    name: str  # sample name as written (e.g. fanout_x_bucket)
    labels: Dict[str, str]  # unescaped label values
    value: float
    line: int  # 1-based line number


@dataclass
class Family:
    name: str
    type: str = "untyped"  # from # TYPE, else untyped
    help: Optional[str] = None  # unescaped HELP text, None when absent
    typed: bool = False  # a # TYPE line was seen
    samples: List[Sample] = field(default_factory=list)


def _unescape_help(s: str) -> str:
    return s.replace("\\\\", "\x00").replace("\\n", "\n").replace("\x00", "\\")


def _float(s: str, where: str) -> float:
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        raise PromFormatError("%s: bad value %r" % (where, s))
    return float(s)


def _labels(text: str, pos: int, where: str) -> Tuple[Dict[str, str], int]:
    """Parse '{...}' starting at text[pos] == '{'; returns (labels, index after '}')."""
    out: Dict[str, str] = {}
    pos += 1
    while True:
        if pos < len(text) and text[pos] == "}":
            return out, pos + 1
        m = LABEL_NAME.match(text, pos)
        if not m:
            raise PromFormatError("%s: bad label name at column %d" % (where, pos + 1))
        lname = m.group(0)
        pos = m.end()
        if text[pos:pos + 2] != '="':
            raise PromFormatError("%s: expected =\" after label %s" % (where, lname))
        pos += 2
        val = []
        while True:
            if pos >= len(text):
                raise PromFormatError("%s: unterminated value of label %s" % (where, lname))
            ch = text[pos]
            if ch == "\\":
                nxt = text[pos + 1:pos + 2]
                if nxt not in ("\\", '"', "n"):
                    raise PromFormatError("%s: bad escape \\%s in label %s" % (where, nxt, lname))
                val.append("\n" if nxt == "n" else nxt)
                pos += 2
            elif ch == '"':
                pos += 1
                break
            elif ch == "\n":
                raise PromFormatError("%s: raw newline in label %s" % (where, lname))
            else:
                val.append(ch)
                pos += 1
        if lname in out:
            raise PromFormatError("%s: label %s given twice" % (where, lname))
        if lname.startswith("__"):
            raise PromFormatError("%s: reserved label name %s" % (where, lname))
        out[lname] = "".join(val)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "}":
            continue
        else:
            raise PromFormatError("%s: expected , or } after label %s" % (where, lname))


def _family_of(sample: str, families: Dict[str, Family]) -> str:
    """The family a sample name belongs to: itself, or the typed histogram/summary whose name
    it extends with a suffix."""
    for suffix in HIST_SUFFIXES:
        if sample.endswith(suffix):
            base = sample[: -len(suffix)]
            fam = families.get(base)
            if fam is not None and (fam.type == "histogram" or
                                    (fam.type == "summary" and suffix in SUMMARY_SUFFIXES)):
                return base
    return sample


class Exposition:
    """A parsed scrape."""

    def __init__(self, text: str):
        self.text = text
        self.families: "OrderedDict[str, Family]" = OrderedDict()
        self.samples: Dict[Key, float] = {}
        self._parse()
        self._check()

    # ---- parsing ----

    def _family(self, name: str) -> Family:
        fam = self.families.get(name)
        if fam is None:
            fam = self.families[name] = Family(name)
        return fam

    def _parse(self):
        if self.text and not self.text.endswith("\n"):
            raise PromFormatError("the exposition does not end with a newline")
        current = None  # family of the last line
        closed = set()  # families whose group ended
        for n, line in enumerate(self.text.split("\n")[:-1] if self.text else [], 1):
            where = "line %d %r" % (n, line[:200])
            if line.strip() == "":
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    name = parts[2]
                    if not NAME.fullmatch(name):
                        raise PromFormatError("%s: bad metric name" % where)
                    if name in closed:
                        raise PromFormatError("%s: family %s comes back after another one"
                                              % (where, name))
                    if current is not None and current != name:
                        closed.add(current)
                    current = name
                    fam = self._family(name)
                    rest = parts[3] if len(parts) > 3 else ""
                    if parts[1] == "HELP":
                        if fam.help is not None:
                            raise PromFormatError("%s: second HELP for %s" % (where, name))
                        fam.help = _unescape_help(rest)
                    else:
                        if fam.typed:
                            raise PromFormatError("%s: second TYPE for %s" % (where, name))
                        if fam.samples:
                            raise PromFormatError("%s: TYPE after samples of %s"
                                                  % (where, name))
                        if rest not in TYPES:
                            raise PromFormatError("%s: unknown type %r" % (where, rest))
                        fam.type, fam.typed = rest, True
                continue  # any other comment
            m = NAME.match(line)
            if not m:
                raise PromFormatError("%s: bad metric name" % where)
            sname = m.group(0)
            pos = m.end()
            labels: Dict[str, str] = {}
            if pos < len(line) and line[pos] == "{":
                labels, pos = _labels(line, pos, where)
            rest = line[pos:]
            if not rest.startswith((" ", "\t")):
                raise PromFormatError("%s: expected a space before the value" % where)
            fields = rest.split()
            if len(fields) not in (1, 2):
                raise PromFormatError("%s: expected value [timestamp]" % where)
            value = _float(fields[0], where)
            if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
                raise PromFormatError("%s: bad timestamp %r" % (where, fields[1]))
            fname = _family_of(sname, self.families)
            if fname in closed:
                raise PromFormatError("%s: family %s comes back after another one"
                                      % (where, fname))
            if current is not None and current != fname:
                closed.add(current)
            current = fname
            key = (sname, frozenset(labels.items()))
            if key in self.samples:
                raise PromFormatError("%s: duplicate sample" % where)
            self.samples[key] = value
            self._family(fname).samples.append(Sample(sname, labels, value, n))

    def _check(self):
        for fam in self.families.values():
            if fam.type == "counter":
                for s in fam.samples:
                    if math.isnan(s.value) or s.value < 0:
                        raise PromFormatError("line %d: counter %s is %r"
                                              % (s.line, s.name, s.value))
            elif fam.type == "histogram":
                self._check_histogram(fam)

    def _check_histogram(self, fam: Family):
        groups: Dict[FrozenSet, dict] = {}
        for s in fam.samples:
            suffix = s.name[len(fam.name):]
            if suffix not in HIST_SUFFIXES:
                raise PromFormatError("line %d: %s in histogram %s" % (s.line, s.name, fam.name))
            base = {k: v for k, v in s.labels.items() if not (suffix == "_bucket" and k == "le")}
            g = groups.setdefault(frozenset(base.items()), {"buckets": [], "sum": None,
                                                            "count": None})
            if suffix == "_bucket":
                if "le" not in s.labels:
                    raise PromFormatError("line %d: bucket without le" % s.line)
                g["buckets"].append((_float(s.labels["le"], "line %d le" % s.line), s.value,
                                     s.line))
            elif suffix == "_sum":
                g["sum"] = s.value
            else:
                if s.value < 0 or math.isnan(s.value):
                    raise PromFormatError("line %d: _count is %r" % (s.line, s.value))
                g["count"] = s.value
        for labels, g in groups.items():
            what = "%s%s" % (fam.name, dict(labels))
            b = g["buckets"]
            if not b:
                raise PromFormatError("%s: no buckets" % what)
            les = [le for le, _, _ in b]
            if les != sorted(les) or len(set(les)) != len(les):
                raise PromFormatError("%s: le values not strictly increasing: %s" % (what, les))
            if les[-1] != math.inf:
                raise PromFormatError("%s: no le=\"+Inf\" bucket" % what)
            vals = [v for _, v, _ in b]
            if any(x > y for x, y in zip(vals, vals[1:])):
                raise PromFormatError("%s: buckets not cumulative: %s" % (what, vals))
            if g["count"] is None or g["sum"] is None:
                raise PromFormatError("%s: _sum or _count missing" % what)
            if vals[-1] != g["count"]:
                raise PromFormatError("%s: +Inf bucket %r != _count %r"
                                      % (what, vals[-1], g["count"]))

    # ---- reading ----

    def family(self, name: str) -> Family:
        fam = self.families.get(name)
        assert fam is not None, "no family %s in\n%s" % (name, self.text[:3000])
        return fam

    def find(self, name: str, **labels) -> Optional[float]:
        """The sample with exactly these labels, or None."""
        return self.samples.get((name, frozenset(labels.items())))

    def get(self, name: str, **labels) -> float:
        """The sample with exactly these labels; fails the test when it is absent."""
        v = self.find(name, **labels)
        assert v is not None, "no sample %s%s in\n%s" % (name, labels, self.text[:3000])
        return v

    def sum(self, name: str, **labels) -> float:
        """Sum over every sample of 'name' whose labels include 'labels'."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= ls)

    def select(self, name: str, **labels) -> List[Tuple[Dict[str, str], float]]:
        """(labels, value) of every sample of 'name' whose labels include 'labels'."""
        want = set(labels.items())
        return [(dict(ls), v) for (n, ls), v in self.samples.items()
                if n == name and want <= ls]


def parse(text: str) -> Exposition:
    return Exposition(text)
