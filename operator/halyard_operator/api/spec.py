"""`LLMDeployment.spec` as frozen dataclasses (halyard.dev/v1alpha1).

These classes are the single source of truth for the API: `parse.py` builds
them from a spec dict (validating as the API server would) and `crdgen.py`
emits the CRD schema from the same field declarations. Durations are parsed to
float seconds; lists are tuples; free-form Kubernetes objects stay dicts.
"""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api.schema import DURATION_PATTERN, Rule, spec_field
from halyard_worker.options import DTYPES, INT4_GROUP_SIZES, QUANTIZATIONS

API_GROUP = "halyard.dev"
API_VERSION = "v1alpha1"
KIND = "LLMDeployment"
PLURAL = "llmdeployments"
SINGULAR = "llmdeployment"
SHORT_NAMES = ("llmd",)
CATEGORIES = ("halyard",)

TIERS = ("critical", "standard", "batch")
# The worker's model sources (halyard_worker/model/source.py parses the same forms;
# tests/contract checks that every URI this pattern accepts parses there too).
MODEL_URI_PATTERN = (
    r"^(hf://[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._-]+)?(/[A-Za-z0-9._/-]*\.gguf)?"
    r"|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?"
    r"|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/.*)?"
    r"|(file://)?/.*)$"
)
MAX_REPLICAS = 1000
TARGET_QUEUE_PER_REPLICA = 4.0  # what an unset (or 0) scaling.targetQueuePerReplica means
_DUR = dict(kind="duration", pattern=DURATION_PATTERN, max_length=32)


def _frozen(cls):
    return dataclass(frozen=True, kw_only=True)(cls)


@_frozen
class ModelSpec:
    """Which weights to serve and under which name."""

    RULES = (
        Rule(cel="!has(self.revision) || self.uri.startsWith('hf://')",
             message="spec.model.revision applies only to hf:// models; remove it, or use an hf:// uri",
             path="revision", check=lambda m: m.revision is None or m.uri.startswith("hf://")),
        Rule(cel="!has(self.revision) || !self.uri.contains('@')",
             message="spec.model.uri already names a revision (@rev); give the revision once, "
                     "in the uri or in spec.model.revision",
             path="revision", check=lambda m: m.revision is None or "@" not in m.uri),
    )

    name: str = spec_field(
        "Name clients pass as `model` in OpenAI requests (the served model name).",
        required=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$", max_length=253,
        hint="must start with a letter or digit and use only letters, digits and . _ : / -")
    uri: str = spec_field(
        "Where the weights live: hf://org/repo[@revision] or hf://org/repo/file.gguf (Hugging Face "
        "Hub), s3://bucket/prefix (a directory, or one .gguf object), pvc://claim/path (mounted "
        "read-only at /models/<claim>), or file:///absolute/path (or /absolute/path) on the node: a "
        "Hugging Face model directory (safetensors, single or sharded) or a .gguf file. Remote "
        "models (hf://, s3://) are fetched by an init container into the node-local model cache.",
        required=True, pattern=MODEL_URI_PATTERN, max_length=1024,
        hint="must be hf://org/repo[@rev][/file.gguf], s3://bucket/prefix, pvc://claim/path, "
             "file:///absolute/path or /absolute/path")
    revision: str | None = spec_field(
        "Revision (branch, tag or commit) of an hf:// model; only valid with hf:// URIs.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", max_length=128,
        hint="must be a branch, tag or commit: letters, digits and . _ / -")


@_frozen
class EngineSpec:
    """Engine flags passed to `halyard-worker serve` (unset fields keep the engine's defaults)."""

    RULES = (
        Rule(cel="!has(self.quantizationGroupSize) || self.quantization in ['int4', 'int4-awq']",
             message="spec.engine.quantizationGroupSize applies only to quantization int4 or int4-awq; "
                     "remove it, or set spec.engine.quantization to int4 or int4-awq",
             path="quantizationGroupSize",
             check=lambda e: e.quantization_group_size is None or e.quantization in ("int4", "int4-awq")),
    )

    dtype: str = spec_field("Weight and activation dtype; auto follows the model config.",
                            default="auto", enum=DTYPES)
    quantization: str = spec_field(
        "Weight-only quantization applied at load, layer by layer: none, int8, int4, or int4-awq (int4 with "
        "activation-aware scales and clipping calibrated at load on built-in English text; add "
        "`--calibration-text FILE` to extraArgs for your own). Pre-quantized weights (GGUF Q4_0/Q4_1, AWQ) "
        "are served as they are under int8/int4/int4-awq; none dequantizes them.",
        default="none", enum=QUANTIZATIONS)
    quantization_group_size: int | None = spec_field(
        "int4 / int4-awq: how many input weights share one scale and zero when float weights are "
        "quantized: 32, 64 or 128 (the worker's default, 128). Smaller groups are more accurate and "
        "slightly larger (docs/quality.md); pre-quantized weights keep their own groups.",
        enum=INT4_GROUP_SIZES)
    max_model_len: int | None = spec_field(
        "Context window in tokens (prompt + output); default: the model's.", minimum=1)
    max_num_seqs: int | None = spec_field("Maximum requests running at once per replica.", minimum=1)
    max_num_batched_tokens: int | None = spec_field(
        "Token budget per engine step (prefill chunks and decodes together).", minimum=1)
    gpu_memory_utilization: float | None = spec_field(
        "Fraction (0, 1] of GPU memory the engine may use for weights and KV cache.",
        minimum=0, maximum=1, exclusive_minimum=True)
    prefix_caching: bool = spec_field("Reuse KV cache blocks across requests sharing a prefix.",
                                      default=True)
    drain_timeout: float = spec_field(
        "How long in-flight requests may run after the pod is asked to stop; the pod's "
        "terminationGracePeriodSeconds is this plus a margin.", default="30s", **_DUR)
    startup_timeout: float = spec_field(
        "How long a replica may take to load the model before it is restarted.",
        default="10m", **_DUR)
    extra_args: tuple[str, ...] = spec_field(
        "Extra `halyard-worker serve` flags, e.g. [\"--block-size=32\"]. Flags the operator "
        "sets itself (--model, --host, --port, --served-model-name, ...) are rejected.",
        default_factory=tuple, max_items=64,
        item_description="One argument: --flag, --flag=value, or the value after a --flag.")


@_frozen
class ResourcesSpec:
    """Per-replica compute."""

    RULES = (
        Rule(cel="self.gpus in [0, 1, 2, 4, 8, 16]",
             message="spec.resources.gpus must be 0 (CPU) or a power of two (1, 2, 4, 8, 16): it is the "
                     "replica's tensor-parallel size",
             path="gpus", check=lambda r: r.gpus in (0, 1, 2, 4, 8, 16)),
    )

    gpus: int = spec_field("GPUs per replica (nvidia.com/gpu limit); 0 runs on CPU. More than one "
                           "splits the model over them (tensor parallelism, one worker process per GPU: "
                           "--tensor-parallel-size); 0 (CPU) or a power of two that divides the model's "
                           "attention heads.", default=1, minimum=0, maximum=16)
    gpu_product: str | None = spec_field(
        "GPU model to require via the nvidia.com/gpu.product node label, "
        "e.g. NVIDIA-H100-80GB-HBM3.", max_length=128)
    cpu: str | int | None = spec_field("CPU request and limit per replica (quantity, e.g. 8 or 500m).",
                                       kind="quantity")
    memory: str | int | None = spec_field("Memory request and limit per replica (quantity, e.g. 64Gi).",
                                          kind="quantity")


@_frozen
class SLOSpec:
    """Latency objectives the autoscaler keeps (95th percentiles)."""

    ttft_p95: float | None = spec_field("Target p95 time to first token, e.g. 500ms.", **_DUR)
    itl_p95: float | None = spec_field("Target p95 inter-token latency, e.g. 50ms.", **_DUR)


@_frozen
class ScaleRules:
    """How fast replicas may change in one direction."""

    stabilization_window: float = spec_field(
        "Look-back window: the autoscaler acts on the most conservative recommendation "
        "seen in it (0s for scale-up, 5m for scale-down unless set).", default="0s", **_DUR)
    max_step: int | None = spec_field("Most replicas added or removed per decision; unset = no limit.",
                                      minimum=1)


@_frozen
class BehaviorSpec:
    """Scale-up and scale-down pacing."""

    scale_up: ScaleRules = spec_field("Pacing when adding replicas.", default_factory=ScaleRules,
                                      nested_defaults={"stabilizationWindow": "0s"})
    scale_down: ScaleRules = spec_field("Pacing when removing replicas.", default_factory=ScaleRules,
                                        nested_defaults={"stabilizationWindow": "5m"})


@_frozen
class PredictiveSpec:
    """Scale ahead of forecast load instead of only reacting to it."""

    enabled: bool = spec_field("Add forecast-driven replicas ahead of demand.", default=False)
    lookahead: float = spec_field("How far ahead the forecast looks (cover model load time).",
                                  default="5m", **_DUR)


@_frozen
class ScalingSpec:
    """SLO-driven autoscaling between minReplicas and maxReplicas."""

    RULES = (
        Rule(cel="self.minReplicas <= self.maxReplicas",
             message="spec.scaling.minReplicas must be <= spec.scaling.maxReplicas; "
                     "raise maxReplicas or lower minReplicas",
             path="minReplicas", check=lambda s: s.min_replicas <= s.max_replicas),
    )

    min_replicas: int = spec_field("Fewest replicas kept running (0 allows scale to zero).",
                                   default=1, minimum=0, maximum=MAX_REPLICAS)
    max_replicas: int = spec_field("Most replicas the autoscaler may run (on-demand + spot).",
                                   required=True, minimum=1, maximum=MAX_REPLICAS)
    slo: SLOSpec = spec_field("Latency objectives to keep.", default_factory=SLOSpec)
    target_queue_per_replica: float | None = spec_field(
        "Waiting requests per replica the autoscaler aims for.", minimum=0)
    behavior: BehaviorSpec = spec_field("Scale-up/scale-down pacing.", default_factory=BehaviorSpec)
    predictive: PredictiveSpec = spec_field("Forecast-driven scaling.", default_factory=PredictiveSpec)
