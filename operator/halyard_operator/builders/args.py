"""The worker container's command line and model location (pure).

Model URI mapping (the worker resolves remote schemes itself):
  file:///p              -> --model /p (a path on the node image or a hostPath)
  pvc://claim/path       -> PVC `claim` mounted read-only at /models/claim,
                            --model /models/claim/path
  hf://org/repo, s3://.. -> --model <uri> unchanged
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from halyard_operator.api import EngineSpec, LLMDeploymentSpec

PORT = 8000
MODELS_ROOT = "/models"

# Flags the operator sets itself; extraArgs may not repeat them.
MANAGED_FLAGS = {
    "--model": "spec.model.uri", "--served-model-name": "spec.model.name",
    "--host": "the pod IP (set by the operator)", "--port": f"port {PORT} (set by the operator)",
    "--dtype": "spec.engine.dtype", "--quantization": "spec.engine.quantization",
    "--max-model-len": "spec.engine.maxModelLen", "--max-num-seqs": "spec.engine.maxNumSeqs",
    "--max-num-batched-tokens": "spec.engine.maxNumBatchedTokens",
    "--gpu-memory-utilization": "spec.engine.gpuMemoryUtilization",
    "--no-prefix-caching": "spec.engine.prefixCaching", "--drain-timeout": "spec.engine.drainTimeout",
}


@dataclass(frozen=True)
class ModelSource:
    """Where the worker reads the model: `path` for --model, and the PVC to
    mount (claim name) when the URI is pvc://."""

    path: str
    pvc_claim: str | None = None

    @property
    def mount_path(self) -> str | None:
        return f"{MODELS_ROOT}/{self.pvc_claim}" if self.pvc_claim else None


def model_source(uri: str) -> ModelSource:
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
            problems.append(f"{where}: {flag} is set by the operator from {MANAGED_FLAGS[flag]}; "
                            "remove it from extraArgs")
        expect_value = "=" not in arg
    return problems


def worker_args(spec: LLMDeploymentSpec) -> list[str]:
    """`halyard-worker` arguments; $(POD_IP) is expanded by the kubelet."""
    engine = spec.engine
    args = ["serve", "--model", model_source(spec.model.uri).path,
            "--served-model-name", spec.model.name, "--host", "$(POD_IP)", "--port", str(PORT)]
    args += _engine_flags(engine)
    args += ["--drain-timeout", _seconds(engine.drain_timeout)]
    return args + list(engine.extra_args)


def _engine_flags(engine: EngineSpec) -> list[str]:
    out = ["--dtype", engine.dtype]
    if engine.quantization != "none":
        out += ["--quantization", engine.quantization]
    for flag, value in (("--max-model-len", engine.max_model_len),
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
