"""Spec parsing: defaults, conversions, and errors that name the field and the fix."""
from __future__ import annotations

import pytest

from halyard_operator.api import InvalidSpec, LLMDeploymentSpec, parse_spec


def base(**over) -> dict:
    spec = {"model": {"name": "chat-8b", "uri": "hf://org/repo"}, "replicas": 2}
    spec.update(over)
    return spec


def errors_of(spec: dict) -> dict[str, str]:
    with pytest.raises(InvalidSpec) as info:
        parse_spec(spec)
    return {e.path: e.message for e in info.value.errors}


def test_minimal_spec_gets_documented_defaults():
    spec = parse_spec(base())
    assert isinstance(spec, LLMDeploymentSpec)
    assert spec.replicas == 2 and spec.scaling is None
    assert spec.tier == "standard"
    assert spec.engine.quantization == "none" and spec.engine.prefix_caching is True
    assert spec.engine.drain_timeout == 30.0
    assert spec.resources.gpus == 1
    assert spec.capacity.provider == "auto" and spec.capacity.spot.enabled is False
    assert spec.capacity.spot.on_demand_floor == 1 and spec.capacity.spot.pending_timeout == 120.0


def test_scaling_durations_become_seconds_and_directional_defaults_differ():
    spec = parse_spec(base(replicas=None, scaling={
        "minReplicas": 2, "maxReplicas": 8, "slo": {"ttftP95": "500ms", "itlP95": "1m30s"}}))
    assert spec.scaling.slo.ttft_p95 == pytest.approx(0.5)
    assert spec.scaling.slo.itl_p95 == pytest.approx(90.0)
    assert spec.scaling.behavior.scale_up.stabilization_window == 0.0
    assert spec.scaling.behavior.scale_down.stabilization_window == 300.0


def test_parsed_spec_is_frozen():
    spec = parse_spec(base())
    with pytest.raises(AttributeError):
        spec.replicas = 3  # type: ignore[misc]


def test_replicas_and_scaling_are_exclusive():
    errs = errors_of(base(scaling={"maxReplicas": 3}))
    assert "exactly one of spec.replicas" in errs["spec"]
    errs = errors_of(base(replicas=None))
    assert "exactly one of spec.replicas" in errs["spec"]


def test_min_above_max_names_the_field():
    errs = errors_of(base(replicas=None, scaling={"minReplicas": 5, "maxReplicas": 2}))
    assert "maxReplicas" in errs["spec.scaling.minReplicas"]


def test_max_replicas_is_required_and_bounded():
    assert errors_of(base(replicas=None, scaling={}))["spec.scaling.maxReplicas"] == "is required"
    msg = errors_of(base(replicas=None, scaling={"maxReplicas": 0}))["spec.scaling.maxReplicas"]
    assert ">= 1" in msg


def test_on_demand_floor_must_fit_the_size():
    spot = {"spot": {"enabled": True, "onDemandFloor": 3}}
    errs = errors_of(base(capacity=spot))
    assert "onDemandFloor" in errs["spec.capacity.spot.onDemandFloor"]
    errs = errors_of(base(replicas=None, scaling={"maxReplicas": 2}, capacity=spot))
    assert "maxReplicas" in errs["spec.capacity.spot.onDemandFloor"]
    assert parse_spec(base(replicas=3, capacity=spot)).capacity.spot.on_demand_floor == 3


@pytest.mark.parametrize("value", ["500", "5 s", "1d", "fast", ""])
def test_bad_duration_says_what_a_duration_looks_like(value):
    errs = errors_of(base(replicas=None, scaling={"maxReplicas": 2, "slo": {"ttftP95": value}}))
    assert "500ms" in errs["spec.scaling.slo.ttftP95"]


def test_enums_list_allowed_values():
    errs = errors_of(base(engine={"quantization": "fp8"}, tier="gold"))
    assert "none, int8, int4, int4-awq" in errs["spec.engine.quantization"]
    assert "critical, standard, batch" in errs["spec.tier"]


@pytest.mark.parametrize("uri", ["hf://org/repo", "hf://org/repo@v1.0", "hf://org/repo/q4/x.Q4_1.gguf",
                                 "hf://org/repo@main/x.gguf", "s3://bucket/models/x", "s3://bucket/x.gguf",
                                 "pvc://models/llama/8b", "pvc://models", "file:///srv/model",
                                 "/srv/model", "/srv/x.gguf"])
def test_supported_model_uris(uri):
    assert parse_spec(base(model={"name": "m", "uri": uri})).model.uri == uri


@pytest.mark.parametrize("uri", ["ftp://x/y", "hf://onlyorg", "hf://org/repo/config.json", "srv/model",
                                 "file://relative/x", "s3://Bad_Bucket/x", "pvc://Bad_Claim/x"])
def test_unsupported_model_uri_lists_schemes(uri):
    assert "hf://org/repo" in errors_of(base(model={"name": "m", "uri": uri}))["spec.model.uri"]


@pytest.mark.parametrize("uri,revision,needle", [
    ("s3://bucket/x", "main", "only to hf://"),
    ("hf://org/repo@v1", "v2", "give the revision once"),
])
def test_revision_needs_an_hf_uri_without_its_own_revision(uri, revision, needle):
    errs = errors_of(base(model={"name": "m", "uri": uri, "revision": revision}))
    assert needle in errs["spec.model.revision"]


def test_custom_provider_requires_explicit_selectors():
    errs = errors_of(base(replicas=3, capacity={"provider": "custom", "spot": {"enabled": True}}))
    assert "nodeSelector" in errs["spec.capacity.custom.onDemand.nodeSelector"]
    assert "nodeSelector" in errs["spec.capacity.custom.spot.nodeSelector"]
    ok = parse_spec(base(replicas=3, capacity={"provider": "custom", "spot": {"enabled": True}, "custom": {
        "onDemand": {"nodeSelector": {"pool": "od"}},
        "spot": {"nodeSelector": {"pool": "spot"},
                 "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]}}}))
    assert ok.capacity.custom.spot.tolerations[0].key == "spot"


def test_custom_placement_without_custom_provider_is_rejected():
    errs = errors_of(base(capacity={"custom": {"onDemand": {"nodeSelector": {"a": "b"}}}}))
    assert "provider: custom" in errs["spec.capacity.custom"]


def test_unknown_fields_and_wrong_types_are_all_reported():
    errs = errors_of(base(replicas="two", bogus=1, engine={"maxModelLen": 1.5, "prefixCaching": "yes"}))
    assert "whole number" in errs["spec.replicas"]
    assert "unknown field" in errs["spec.bogus"]
    assert "whole number" in errs["spec.engine.maxModelLen"]
    assert "boolean" in errs["spec.engine.prefixCaching"]


def test_quantities_and_fractions():
    spec = parse_spec(base(resources={"cpu": 8, "memory": "64Gi"}, engine={"gpuMemoryUtilization": 0.9}))
    assert spec.resources.cpu == 8 and spec.resources.memory == "64Gi"
    errs = errors_of(base(resources={"memory": "lots"}, engine={"gpuMemoryUtilization": 0}))
    assert "64Gi" in errs["spec.resources.memory"]
    assert "greater than 0" in errs["spec.engine.gpuMemoryUtilization"]


def test_list_items_are_validated_with_their_index():
    errs = errors_of(base(template={"env": [{"name": "OK", "value": "1"}, {"value": "x"}]}))
    assert errs["spec.template.env[1].name"] == "is required"


def test_quantization_group_size_is_one_of_the_kernel_sizes_and_only_for_int4():
    spec = parse_spec(base(engine={"quantization": "int4-awq", "quantizationGroupSize": 64}))
    assert spec.engine.quantization_group_size == 64
    assert parse_spec(base()).engine.quantization_group_size is None
    assert "32, 64, 128" in errors_of(base(engine={"quantization": "int4", "quantizationGroupSize": 48}))[
        "spec.engine.quantizationGroupSize"]
    errs = errors_of(base(engine={"quantization": "int8", "quantizationGroupSize": 32}))
    assert "only to quantization int4 or int4-awq" in errs["spec.engine.quantizationGroupSize"]


@pytest.mark.parametrize("gpus", [3, 6, 12])
def test_gpus_must_be_a_power_of_two_the_tensor_parallel_size(gpus):
    errors = errors_of(base(resources={"gpus": gpus}))
    assert "power of two" in errors["spec.resources.gpus"]
    assert "tensor-parallel" in errors["spec.resources.gpus"]


@pytest.mark.parametrize("gpus", [0, 1, 2, 4, 8, 16])
def test_zero_or_a_power_of_two_gpus_is_accepted(gpus):
    assert parse_spec(base(resources={"gpus": gpus})).resources.gpus == gpus


def test_router_queue_waits_must_shed_lower_tiers_first():
    spec = parse_spec(base(router={"queue": {"maxWait": {"batch": "500ms"}}}))
    assert spec.router.queue.max_wait.batch == 0.5 and spec.router.queue.max_wait.critical == 60.0
    assert spec.router.queue.max_requests == 512
    errors = errors_of(base(router={"queue": {"maxWait": {"batch": "2m"}}}))
    assert any("batch <= standard <= critical" in message for message in errors.values()), errors
