"""Server-side validation of LLMDeployment by the real kube-apiserver (schema + CEL)."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from e2e_kube import llmd
from halyard.dev.kube import KubectlError

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
URI = "file:///models/tiny"


def _set(path: str, value):
    """Mutation: set spec.<path> (dotted) to value; None deletes it."""

    def mutate(spec: dict) -> None:
        *parents, leaf = path.split(".")
        node = spec
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = copy.deepcopy(value)

    return mutate


def _both(*mutations):
    def mutate(spec: dict) -> None:
        for m in mutations:
            m(spec)

    return mutate


SCALING = {"minReplicas": 1, "maxReplicas": 4}
# (id, mutation of a valid spec, text the rejection must contain: the field)
CASES = [
    ("no-model", _set("model", None), "spec.model"),
    ("no-model-uri", _set("model.uri", None), "spec.model.uri"),
    ("bad-uri-scheme", _set("model.uri", "ftp://models/x"), "spec.model.uri"),
    ("bad-model-name", _set("model.name", "-leading-dash"), "spec.model.name"),
    ("model-name-not-string", _set("model.name", 42), "spec.model.name"),
    ("bad-dtype", _set("engine.dtype", "int3"), "spec.engine.dtype"),
    ("bad-quantization", _set("engine.quantization", "int3"), "spec.engine.quantization"),
    ("zero-max-model-len", _set("engine.maxModelLen", 0), "spec.engine.maxModelLen"),
    ("negative-max-num-seqs", _set("engine.maxNumSeqs", -1), "spec.engine.maxNumSeqs"),
    ("gpu-mem-util-above-1", _set("engine.gpuMemoryUtilization", 1.5), "spec.engine.gpuMemoryUtilization"),
    ("bad-drain-timeout", _set("engine.drainTimeout", "soon"), "spec.engine.drainTimeout"),
    ("too-many-extra-args", _set("engine.extraArgs", ["--x"] * 65), "spec.engine.extraArgs"),
    ("too-many-gpus", _set("resources.gpus", 17), "spec.resources.gpus"),
    ("negative-gpus", _set("resources.gpus", -1), "spec.resources.gpus"),
    ("gpus-not-a-power-of-two", _set("resources.gpus", 3), "spec.resources.gpus"),
    ("negative-replicas", _set("replicas", -1), "spec.replicas"),
    ("too-many-replicas", _set("replicas", 1001), "spec.replicas"),
    ("replicas-and-scaling", _set("scaling", SCALING), "spec.replicas"),
    ("neither-replicas-nor-scaling", _set("replicas", None), "spec.replicas"),
    ("scaling-without-max", _both(_set("replicas", None), _set("scaling", {"minReplicas": 1})),
     "spec.scaling.maxReplicas"),
    ("scaling-min-above-max", _both(_set("replicas", None), _set("scaling", {"minReplicas": 5, "maxReplicas": 2})),
     "spec.scaling.minReplicas"),
    ("bad-ttft-slo", _both(_set("replicas", None), _set("scaling", {**SCALING, "slo": {"ttftP95": "fast"}})),
     "spec.scaling.slo.ttftP95"),
    ("negative-queue-target", _both(_set("replicas", None),
                                    _set("scaling", {**SCALING, "targetQueuePerReplica": -1})),
     "spec.scaling.targetQueuePerReplica"),
    ("negative-on-demand-floor", _set("capacity", {"spot": {"enabled": True, "onDemandFloor": -1}}),
     "spec.capacity.spot.onDemandFloor"),
    ("floor-above-replicas", _set("capacity", {"spot": {"enabled": True, "onDemandFloor": 3}}), "onDemandFloor"),
    ("overprovision-above-100", _set("capacity", {"spot": {"enabled": True, "overprovision": 101}}),
     "spec.capacity.spot.overprovision"),
    ("bad-spot-fallback", _set("capacity", {"spot": {"enabled": True, "fallback": "maybe"}}),
     "spec.capacity.spot.fallback"),
    ("bad-pending-timeout", _set("capacity", {"spot": {"enabled": True, "pendingTimeout": "-5"}}),
     "spec.capacity.spot.pendingTimeout"),
    ("unknown-provider", _set("capacity", {"provider": "azure"}), "spec.capacity.provider"),
    ("custom-provider-without-pools", _set("capacity", {"provider": "custom"}),
     "spec.capacity.custom.onDemand.nodeSelector"),
    ("custom-pools-without-custom-provider",
     _set("capacity", {"provider": "karpenter", "custom": {"onDemand": {"nodeSelector": {"a": "b"}}}}),
     "spec.capacity.custom"),
    ("unknown-tier", _set("tier", "gold"), "spec.tier"),
    ("bad-pull-policy", _set("template", {"imagePullPolicy": "Sometimes"}), "spec.template.imagePullPolicy"),
    ("bad-env-name", _set("template", {"env": [{"name": "1 bad", "value": "x"}]}), "spec.template.env[0].name"),
    ("bad-toleration-operator", _set("template", {"tolerations": [{"key": "a", "operator": "Maybe"}]}),
     "spec.template.tolerations[0].operator"),
    ("unknown-field", _set("engine.maxBatchSize", 8), "spec.engine.maxBatchSize"),
]


def test_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("mutate,field", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_llmdeployment_is_rejected_naming_the_field(kubectl, validation_ns, mutate, field):
    obj = llmd("bad", validation_ns, URI, replicas=2)
    mutate(obj["spec"])
    with pytest.raises(KubectlError) as err:
        kubectl.run("create", "--validate=strict", "-f", "-", stdin=yaml.safe_dump(obj))
    assert kubectl.items("llmd", "-n", validation_ns) == []  # nothing half-created
    message = err.value.stderr
    assert field in message, message
    assert "is invalid" in message or "strict decoding error" in message or "unknown field" in message, message


def test_valid_baseline_is_accepted(kubectl, validation_ns):
    obj = llmd("good", validation_ns, URI, replicas=2)
    kubectl.run("create", "--validate=strict", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(obj))


SAMPLES = sorted((ROOT / "manifests" / "samples").glob("*.yaml"))


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_sample_is_accepted(kubectl, validation_ns, sample):
    docs = [d for d in yaml.safe_load_all(sample.read_text()) if d]
    assert docs, f"{sample.name} is empty"
    for doc in docs:
        ns = doc.get("metadata", {}).get("namespace") or validation_ns
        kubectl.run("create", "namespace", ns, check=False)
        kubectl.run("create", "--validate=strict", "--dry-run=server", "-n", ns, "-f", "-",
                    stdin=yaml.safe_dump(doc))


def test_samples_exist():
    assert SAMPLES, "manifests/samples/ has no sample"


def test_explain_shows_the_field_descriptions(kubectl):
    crd = yaml.safe_load((ROOT / "crds" / "llmdeployments.halyard.dev.yaml").read_text())
    spot = (crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["capacity"]["properties"]["spot"])
    out = kubectl.run("explain", "llmd.spec.capacity.spot")
    assert " ".join(spot["description"].split()) in " ".join(out.split())
    for field, schema in spot["properties"].items():
        assert field in out
        first_words = " ".join(schema["description"].split()[:4])
        assert first_words in " ".join(out.split()), (field, out)


@pytest.fixture(scope="module")
def validation_ns(kubectl):
    kubectl.run("create", "namespace", "validation", check=False)
    yield "validation"
    kubectl.run("delete", "namespace", "validation", "--wait=false", check=False)
