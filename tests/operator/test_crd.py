"""The committed CRD is the generator's output and carries the documented schema."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from halyard_operator.api import crdgen

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "llmdeployments.halyard.dev.yaml"


def load() -> dict:
    return yaml.safe_load(CRD_FILE.read_text())


def version() -> dict:
    return load()["spec"]["versions"][0]


def spec_schema() -> dict:
    return version()["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_committed_crd_matches_generator():
    out = subprocess.run([sys.executable, "-m", "halyard_operator.api.crdgen"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == CRD_FILE.read_text(), "crds/ is stale: run `make crds` and commit"


def test_names_and_scope():
    crd = load()
    assert crd["metadata"]["name"] == "llmdeployments.halyard.dev"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"], names["categories"]) == (
        "LLMDeployment", "llmdeployments", ["llmd"], ["halyard"])
    assert crd["spec"]["scope"] == "Namespaced" and version()["name"] == "v1alpha1"


def _walk(schema: dict, path: str):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")


def test_every_field_has_a_description_and_a_type():
    for path, schema in _walk(spec_schema(), "spec"):
        assert schema.get("description"), f"{path} has no description"
        assert "type" in schema or schema.get("x-kubernetes-int-or-string"), f"{path} has no type"


def test_explain_spot_is_useful():
    spot = spec_schema()["properties"]["capacity"]["properties"]["spot"]
    assert set(spot["properties"]) >= {"enabled", "onDemandFloor", "overprovision", "fallback",
                                       "pendingTimeout"}
    assert spot["properties"]["pendingTimeout"]["default"] == "2m"
    assert spot["properties"]["fallback"]["enum"] == ["onDemand", "none"]


def test_enums_defaults_bounds_and_duration_patterns():
    props = spec_schema()["properties"]
    assert props["engine"]["properties"]["quantization"]["enum"] == ["none", "int8", "int4", "int4-awq"]
    assert props["tier"]["enum"] == ["critical", "standard", "batch"]
    assert props["tier"]["default"] == "standard"
    provider = props["capacity"]["properties"]["provider"]
    assert provider["enum"] == ["auto", "karpenter", "eks", "gke", "aks", "custom"]
    slo = props["scaling"]["properties"]["slo"]["properties"]["ttftP95"]
    assert slo["pattern"].startswith("^(") and "ms" in slo["pattern"]
    assert props["scaling"]["properties"]["maxReplicas"]["minimum"] == 1
    behavior = props["scaling"]["properties"]["behavior"]["properties"]
    assert behavior["scaleDown"]["properties"]["stabilizationWindow"]["default"] == "5m"
    assert behavior["scaleUp"]["properties"]["stabilizationWindow"]["default"] == "0s"


def _rules(schema: dict) -> list[str]:
    return [r["rule"] for r in schema.get("x-kubernetes-validations", [])]


def test_cel_rules_and_messages():
    spec = spec_schema()
    assert "has(self.replicas) != has(self.scaling)" in _rules(spec)
    assert any("onDemandFloor <= self.scaling.maxReplicas" in r for r in _rules(spec))
    assert "self.minReplicas <= self.maxReplicas" in _rules(spec["properties"]["scaling"])
    capacity = _rules(spec["properties"]["capacity"])
    assert any("self.provider != 'custom'" in r and "onDemand.nodeSelector" in r for r in capacity)
    for rule in spec["x-kubernetes-validations"]:
        assert rule["message"].startswith(("set ", "spec."))


def test_subresources_and_printer_columns():
    v = version()
    assert v["subresources"]["status"] == {}
    assert v["subresources"]["scale"] == {"specReplicasPath": ".spec.replicas",
                                          "statusReplicasPath": ".status.replicas",
                                          "labelSelectorPath": ".status.selector"}
    columns = {c["name"]: c["jsonPath"] for c in v["additionalPrinterColumns"]}
    for name in ("Ready", "Replicas", "On-demand", "Spot", "Tier", "TTFT-p95", "Age"):
        assert name in columns
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'


def test_status_conditions_are_a_map_list_without_phase():
    status = version()["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert "phase" not in status["properties"]
    assert status["properties"]["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_generator_refuses_undocumented_fields():
    from dataclasses import dataclass

    from halyard_operator.api.schema import spec_field

    @dataclass(frozen=True, kw_only=True)
    class Bad:
        x: int = spec_field("")

    try:
        crdgen.object_schema(Bad, "bad")
    except ValueError as exc:
        assert "Bad.x has no description" in str(exc)
    else:
        raise AssertionError("undocumented field accepted")


def test_object_defaults_are_spelled_out_for_the_api_server():
    # The API server validates a default (CEL included) as written, without
    # applying nested defaults first: `capacity: {}` would fail its own rules.
    capacity = spec_schema()["properties"]["capacity"]["default"]
    assert capacity["provider"] == "auto"
    assert capacity["spot"] == {"enabled": False, "onDemandFloor": 1, "overprovision": 0,
                                "fallback": "onDemand", "pendingTimeout": "2m"}
    behavior = spec_schema()["properties"]["scaling"]["properties"]["behavior"]["default"]
    assert behavior["scaleDown"]["stabilizationWindow"] == "5m"


def test_patterned_fields_also_carry_a_readable_rule():
    uri = spec_schema()["properties"]["model"]["properties"]["uri"]
    (rule,) = uri["x-kubernetes-validations"]
    assert rule["rule"].startswith("self.matches(r'^(hf://")
    assert "hf://org/repo" in rule["message"]
