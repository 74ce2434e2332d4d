"""Field metadata shared by the parser and the CRD generator.

Every API dataclass field is declared with `spec_field(...)`; its metadata is
the single description of that field: JSON name, description, default, enum,
bounds, pattern and CEL rules. `parse.py` reads it to validate user input and
`crdgen.py` reads it to emit the OpenAPI v3 schema, so the two cannot drift.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import functools
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

# Go-style duration strings accepted by the API: "500ms", "30s", "5m", "1h30m".
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """'1m30s' -> 90.0 seconds. Raises ValueError on anything else."""
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"expected a duration such as 500ms, 30s, 5m or 1h30m, got {text!r}")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))



def camel(name: str) -> str:
    """Python field name -> JSON name: 'ttft_p95' -> 'ttftP95'."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT = _NoDefault()


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: one CEL expression for the API server and the same
    predicate in Python for the parser. `check(obj)` gets the parsed dataclass
    of the object the rule is attached to and returns True when valid."""

    cel: str
    message: str
    path: str  # field path relative to the object, for parser errors ("" = the object)
    check: Callable[[Any], bool]


@dataclass(frozen=True)
class FieldInfo:
    """Schema facts of one field. `kind` refines the Python type:
    'duration' (string -> float seconds), 'quantity' (int-or-string), 'opaque'
    (free-form object kept as a dict), or None (derived from the type)."""

    description: str
    json_name: str | None = None
    required: bool = False
    default: Any = NO_DEFAULT  # the JSON default the API server applies
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    pattern: str | None = None
    max_length: int | None = None
    max_items: int | None = None
    kind: str | None = None
    item_description: str | None = None  # for lists of scalars
    hint: str | None = None  # what a valid value looks like, for pattern errors
    nested_defaults: dict | None = None  # per-use defaults of a nested object's fields
    rules: tuple[Rule, ...] = ()


def spec_field(description: str, *, default: Any = dataclasses.MISSING,
               default_factory: Any = dataclasses.MISSING, unset: Any = dataclasses.MISSING,
               **facts: Any) -> Any:
    """Declare an API field.

    `default` is the JSON default (what the API server fills in); the Python
    default is the same value converted like input ("2m" -> 120.0 for
    durations). `default_factory` gives a nested object or an empty list/map
    whose JSON default is `{}` (objects, plus `nested_defaults`) or absent.
    Fields with neither are required (`required=True`) or default to None.
    `unset` is the Python value of a required field before it is filled in
    (the field stays required on the wire).
    """
    json_default = NO_DEFAULT if default is dataclasses.MISSING else default
    if default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(default_factory):
        json_default = dict(facts.get("nested_defaults") or {})
    info = FieldInfo(description=description, default=json_default, **facts)
    meta = {"api": info}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=_factory(default_factory, info), metadata=meta)
    if default is not dataclasses.MISSING:
        value = parse_duration(default) if info.kind == "duration" else default
        return dataclasses.field(default=value, metadata=meta)
    if info.required:
        if unset is not dataclasses.MISSING:
            return dataclasses.field(default=unset, metadata=meta)
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=None, metadata=meta)


def _factory(factory: Any, info: FieldInfo) -> Callable[[], Any]:
    if not (dataclasses.is_dataclass(factory) and info.nested_defaults):
        return factory

    def build() -> Any:
        from halyard_operator.api.parse import parse_object  # parse imports this module

        return parse_object(factory, dict(info.nested_defaults))

    return build


def info_of(field: dataclasses.Field) -> FieldInfo:
    """The FieldInfo of a dataclass field (every API field must have one)."""
    try:
        return field.metadata["api"]
    except KeyError:
        raise TypeError(f"API field {field.name!r} was declared without spec_field()") from None


def json_name(field: dataclasses.Field) -> str:
    return info_of(field).json_name or camel(field.name)


def api_fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(cls)


def object_rules(cls: type) -> tuple[Rule, ...]:
    """Rules attached to a whole object (class attribute `RULES`)."""
    return tuple(getattr(cls, "RULES", ()))


@dataclass(frozen=True)
class Shape:
    """A field's Python type reduced to what the schema needs.
    kind: 'str' | 'int' | 'float' | 'bool' | 'object' (a dataclass in `cls`) |
    'list' (of `item`) | 'map' (str -> `item`) | 'opaque' | 'quantity'."""

    kind: str
    cls: type | None = None
    item: "Shape | None" = None


_SCALARS = {str: "str", int: "int", float: "float", bool: "bool"}


def shape_of(tp: Any, info: FieldInfo | None = None) -> Shape:
    """Reduce a resolved type hint (`int | None`, `tuple[X, ...]`, ...) to a Shape."""
    if info is not None and info.kind in ("opaque", "quantity"):
        return Shape(info.kind)
    if info is not None and info.kind == "duration":
        return Shape("str")
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return shape_of(args[0])
    if origin is tuple:
        return Shape("list", item=shape_of(args[0]))
    if origin in (dict, collections.abc.Mapping):
        return Shape("map", item=shape_of(args[1]))
    if dataclasses.is_dataclass(tp):
        return Shape("object", cls=tp)
    return Shape(_SCALARS[tp])


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """The dataclass's resolved field types, once per class (shared: do not mutate)."""
    return typing.get_type_hints(cls)
