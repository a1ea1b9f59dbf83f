"""fanout --schema: the JSON Schema of the config, generated from the tables config.c reads with.

- it is a valid draft 2020-12 schema (jsonschema's check_schema);
- the README's Configuration table (and the keys of the Limits table) names exactly the keys of
  the schema: every schema key is documented, every documented key exists;
- every shipped example config validates: the compose config, the ConfigMap's, the fuzz seed
  and the README's example (the embedded demo config cannot be printed: skipped);
- a config with an unknown key, a wrong type or an out-of-range value is refused by the schema
  and by fanout --check, both naming the same JSON path.
"""

import json
import os
import re

import jsonschema
import pytest
import yaml

from blackbox.fanout import REPO, run_cli

GOOD = {
    "listen": "127.0.0.1:0",
    "endpoints": [{
        "path": "/api/dashboard/{id}",
        "backends": [
            {"name": "user", "url": "http://127.0.0.1:9/users/{id}", "required": True},
            {"name": "orders", "url": "http://127.0.0.1:9/orders?user={id}", "timeout_ms": 100},
        ],
    }],
    "aggregate": {"allow_hosts": ["127.0.0.1:9"], "max_requests": 8},
    "log": {"level": "warn"},
}


def schema_of(binary):
    p = run_cli(binary, ["--schema"])
    assert p.returncode == 0, p
    assert p.stderr == "", p.stderr
    return json.loads(p.stdout)


def schema_keys(node, prefix=""):
    """Dotted paths of every key: "aggregate.path", "endpoints[].backends[].name"."""
    keys = set()
    for key, sub in node.get("properties", {}).items():
        path = prefix + key
        keys.add(path)
        if sub.get("type") == "object":
            keys |= schema_keys(sub, path + ".")
        elif sub.get("type") == "array" and sub["items"].get("type") == "object":
            keys |= schema_keys(sub["items"], path + "[].")
    return keys


def readme_section(title):
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    m = re.search(r"^## %s\n(.*?)(?=^## )" % re.escape(title), text, re.S | re.M)
    assert m, "README has no section %r" % title
    return m.group(1)


def table_rows(section):
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows[1:]  # Without the header row.


def readme_keys():
    """Keys the README documents, as schema paths ("backends[]." is under "endpoints[].")."""
    keys = set()
    for cells in table_rows(readme_section("Configuration")):
        names = re.findall(r"`([^`]+)`", cells[0])
        if cells[0] == "limits":
            names = re.findall(r"`([^`]+)`", cells[2])
        if names == ["log"]:
            # The log row's default is the object with each of its keys.
            names += ["log." + k for k in json.loads(cells[1].strip("`"))]
        keys.update(names)
    for cells in table_rows(readme_section("Limits")):
        keys.update(re.findall(r"`([^`]+)`", cells[1]))
    return {re.sub(r"^backends\[\]\.", "endpoints[].backends[].", k) for k in keys}


def test_schema_is_valid_draft_2020_12(fanout_bin):
    schema = schema_of(fanout_bin)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    backend = schema["properties"]["endpoints"]["items"]["properties"]["backends"]["items"]
    assert backend["required"] == ["name", "url"], backend
    assert schema["properties"]["timeout_ms"] == {
        "description": schema["properties"]["timeout_ms"]["description"],
        "type": "integer", "minimum": 1, "maximum": 3600000, "default": 1000}
    assert schema["properties"]["max_body_bytes"]["maximum"] == 2**53 - 1


def test_help_names_schema(fanout_bin):
    p = run_cli(fanout_bin, ["--help"])
    assert p.returncode == 0 and "--schema" in p.stdout, p


def test_readme_documents_exactly_the_schema_keys(fanout_bin):
    documented = readme_keys()
    schema = schema_keys(schema_of(fanout_bin))
    assert documented - schema == set(), "README keys missing from the schema"
    # A container ("endpoints", "aggregate", ...) is documented by the keys under it.
    undocumented = {k for k in schema - documented
                    if not any(d.startswith(k + ".") or d.startswith(k + "[].")
                               for d in documented)}
    assert undocumented == set(), "schema keys missing from README's tables"


def shipped_configs():
    with open(os.path.join(REPO, "deploy", "k8s", "configmap.yaml")) as f:
        configmap = yaml.safe_load(f)["data"]["fanout.json"]
    readme = re.search(r"```json\n(.*?)```", readme_section("Configuration"), re.S).group(1)
    docs = {"configmap": configmap, "readme": readme}
    for name in ("docker/compose/fanout.json", "fuzz/corpus/config/example.json"):
        with open(os.path.join(REPO, name)) as f:
            docs[name] = f.read()
    return docs


@pytest.mark.parametrize("name", ["docker/compose/fanout.json", "configmap",
                                  "fuzz/corpus/config/example.json", "readme", "demo"])
def test_shipped_configs_validate(fanout_bin, name):
    if name == "demo":
        pytest.skip("the embedded demo config has no way to be printed")
    validator = jsonschema.Draft202012Validator(schema_of(fanout_bin))
    doc = json.loads(shipped_configs()[name])
    errors = ["%s: %s" % (list(e.absolute_path), e.message) for e in validator.iter_errors(doc)]
    assert errors == [], name


def fanout_path(parts):
    """A jsonschema error path in fanout's spelling: endpoints[0].backends[1]."""
    out = ""
    for p in parts:
        out += "[%d]" % p if isinstance(p, int) else ("." if out else "") + p
    return out or "(root)"


def mutate(path, value):
    doc = json.loads(json.dumps(GOOD))
    obj = doc
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value
    return doc


BAD = [
    # (where, new value, fanout's line)
    (["endpoints", 0, "backends", 1, "urll"], "http://127.0.0.1:9/",
     'endpoints[0].backends[1]: unknown key "urll"'),
    (["workerz"], 2, '(root): unknown key "workerz"'),
    (["timeout_ms"], "100", "timeout_ms: must be an integer from 1 to 3600000"),
    (["endpoints", 0, "backends", 0, "required"], "yes",
     "endpoints[0].backends[0].required: must be true or false"),
    (["aggregate", "max_requests"], 0, "aggregate.max_requests: must be an integer from 1 to 1024"),
    (["max_header_bytes"], 1048577, "max_header_bytes: must be an integer from 1024 to 1048576"),
    (["log", "level"], "loud",
     'log.level: must be "debug", "info", "warn", "error" or "off"'),
]


@pytest.mark.parametrize("where,value,line", BAD, ids=[b[2].split(":")[0] for b in BAD])
def test_bad_config_refused_by_schema_and_check(fanout_bin, tmp_path, where, value, line):
    doc = mutate(where, value)
    validator = jsonschema.Draft202012Validator(schema_of(fanout_bin))
    paths = {fanout_path(e.absolute_path) for e in validator.iter_errors(doc)}
    assert paths == {line.split(": ")[0]}, paths

    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    p = run_cli(fanout_bin, ["--check", "-c", str(path)])
    assert p.returncode == 1, p
    assert p.stderr.splitlines() == [line], p.stderr
