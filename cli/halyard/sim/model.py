"""Simulator inputs: replica performance profiles, cluster pools, deployments.

Formats (all validated here; a bad value raises SimInputError naming the
file, the field and the fix):

Profile JSON (one profile, or {"profiles": {name: profile, ...}}):
    {"name": "llama-8b-h100",
     "prefill_tokens_per_s": 25000,          # prompt tokens/s one replica prefills
     "decode_step_s": {"base": 0.008,        # decode step time (s) =
                       "per_seq": 0.00012},  #   base + per_seq * running sequences
     "max_batch": 256,                       # running sequences per replica at most
     "kv_capacity_tokens": 400000,           # KV cache tokens per replica
     "gpus": 1}                              # GPUs per replica it was measured on
A deployment whose spec.resources.gpus differs from its profile's `gpus`
runs the profile scaled to that tensor-parallel size (`at_gpus`).

Cluster YAML: {pools: [{name, capacityType: on-demand|spot, gpusPerNode,
maxNodes, pricePerGpuHour, provisioningDelay (node launch), imagePull,
weightLoadGBps (remote store -> GPU), cachedLoadGBps (node-local cache -> GPU),
engineStart, warmup (optional: image pull + weight load + engine start, fixed),
consolidateAfter, preemptionRatePerNodeHour, noticeSeconds,
stockouts: [[start_s, end_s], ...], reclaims: [{at, share, over, notice}],
priceChanges: [{at, price}]}]}.
A replica's cold start: on a new node, provisioningDelay + imagePull +
model GB / weightLoadGBps + engineStart; on a free GPU of a node that is already
up (image and weights cached), model GB / cachedLoadGBps + engineStart.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from halyard_operator.api import parse_duration, parse_spec
from halyard_operator.api.parse import InvalidSpec
from halyard_operator.policy.params import DeploymentParams, params_from_spec

ANNOTATION = "sim.halyard.dev/"  # per-deployment simulator hints in manifests


class SimInputError(ValueError):
    """Bad simulator input; the message names the file, field and fix."""


@dataclass(frozen=True)
class Profile:
    """Per-replica performance. Units: tokens/s, seconds, sequences, tokens."""

    name: str
    prefill_tokens_per_s: float
    decode_base_s: float
    decode_per_seq_s: float
    max_batch: int
    kv_capacity_tokens: int
    gpus: int = 1  # GPUs per replica (tensor-parallel size) the figures were measured on

    def step_time(self, batch):
        return self.decode_base_s + self.decode_per_seq_s * batch


# Share of the ideal speed-up kept per doubling of the tensor-parallel size:
# the two all-reduces per layer and the unsplit work (norms, sampling) cost the rest.
TP_EFFICIENCY_PER_DOUBLING = 0.9


def at_gpus(profile: Profile, gpus: int) -> Profile:
    """`profile` on `gpus` GPUs per replica instead of `profile.gpus` (pure).

    Tensor parallelism splits each step's weight and KV reads and its FLOPs
    over the ranks: step times shrink and prefill grows by the GPU ratio times
    TP_EFFICIENCY_PER_DOUBLING per doubling; the KV cache grows with the GPUs'
    memory (the weights' share freed on each rank is not counted, a
    conservative figure). Fewer GPUs than measured scale the other way."""
    gpus = max(int(gpus), 1)
    if gpus == profile.gpus:
        return profile
    ratio = gpus / profile.gpus
    speedup = ratio * TP_EFFICIENCY_PER_DOUBLING ** abs(math.log2(ratio)) if ratio > 1 else \
        ratio / TP_EFFICIENCY_PER_DOUBLING ** abs(math.log2(ratio))
    return replace(profile, name=f"{profile.name}@{gpus}gpu", gpus=gpus,
                   prefill_tokens_per_s=profile.prefill_tokens_per_s * speedup,
                   decode_base_s=profile.decode_base_s / speedup,
                   decode_per_seq_s=profile.decode_per_seq_s / speedup,
                   kv_capacity_tokens=max(int(profile.kv_capacity_tokens * ratio), 1))


BUILTIN_PROFILES = {
    # 8B model, bf16 weights, one H100: ~16 GB of weights read per decode step.
    "llama-8b-h100": Profile("llama-8b-h100", 25000.0, 0.008, 0.00012, 256, 400_000),
    # 70B model, tensor parallel over 8 H100s.
    "llama-70b-h100x8": Profile("llama-70b-h100x8", 12000.0, 0.022, 0.00020, 256, 1_200_000, gpus=8),
}
DEFAULT_PROFILE = "llama-8b-h100"


@dataclass(frozen=True)
class Pool:
    """One node pool. Invariant: gpus_per_node >= 1, max_nodes >= 0, rates >= 0."""

    name: str
    capacity_type: str  # "on-demand" | "spot"
    gpus_per_node: int
    max_nodes: int
    price_per_gpu_hour: float
    provisioning_delay_s: float
    warmup_s: float | None
    preemption_rate_per_node_hour: float = 0.0
    notice_s: float = 0.0
    stockouts: tuple[tuple[float, float], ...] = ()
    image_pull_s: float = 45.0
    weight_load_gbps: float = 0.5
    cached_load_gbps: float = 2.0
    engine_start_s: float = 20.0
    consolidate_after_s: float = 300.0  # an empty node is removed after this long
    reclaims: tuple["Reclaim", ...] = ()
    price_changes: tuple[tuple[float, float], ...] = ()  # (at_s, price per GPU-hour), sorted

    def cold_start_s(self, model_gb: float) -> float:
        """Seconds from pod creation to Ready when a new node must be launched."""
        if self.warmup_s is not None:
            return self.provisioning_delay_s + self.warmup_s
        return self.provisioning_delay_s + self.image_pull_s + model_gb / self.weight_load_gbps + self.engine_start_s

    def warm_start_s(self, model_gb: float) -> float:
        """Seconds to Ready on a free GPU of a node already up (image and weights cached)."""
        if self.warmup_s is not None:
            return self.warmup_s
        return model_gb / self.cached_load_gbps + self.engine_start_s

    def available_at(self, t: float) -> bool:
        return not any(start <= t < end for start, end in self.stockouts)

    def price_at(self, t: float) -> float:
        price = self.price_per_gpu_hour
        for at, value in self.price_changes:
            if at <= t:
                price = value
        return price


@dataclass(frozen=True)
class Reclaim:
    """A correlated spot reclaim: `share` (0..1) of the pool's nodes, spread evenly
    over `over_s` seconds from `at_s`, each with `notice_s` seconds of notice (0: none)."""

    at_s: float
    share: float
    over_s: float = 120.0
    notice_s: float = 0.0


@dataclass(frozen=True)
class SimDeployment:
    """A deployment under simulation: its policy params plus workload hints."""

    params: DeploymentParams
    profile: Profile
    weight: float = 1.0  # share of the built-in workload's total rate
    input_tokens: float = 512.0  # mean prompt tokens (built-in workloads)
    output_tokens: float = 256.0  # mean generated tokens
    input_classes: tuple[float, ...] = field(default=())  # prompt-length quantile classes
    model_gb: float = 16.0  # weights to load at start-up (GB)


def _duration_or_none(value) -> float | None:
    try:
        return parse_duration(value)
    except (TypeError, ValueError):
        return None


def _num(raw: dict, key: str, where: str, default=None, minimum: float = 0.0) -> float:
    value = raw.get(key, default)
    if value is None:
        raise SimInputError(f"{where}: missing '{key}'")
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = _duration_or_none(value)
    if value is None:
        raise SimInputError(f"{where}.{key}: {value!r} is not a number or duration") from None
    if value < minimum:
        raise SimInputError(f"{where}.{key}: must be >= {minimum:g}, got {value:g}")
    return value


def _pool(raw: dict, where: str) -> Pool:
    kind = raw.get("capacityType")
    if kind not in ("on-demand", "spot"):
        raise SimInputError(f"{where}.capacityType: must be 'on-demand' or 'spot', got {kind!r}")
    stockouts = tuple((float(a), float(b)) for a, b in raw.get("stockouts") or ())
    reclaims = tuple(_reclaim(r, f"{where}.reclaims[{j}]") for j, r in enumerate(raw.get("reclaims") or ()))
    prices = tuple(sorted((_num(c, "at", f"{where}.priceChanges[{j}]"), _num(c, "price", f"{where}.priceChanges[{j}]"))
                          for j, c in enumerate(raw.get("priceChanges") or ())))
    if reclaims and kind != "spot":
        raise SimInputError(f"{where}.reclaims: only a spot pool's nodes are reclaimed; move it to the spot pool")
    return Pool(
        name=str(raw.get("name") or kind), capacity_type=kind,
        gpus_per_node=int(_num(raw, "gpusPerNode", where, 8, 1)),
        max_nodes=int(_num(raw, "maxNodes", where)),
        price_per_gpu_hour=_num(raw, "pricePerGpuHour", where),
        provisioning_delay_s=_num(raw, "provisioningDelay", where, 180),
        warmup_s=_num(raw, "warmup", where) if raw.get("warmup") is not None else None,
        preemption_rate_per_node_hour=_num(raw, "preemptionRatePerNodeHour", where, 0),
        notice_s=_num(raw, "noticeSeconds", where, 0),
        stockouts=stockouts,
        image_pull_s=_num(raw, "imagePull", where, 45),
        weight_load_gbps=_num(raw, "weightLoadGBps", where, 0.5, 1e-3),
        cached_load_gbps=_num(raw, "cachedLoadGBps", where, 2.0, 1e-3),
        engine_start_s=_num(raw, "engineStart", where, 20),
        consolidate_after_s=_num(raw, "consolidateAfter", where, 300),
        reclaims=reclaims, price_changes=prices,
    )


def _reclaim(raw: dict, where: str) -> Reclaim:
    share = _num(raw, "share", where)
    if share > 1:
        raise SimInputError(f"{where}.share: a share of the pool's nodes, 0..1; got {share:g}")
    return Reclaim(at_s=_num(raw, "at", where), share=share, over_s=_num(raw, "over", where, 120),
                   notice_s=_num(raw, "notice", where, 0))


def load_cluster(path: str | Path) -> dict[str, Pool]:
    """Cluster YAML -> {"on-demand": Pool, "spot": Pool?} (the first pool of each type)."""
    return cluster_from_doc(yaml.safe_load(Path(path).read_text()) or {}, str(path))


def cluster_from_doc(doc: dict, path: str) -> dict[str, Pool]:
    pools = doc.get("pools")
    if not isinstance(pools, list) or not pools:
        raise SimInputError(f"{path}: needs a non-empty 'pools' list")
    out: dict[str, Pool] = {}
    for i, raw in enumerate(pools):
        pool = _pool(raw, f"{path}: pools[{i}]")
        out.setdefault(pool.capacity_type, pool)
    if "on-demand" not in out:
        raise SimInputError(f"{path}: needs at least one pool with capacityType: on-demand")
    return out


def _profile(raw: dict, where: str) -> Profile:
    step = raw.get("decode_step_s") or {}
    return Profile(
        name=str(raw.get("name", "custom")),
        prefill_tokens_per_s=_num(raw, "prefill_tokens_per_s", where, minimum=1),
        decode_base_s=_num(step, "base", f"{where}.decode_step_s", minimum=1e-6),
        decode_per_seq_s=_num(step, "per_seq", f"{where}.decode_step_s"),
        max_batch=int(_num(raw, "max_batch", where, minimum=1)),
        kv_capacity_tokens=int(_num(raw, "kv_capacity_tokens", where, minimum=1)),
        gpus=int(_num(raw, "gpus", where, 1, 1)),
    )


def load_profiles(path: str | Path | None) -> dict[str, Profile]:
    """Built-in profiles, plus (and overridden by) those in a profile JSON file."""
    profiles = dict(BUILTIN_PROFILES)
    if path is None:
        return profiles
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise SimInputError(f"{path}: not valid JSON ({err})") from None
    raws = doc.get("profiles") if "profiles" in doc else {doc.get("name", "custom"): doc}
    for name, raw in raws.items():
        profiles[name] = _profile({"name": name, **raw}, f"{path}: {name}")
    if "profiles" not in doc:  # a single profile becomes the default
        profiles[DEFAULT_PROFILE] = profiles[doc.get("name", "custom")]
    return profiles


def load_deployments(path: str | Path, profiles: dict[str, Profile]) -> list[SimDeployment]:
    """Multi-document LLMDeployment YAML -> SimDeployments (specs parsed by the API parser)."""
    out = []
    for i, doc in enumerate(d for d in yaml.safe_load_all(Path(path).read_text()) if d):
        meta = doc.get("metadata") or {}
        name = f"{meta.get('namespace', 'default')}/{meta.get('name', f'deployment-{i}')}"
        if doc.get("kind") != "LLMDeployment":
            raise SimInputError(f"{path}: document {i} ({name}) is a {doc.get('kind')!r}, not an LLMDeployment")
        try:
            params = params_from_spec(name, parse_spec(doc.get("spec")))
        except InvalidSpec as err:
            raise SimInputError(f"{path}: {name}: {err}") from None
        notes = {k[len(ANNOTATION):]: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(ANNOTATION)}
        profile_name = notes.get("profile", DEFAULT_PROFILE)
        if profile_name not in profiles:
            raise SimInputError(f"{path}: {name}: unknown profile {profile_name!r}; known: {', '.join(sorted(profiles))}")
        out.append(SimDeployment(
            params=params, profile=at_gpus(profiles[profile_name], params.gpus_per_replica),
            weight=_num(notes, "weight", f"{name}: annotation {ANNOTATION}", 1.0),
            input_tokens=_num(notes, "input-tokens", f"{name}: annotation {ANNOTATION}", 512.0, 1),
            output_tokens=_num(notes, "output-tokens", f"{name}: annotation {ANNOTATION}", 256.0, 1),
            model_gb=_num(notes, "model-gb", f"{name}: annotation {ANNOTATION}", 16.0, 0),
        ))
    if not out:
        raise SimInputError(f"{path}: no LLMDeployment documents found")
    return out
