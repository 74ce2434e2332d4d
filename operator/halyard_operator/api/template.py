"""`spec.template`: pod-level overrides for the worker pods."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from halyard_operator.api.capacity import Toleration
from halyard_operator.api.schema import spec_field

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"


def _frozen(cls):
    return dataclass(frozen=True, kw_only=True)(cls)


@_frozen
class EnvVar:
    """An environment variable of the worker container (core/v1 EnvVar)."""

    name: str = spec_field("Variable name.", required=True, pattern=ENV_NAME_PATTERN, max_length=256)
    value: str | None = spec_field("Literal value.")
    value_from: Mapping[str, Any] | None = spec_field(
        "Source of the value (core/v1 EnvVarSource: secretKeyRef, configMapKeyRef, fieldRef, ...).",
        kind="opaque")


@_frozen
class LocalObjectReference:
    """A reference to an object in the same namespace."""

    name: str = spec_field("Name of the referenced object.", required=True, max_length=253)


@_frozen
class SecretKeyRef:
    """A key of a Secret in the same namespace."""

    name: str = spec_field("Name of the Secret.", required=True, max_length=253)
    key: str = spec_field("Key within the Secret holding the value.", default="api-key",
                          pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)


@_frozen
class TemplateSpec:
    """Pod overrides applied to every worker pod."""

    image: str | None = spec_field("Worker image; default: the operator's configured image.",
                                   max_length=512)
    image_pull_policy: str | None = spec_field("Image pull policy of the worker container.",
                                               enum=PULL_POLICIES)
    env: tuple[EnvVar, ...] = spec_field("Extra environment variables of the worker container.",
                                         default_factory=tuple, max_items=128)
    tolerations: tuple[Toleration, ...] = spec_field(
        "Extra tolerations added to the pool's own tolerations.", default_factory=tuple, max_items=32)
    node_selector: Mapping[str, str] = spec_field(
        "Extra node labels required in addition to the pool's selector.",
        default_factory=dict, max_items=32)
    affinity: Mapping[str, Any] | None = spec_field(
        "Pod affinity rules (core/v1 Affinity); the pool's node requirements are added to it.",
        kind="opaque")
    service_account_name: str | None = spec_field("Service account the worker pods run as.",
                                                  max_length=253)
    image_pull_secrets: tuple[LocalObjectReference, ...] = spec_field(
        "Secrets (in this namespace) used to pull the worker image.",
        default_factory=tuple, max_items=16)
