"""Spec dict -> frozen dataclasses, validating like the API server would.

Every problem is reported with its field path and how to fix it, all at once:
`InvalidSpec.errors` is a tuple of `FieldError(path, message)`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from halyard_operator.api.deployment import LLMDeploymentSpec
from halyard_operator.api.schema import (
    NO_DEFAULT,
    FieldInfo, Shape, api_fields, hints, info_of, json_name, object_rules, parse_duration, shape_of,
)

_INVALID = object()  # marker: this value failed validation (already reported)


@dataclass(frozen=True)
class FieldError:
    """One invalid field: `path` like 'spec.scaling.maxReplicas'."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidSpec(ValueError):
    """The spec cannot be used; `errors` lists every problem found."""

    def __init__(self, errors: list[FieldError]):
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


def parse_spec(data: Any) -> LLMDeploymentSpec:
    """Parse `LLMDeployment.spec`; raises InvalidSpec naming every bad field."""
    errors: list[FieldError] = []
    spec = _parse_dataclass(LLMDeploymentSpec, data, "spec", errors)
    if errors:
        raise InvalidSpec(errors)
    return spec


def parse_object(cls: type, data: Any, path: str = "spec") -> Any:
    """Parse any API dataclass (e.g. a nested spec object); raises InvalidSpec."""
    errors: list[FieldError] = []
    value = _parse_dataclass(cls, data, path, errors)
    if errors:
        raise InvalidSpec(errors)
    return value


def _parse_dataclass(cls: type, data: Any, path: str, errors: list[FieldError],
                     overrides: dict | None = None) -> Any:
    if not isinstance(data, dict):
        errors.append(FieldError(path, f"must be an object, got {type(data).__name__}"))
        return _INVALID
    types = hints(cls)
    known = {json_name(f) for f in api_fields(cls)}
    for key in data:
        if key not in known:
            errors.append(FieldError(f"{path}.{key}", f"unknown field; known fields: {', '.join(sorted(known))}"))
    values, before = {}, len(errors)
    for field in api_fields(cls):
        name, info = json_name(field), info_of(field)
        raw = data.get(name, (overrides or {}).get(name, info.default))
        values[field.name] = _parse_field(raw, types[field.name], info, f"{path}.{name}", errors)
    if len(errors) > before:
        return _INVALID
    obj = cls(**values)
    for rule in object_rules(cls):
        if not rule.check(obj):
            errors.append(FieldError(f"{path}.{rule.path}" if rule.path else path, rule.message))
    return obj


def _parse_field(raw: Any, tp: Any, info: FieldInfo, path: str, errors: list[FieldError]) -> Any:
    shape = shape_of(tp, info)
    if raw is NO_DEFAULT or raw is None:
        if info.required:
            errors.append(FieldError(path, "is required"))
            return _INVALID
        return {"list": (), "map": {}}.get(shape.kind)
    if shape.kind == "object":
        return _parse_dataclass(shape.cls, raw, path, errors, info.nested_defaults)
    try:
        return _parse_value(raw, shape, info, path, errors)
    except ValueError as exc:
        errors.append(FieldError(path, str(exc)))
        return _INVALID


def _parse_value(raw: Any, shape: Shape, info: FieldInfo, path: str, errors: list[FieldError]) -> Any:
    if shape.kind == "list":
        if not isinstance(raw, list):
            raise ValueError(f"must be a list, got {type(raw).__name__}")
        _check_count(raw, info)
        item_info = FieldInfo(description="")
        return tuple(_parse_field(v, _item_type(shape), item_info, f"{path}[{i}]", errors)
                     if shape.item.kind == "object" else _scalar(v, shape.item, item_info)
                     for i, v in enumerate(raw))
    if shape.kind == "map":
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise ValueError("must be a map of string keys to string values")
        _check_count(raw, info)
        return dict(raw)
    if shape.kind == "opaque":
        if not isinstance(raw, dict):
            raise ValueError(f"must be an object, got {type(raw).__name__}")
        return dict(raw)
    if shape.kind == "quantity":
        if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not re.fullmatch(_QUANTITY, str(raw)):
            raise ValueError(f"must be a Kubernetes quantity such as 8, 500m or 64Gi, got {raw!r}")
        return raw
    value = _scalar(raw, shape, info)
    return parse_duration(value) if info.kind == "duration" else value


def _item_type(shape: Shape) -> Any:
    return shape.item.cls


_QUANTITY = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[mkMGTPE]|[eE][+-]?[0-9]+)?$"


def _check_count(raw: Any, info: FieldInfo) -> None:
    if info.max_items is not None and len(raw) > info.max_items:
        raise ValueError(f"has {len(raw)} entries; at most {info.max_items} are allowed")


def _scalar(raw: Any, shape: Shape, info: FieldInfo) -> Any:
    expected = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}[shape.kind]
    if isinstance(raw, bool) and shape.kind != "bool" or not isinstance(raw, expected):
        raise ValueError(f"must be a {_TYPE_WORDS[shape.kind]}, got {raw!r}")
    if info.enum is not None and raw not in info.enum:
        raise ValueError(f"must be one of {', '.join(map(str, info.enum))}; got {raw!r}")
    if info.pattern is not None and not re.search(info.pattern, raw):
        raise ValueError(_pattern_hint(info, raw))
    if info.max_length is not None and len(raw) > info.max_length:
        raise ValueError(f"must be at most {info.max_length} characters")
    _check_bounds(raw, info)
    return float(raw) if shape.kind == "float" else raw


_TYPE_WORDS = {"str": "string", "int": "whole number", "float": "number", "bool": "boolean (true/false)"}


def _pattern_hint(info: FieldInfo, raw: str) -> str:
    if info.kind == "duration":
        return f"must be a duration such as 500ms, 30s, 5m or 1h30m; got {raw!r}"
    if info.hint:
        return f"{info.hint}; got {raw!r}"
    return f"{raw!r} does not match the pattern {info.pattern}"


def _check_bounds(raw: Any, info: FieldInfo) -> None:
    if info.minimum is not None:
        if info.exclusive_minimum and raw <= info.minimum:
            raise ValueError(f"must be greater than {info.minimum:g}; got {raw}")
        if raw < info.minimum:
            raise ValueError(f"must be >= {info.minimum:g}; got {raw}")
    if info.maximum is not None and raw > info.maximum:
        raise ValueError(f"must be <= {info.maximum:g}; got {raw}")
