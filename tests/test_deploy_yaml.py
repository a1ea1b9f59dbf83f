"""Static checks of the deployment files (fast; the image itself is tested by docker/test.sh).

- yamllint passes on docker/compose.yaml and deploy/k8s/ (config: .yamllint.yaml);
- the Kubernetes manifests have what the README promises: probes, resources, the config mount,
  a Service and an HPA that point at the Deployment;
- the configs shipped for compose and in the ConfigMap pass `fanout --check`;
- the compose file and the nginx load balancer agree on the replica names;
- the Dockerfile runs as non-root, exposes 8080 and has a HEALTHCHECK.
"""

import os
import re
import subprocess

import pytest
import yaml

from blackbox.fanout import VARIANTS, allow_missing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S = os.path.join(REPO, "deploy", "k8s")
COMPOSE = os.path.join(REPO, "docker", "compose.yaml")


def load_k8s():
    docs = {}
    for name in sorted(os.listdir(K8S)):
        if name.endswith(".yaml"):
            with open(os.path.join(K8S, name)) as f:
                for doc in yaml.safe_load_all(f):
                    docs[doc["kind"]] = doc
    return docs


def fanout_check(tmp_path, text, name):
    binary = VARIANTS["plain"]
    if not os.access(binary, os.X_OK):
        if allow_missing():
            pytest.skip("build/fanout is missing")
        pytest.fail("build/fanout is missing (make)")
    path = tmp_path / name
    path.write_text(text)
    res = subprocess.run([binary, "--check", "-c", str(path)], capture_output=True, text=True,
                         timeout=10)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "%s: ok" % path


def test_yamllint():
    res = subprocess.run(["yamllint", "-s", "-c", os.path.join(REPO, ".yamllint.yaml"),
                          COMPOSE, K8S], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_k8s_manifests():
    docs = load_k8s()
    assert {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
            "Kustomization"} <= set(docs)
    dep = docs["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind])
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    mount = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/fanout"]
    assert mount, c["volumeMounts"]
    vol = [v for v in pod["volumes"] if v["name"] == mount[0]["name"]][0]
    assert vol["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert "fanout.json" in docs["ConfigMap"]["data"]
    labels = dep["spec"]["selector"]["matchLabels"]
    assert docs["Service"]["spec"]["selector"] == labels
    assert dep["spec"]["template"]["metadata"]["labels"] == labels
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", dep["metadata"]["name"])
    listed = set(docs["Kustomization"]["resources"])
    on_disk = {n for n in os.listdir(K8S) if n.endswith(".yaml") and n != "kustomization.yaml"}
    assert listed == on_disk


def test_k8s_config_is_valid(tmp_path):
    fanout_check(tmp_path, load_k8s()["ConfigMap"]["data"]["fanout.json"], "k8s.json")


def test_compose_config_is_valid(tmp_path):
    with open(os.path.join(REPO, "docker", "compose", "fanout.json")) as f:
        fanout_check(tmp_path, f.read(), "compose.json")


def test_compose_and_lb_agree():
    with open(COMPOSE) as f:
        compose = yaml.safe_load(f)
    services = compose["services"]
    with open(os.path.join(REPO, "docker", "nginx", "lb.conf")) as f:
        upstreams = re.findall(r"^\s*server\s+([\w.-]+):8080\b", f.read(), re.M)
    assert len(upstreams) == 2 and set(upstreams) <= set(services), upstreams
    assert services["lb"]["profiles"] == ["scale"]
    assert "profiles" not in services["fanout"]  # the plain demo is the default profile
    for name in upstreams:
        assert services[name]["image"] == services["fanout"]["image"]
    for name in ("fanout", "lb"):
        for port in services[name]["ports"]:
            assert port.startswith("${FANOUT_BIND:-127.0.0.1}:"), port


def test_dockerfile_basics():
    with open(os.path.join(REPO, "docker", "Dockerfile")) as f:
        text = f.read()
    assert len(re.findall(r"^FROM debian:bookworm-slim\b", text, re.M)) == 2
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and not users[-1].startswith(("0", "root")), users
    assert re.search(r"^EXPOSE 8080$", text, re.M)
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    assert re.search(r'^ENTRYPOINT \["/usr/local/bin/fanout-entrypoint"\]$', text, re.M)
    with open(os.path.join(REPO, "docker", "entrypoint.sh")) as f:
        entry = f.read()
    # fanout must replace the shell (PID 1) so that SIGTERM reaches it.
    assert entry.count("exec /usr/local/bin/fanout") >= 3
