"""The LLMDeployment API (halyard.dev/v1alpha1): typed spec/status models.

`parse_spec(dict)` -> `LLMDeploymentSpec` (frozen dataclasses, raises
`InvalidSpec` naming each bad field); `crdgen` emits the CRD from the same
declarations. Names exported here are stable.
"""
from halyard_operator.api.capacity import (
    CapacitySpec, CustomPools, PoolPlacement, SpotSpec, Toleration,
)
from halyard_operator.api.deployment import LLMDeploymentSpec
from halyard_operator.api.parse import FieldError, InvalidSpec, parse_object, parse_spec
from halyard_operator.api.router import ROUTING_POLICIES, RouterCacheSpec, RouterSpec
from halyard_operator.api.schema import parse_duration
from halyard_operator.api.spec import (
    API_GROUP, API_VERSION, KIND, PLURAL, BehaviorSpec, EngineSpec, ModelSpec,
    PredictiveSpec, ResourcesSpec, ScaleRules, ScalingSpec, SLOSpec,
)
from halyard_operator.api.status import Condition, LLMDeploymentStatus, StatusMetrics
from halyard_operator.api.template import EnvVar, LocalObjectReference, TemplateSpec

__all__ = [
    "API_GROUP", "API_VERSION", "KIND", "PLURAL",
    "BehaviorSpec", "CapacitySpec", "Condition", "CustomPools", "EngineSpec", "EnvVar",
    "FieldError", "InvalidSpec", "LLMDeploymentSpec", "LLMDeploymentStatus",
    "LocalObjectReference", "ModelSpec", "PoolPlacement", "PredictiveSpec", "ResourcesSpec", "ROUTING_POLICIES",
    "RouterCacheSpec", "RouterSpec",
    "SLOSpec", "ScaleRules", "ScalingSpec", "SpotSpec", "StatusMetrics", "TemplateSpec",
    "Toleration", "parse_duration", "parse_object", "parse_spec",
]
