"""The kustomize base: restricted operator pod, least-privilege RBAC, tiers."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from halyard_operator.api import parse_spec
from tests.operator.conftest import ROOT

MANIFESTS = ROOT / "manifests"


def docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def test_kustomization_lists_existing_files_and_the_crd_base():
    kust = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert "../crds" in kust["resources"]
    for res in kust["resources"]:
        assert (MANIFESTS / res).exists()
    crd_kust = yaml.safe_load((ROOT / "crds" / "kustomization.yaml").read_text())
    assert crd_kust["resources"] == ["llmdeployments.halyard.dev.yaml"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_builds_everything():
    out = subprocess.run(["kubectl", "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True)
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(out.stdout) if d)
    assert kinds == sorted(["CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole",
                            "ClusterRoleBinding", "Role", "RoleBinding", "PriorityClass", "PriorityClass", "PriorityClass",
                            "ConfigMap", "Deployment"])


def test_rbac_has_no_wildcards_and_covers_what_the_operator_does():
    role = next(d for d in docs("rbac.yaml") if d["kind"] == "ClusterRole")
    grants = {}
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field]
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                grants[(group, res)] = set(rule["verbs"])
    assert {"get", "create", "patch", "delete"} <= grants[("apps", "deployments")]
    assert {"get", "list", "watch", "patch"} <= grants[("halyard.dev", "llmdeployments")]
    assert "patch" in grants[("halyard.dev", "llmdeployments/status")]
    assert grants[("", "secrets")] == {"get"}
    assert "create" in grants[("", "events")]
    assert {"get", "list", "watch"} <= grants[("", "nodes")]


def test_operator_pod_is_restricted_and_probed():
    dep = docs("operator.yaml")[0]
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]
    assert "--all-namespaces" in c["args"]


def test_operator_runs_two_replicas_under_a_lease_only_its_namespace_grants():
    dep = docs("operator.yaml")[0]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert dep["spec"]["replicas"] == 2 and "--leader-elect" in c["args"]
    assert {e["name"] for e in c["env"]} >= {"POD_NAME", "POD_NAMESPACE"}
    rbac = docs("rbac.yaml")
    cluster_role = next(d for d in rbac if d["kind"] == "ClusterRole")
    assert not [r for r in cluster_role["rules"] if "coordination.k8s.io" in r["apiGroups"]]
    role = next(d for d in rbac if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == dep["metadata"]["namespace"]
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                      "resourceNames": ["halyard-operator"], "verbs": ["get", "update"]}]
    binding = next(d for d in rbac if d["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_priority_classes_order_and_batch_never_preempts():
    classes = {d["metadata"]["name"]: d for d in docs("priorityclasses.yaml")}
    assert classes["halyard-critical"]["value"] > classes["halyard-standard"]["value"] > classes["halyard-batch"]["value"]
    assert classes["halyard-batch"]["preemptionPolicy"] == "Never"
    assert classes["halyard-critical"]["preemptionPolicy"] == "PreemptLowerPriority"


@pytest.mark.parametrize("name", ["fixed-size.yaml", "spot-mix.yaml", "autoscaling-slo.yaml", "batch-spot.yaml"])
def test_samples_are_valid(name):
    obj = yaml.safe_load((MANIFESTS / "samples" / name).read_text())
    assert obj["apiVersion"] == "halyard.dev/v1alpha1" and obj["kind"] == "LLMDeployment"
    parse_spec(obj["spec"])
