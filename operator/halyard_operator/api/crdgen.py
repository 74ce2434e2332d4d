"""Generate the LLMDeployment CRD from the API dataclasses.

`python -m halyard_operator.api.crdgen` prints the CRD YAML (`make crds`
writes it to crds/llmdeployments.halyard.dev.yaml).
"""
from __future__ import annotations

import sys
from typing import Any

import yaml

from halyard_operator.api import spec as api
from halyard_operator.api.deployment import LLMDeploymentSpec
from halyard_operator.api.schema import (
    NO_DEFAULT,
    FieldInfo, Shape, api_fields, hints, info_of, json_name, object_rules, shape_of,
)
from halyard_operator.api.status import LLMDeploymentStatus

PRINTER_COLUMNS = (
    ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Ready condition"),
    ("Reason", "string", ".status.reason", "Reason of the first failing condition (why it is not Ready)"),
    ("Replicas", "integer", ".status.replicas", "Worker pods, all pools"),
    ("Available", "integer", ".status.readyReplicas", "Worker pods ready to serve"),
    ("On-demand", "integer", ".status.onDemandReplicas", "Worker pods on on-demand capacity"),
    ("Spot", "integer", ".status.spotReplicas", "Worker pods on spot capacity"),
    ("Tier", "string", ".spec.tier", "Priority tier"),
    ("TTFT-p95", "string", ".status.metrics.ttftP95", "Observed p95 time to first token"),
    ("Cost/h", "number", ".status.cost.perHour", "Price per hour of every replica now (status.cost.currency)"),
    ("Age", "date", ".metadata.creationTimestamp", "Time since creation"),
)


def object_schema(cls: type, description: str, nested_defaults: dict | None = None) -> dict:
    """OpenAPI v3 object schema of an API dataclass (recursively)."""
    types = hints(cls)
    props, required = {}, []
    for field in api_fields(cls):
        info = info_of(field)
        if not info.description:
            raise ValueError(f"{cls.__name__}.{field.name} has no description")
        name = json_name(field)
        props[name] = field_schema(types[field.name], info)
        if nested_defaults and name in nested_defaults:
            props[name]["default"] = nested_defaults[name]
        if info.required:
            required.append(name)
    out: dict[str, Any] = {"type": "object", "description": description, "properties": props}
    if required:
        out["required"] = required
    rules = object_rules(cls)
    if rules:
        out["x-kubernetes-validations"] = [{"rule": r.cel, "message": r.message} for r in rules]
    return out


def field_schema(tp: Any, info: FieldInfo) -> dict:
    shape = shape_of(tp, info)
    if shape.kind == "object":
        out = object_schema(shape.cls, info.description, info.nested_defaults)
    else:
        out = {**_shape_schema(shape), "description": info.description}
        if shape.kind == "list" and "description" not in out["items"]:
            out["items"]["description"] = info.item_description or "One entry of the list."
    _add_facts(out, info, shape)
    return out


def _shape_schema(shape: Shape) -> dict:
    if shape.kind == "list":
        item = shape.item
        items = (object_schema(item.cls, (item.cls.__doc__ or "").strip().splitlines()[0])
                 if item.kind == "object" else _shape_schema(item))
        return {"type": "array", "items": items}
    if shape.kind == "map":
        return {"type": "object", "additionalProperties": _shape_schema(shape.item)}
    if shape.kind == "opaque":
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if shape.kind == "quantity":
        return {"x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}]}
    return {"type": {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}[shape.kind]}


def full_default(cls: type, overrides: dict | None = None) -> dict:
    """The JSON default of a nested object with every nested default filled
    in: the API server validates defaults (CEL included) as written."""
    types, out = hints(cls), {}
    for field in api_fields(cls):
        info, name = info_of(field), json_name(field)
        shape = shape_of(types[field.name], info)
        if shape.kind == "object" and isinstance(info.default, dict):
            out[name] = full_default(shape.cls, info.default)
        elif info.default is not NO_DEFAULT:
            out[name] = info.default
    return {**out, **(overrides or {})}


def _add_facts(out: dict, info: FieldInfo, shape: Shape) -> None:
    if info.default is not NO_DEFAULT and "default" not in out:
        out["default"] = (full_default(shape.cls, info.default) if shape.kind == "object"
                          else info.default)
    facts = {"enum": list(info.enum) if info.enum else None, "minimum": info.minimum,
             "maximum": info.maximum, "pattern": info.pattern, "maxLength": info.max_length}
    if info.exclusive_minimum:
        facts["exclusiveMinimum"] = True
    if info.max_items is not None:
        facts["maxProperties" if shape.kind == "map" else "maxItems"] = info.max_items
    out.update({k: v for k, v in facts.items() if v is not None})
    if info.hint and info.pattern:  # a readable message next to the raw pattern error
        out.setdefault("x-kubernetes-validations", []).append(
            {"rule": f"self.matches({_cel_string(info.pattern)})", "message": info.hint})
    if info.kind == "duration":
        out["x-kubernetes-validations"] = [{
            "rule": "duration(self) >= duration('0s')",
            "message": "must be a duration such as 500ms, 30s, 5m or 1h30m"}]


def _cel_string(text: str) -> str:
    """A CEL raw string literal (no escape processing, like the Go regex)."""
    assert "'" not in text
    return f"r'{text}'"


def crd() -> dict:
    """The full CustomResourceDefinition as a dict."""
    spec = object_schema(LLMDeploymentSpec, LLMDeploymentSpec.__doc__.strip().splitlines()[0])
    status = object_schema(LLMDeploymentStatus, LLMDeploymentStatus.__doc__.strip())
    status["properties"]["conditions"]["x-kubernetes-list-type"] = "map"
    status["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    root = {"type": "object", "description": "An LLM inference deployment managed by Halyard.",
            "properties": {
                "apiVersion": {"type": "string", "description": "API version of this object."},
                "kind": {"type": "string", "description": "Kind of this object."},
                "metadata": {"type": "object"},  # the API server allows no more here
                "spec": spec, "status": status},
            "required": ["spec"]}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{api.PLURAL}.{api.API_GROUP}",
                     "labels": {"app.kubernetes.io/part-of": "halyard"}},
        "spec": {
            "group": api.API_GROUP, "scope": "Namespaced",
            "names": {"kind": api.KIND, "listKind": f"{api.KIND}List", "plural": api.PLURAL,
                      "singular": api.SINGULAR, "shortNames": list(api.SHORT_NAMES),
                      "categories": list(api.CATEGORIES)},
            "versions": [{
                "name": api.API_VERSION, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": root},
                "subresources": {"status": {}, "scale": {
                    "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                    "labelSelectorPath": ".status.selector"}},
                "additionalPrinterColumns": [
                    {"name": n, "type": t, "jsonPath": p, "description": d}
                    for n, t, p, d in PRINTER_COLUMNS],
            }],
        },
    }


def render() -> str:
    header = "# Generated by `python -m halyard_operator.api.crdgen` (make crds). Do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
