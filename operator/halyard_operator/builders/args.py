"""The worker container's command line and model location (pure).

Model URI mapping (the worker parses the same forms: halyard_worker/model/source.py):
  file:///p, /p          -> --model /p (a directory or .gguf file on the node)
  pvc://claim/path       -> PVC `claim` mounted read-only at /models/claim,
                            --model /models/claim/path
  hf://..., s3://...     -> remote: the init container runs `halyard-worker fetch
                            --model <uri> [--revision R] --cache <cache>` into the
                            model cache volume; the server gets the same --model,
                            --revision and --model-cache and loads the cached copy
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from halyard_operator.api import EngineSpec, LLMDeploymentSpec

PORT = 8000
MODELS_ROOT = "/models"

# Flags the operator sets itself (flag -> where from); extraArgs may not repeat them.
MANAGED_FLAGS = {
    "--model": "from spec.model.uri", "--served-model-name": "from spec.model.name",
    "--host": "to the pod IP", "--port": f"to {PORT}, the Service's target port",
    "--dtype": "from spec.engine.dtype", "--quantization": "from spec.engine.quantization",
    "--quantization-group-size": "from spec.engine.quantizationGroupSize",
    "--max-model-len": "from spec.engine.maxModelLen", "--max-num-seqs": "from spec.engine.maxNumSeqs",
    "--max-num-batched-tokens": "from spec.engine.maxNumBatchedTokens",
    "--gpu-memory-utilization": "from spec.engine.gpuMemoryUtilization",
    "--no-prefix-caching": "from spec.engine.prefixCaching",
    "--drain-timeout": "from spec.engine.drainTimeout",
    "--revision": "from spec.model.revision", "--model-cache": "to the model cache volume",
    "--tensor-parallel-size": "from spec.resources.gpus",
}
REMOTE_SCHEMES = ("hf://", "s3://")


@dataclass(frozen=True)
class ModelSource:
    """Where the worker reads the model: `path` for --model, and the PVC to
    mount (claim name) when the URI is pvc://."""

    path: str
    pvc_claim: str | None = None
    remote: bool = False  # fetched into the model cache by the init container

    @property
    def mount_path(self) -> str | None:
        return f"{MODELS_ROOT}/{self.pvc_claim}" if self.pvc_claim else None


def model_source(uri: str) -> ModelSource:
    if uri.startswith(REMOTE_SCHEMES):
        return ModelSource(path=uri, remote=True)
    if uri.startswith("file://"):
        return ModelSource(path=uri[len("file://"):])
    if uri.startswith("pvc://"):
        claim, _, sub = uri[len("pvc://"):].partition("/")
        path = f"{MODELS_ROOT}/{claim}" + (f"/{sub.strip('/')}" if sub.strip("/") else "")
        return ModelSource(path=path, pvc_claim=claim)
    return ModelSource(path=uri)


def extra_args_problems(args: tuple[str, ...]) -> list[str]:
    """Why each bad extraArgs entry cannot work (empty list = all fine)."""
    problems, expect_value = [], False
    for i, arg in enumerate(args):
        where = f"spec.engine.extraArgs[{i}] {arg!r}"
        if not arg.startswith("-"):
            if not expect_value:
                problems.append(f"{where}: not a flag; write flags as --name or --name=value")
            expect_value = False
            continue
        flag = arg.split("=", 1)[0]
        if not flag.startswith("--") or len(flag) < 3 or any(c.isspace() for c in flag):
            problems.append(f"{where}: flags must look like --name or --name=value")
        elif flag in MANAGED_FLAGS:
            problems.append(f"{where}: {flag} is set by the operator {MANAGED_FLAGS[flag]}; "
                            "remove it from extraArgs")
        expect_value = "=" not in arg
    return problems


def model_args(spec: LLMDeploymentSpec) -> list[str]:
    """--model (and --revision for hf://), the same for fetch and serve."""
    source = model_source(spec.model.uri)
    if not source.remote:
        return ["--model", source.path]
    revision = ["--revision", spec.model.revision] if spec.model.revision else []
    return ["--model", source.path, *revision]


def fetch_args(spec: LLMDeploymentSpec, cache_dir: str) -> list[str] | None:
    """The init container's `halyard-worker` arguments, or None for a local model."""
    if not model_source(spec.model.uri).remote:
        return None
    return ["fetch", *model_args(spec), "--cache", cache_dir]


def worker_args(spec: LLMDeploymentSpec, cache_dir: str) -> list[str]:
    """`halyard-worker` arguments; $(POD_IP) is expanded by the kubelet."""
    engine = spec.engine
    cache = ["--model-cache", cache_dir] if model_source(spec.model.uri).remote else []
    args = ["serve", *model_args(spec), *cache,
            "--served-model-name", spec.model.name, "--host", "$(POD_IP)", "--port", str(PORT)]
    args += _engine_flags(engine)
    if spec.resources.gpus > 1:
        args += ["--tensor-parallel-size", str(spec.resources.gpus)]  # one rank per GPU
    args += ["--drain-timeout", _seconds(engine.drain_timeout)]
    return args + list(engine.extra_args)


def _engine_flags(engine: EngineSpec) -> list[str]:
    out = ["--dtype", engine.dtype]
    if engine.quantization != "none":
        out += ["--quantization", engine.quantization]
    for flag, value in (("--quantization-group-size", engine.quantization_group_size),
                        ("--max-model-len", engine.max_model_len),
                        ("--max-num-seqs", engine.max_num_seqs),
                        ("--max-num-batched-tokens", engine.max_num_batched_tokens),
                        ("--gpu-memory-utilization", engine.gpu_memory_utilization)):
        if value is not None:
            out += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if not engine.prefix_caching:
        out.append("--no-prefix-caching")
    return out


def _seconds(value: float) -> str:
    return f"{value:g}"


def grace_period_seconds(engine: EngineSpec) -> int:
    """terminationGracePeriodSeconds: the drain timeout plus 15 s for shutdown."""
    return math.ceil(engine.drain_timeout) + 15
