"""The operator's pods against the worker's own parsers: for every sample under
manifests/samples/ and every model-source form, each container's command line
(after the kubelet's $(VAR) expansion) and environment are accepted by
`halyard-worker`'s argument parser, its `serve` config and its model-source
resolver, and the local path the worker would load lies on a volume the
operator mounts."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from halyard.dev.podenv import container_launch
from halyard_operator.api import parse_spec
from halyard_operator.builders.children import desired_children
from halyard_operator.builders.meta import Owner
from halyard_operator.builders.placement import place
from halyard_operator.builders.pools import resolve_pools
from halyard_operator.config import OperatorConfig, parse_config
from halyard_operator.names import POOL_LABEL
from halyard_worker.cli import build_parser
from halyard_worker.model import fetch
from halyard_worker.model.source import parse_model_uri
from halyard_worker.server.config import config_from_args

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "manifests" / "samples").glob("*.yaml"))
OWNER = Owner(name="llm", namespace="team-a", uid="u-1")
MODEL_FORMS = [
    ("file:///srv/models/llama", None), ("/srv/models/x.Q4_1.gguf", None), ("file:///srv/x.gguf", None),
    ("hf://org/repo", None), ("hf://org/repo", "v1.0"), ("hf://org/repo@abc123", None),
    ("hf://org/repo/q4/x.Q4_1.gguf", None), ("hf://org/repo@main/x.gguf", None),
    ("s3://bucket/models/llama", None), ("s3://bucket/x.gguf", None), ("s3://bucket", None),
    ("pvc://store/llama/8b", None), ("pvc://store", None),
]
CONFIGS = {"default": OperatorConfig(), "pvc-cache": parse_config({"modelCache": {"persistentVolumeClaim": "c"}}),
           "emptydir-cache": parse_config({"modelCache": {"emptyDir": {}}})}


def pods(body: dict, config: OperatorConfig) -> list[dict]:
    spec = parse_spec(body)
    children = desired_children(OWNER, spec, resolve_pools(spec, config, []), place(spec), config)
    # the worker pools' Deployments (the router's Deployment runs halyard-router, not the worker)
    return [c["spec"]["template"] for c in children
            if c["kind"] == "Deployment" and POOL_LABEL in c["spec"]["template"]["metadata"]["labels"]]


def expanded(container: dict, template: dict) -> tuple[list[str], dict]:
    pod = {"metadata": {"name": "p", "namespace": "team-a", **template["metadata"]}, "spec": template["spec"],
           "status": {"podIP": "10.0.0.7", "hostIP": "10.0.0.1"}}
    launch = container_launch(container, pod, lambda *a: "x")
    assert not any("$(" in a for a in launch.argv), launch.argv  # every reference resolves
    return list(launch.argv), dict(launch.env)


@pytest.fixture
def checked_paths(monkeypatch):
    """The worker checks local models at parse time; here it records what it was asked to load."""
    seen = []
    monkeypatch.setattr(fetch, "check_local", lambda path, uri: seen.append(str(path)) or path)
    return seen


def accept(template: dict, checked: list[str]) -> None:
    spec = template["spec"]
    mounts = {m["mountPath"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        argv, env = expanded(container, template)
        assert argv[0] == "halyard-worker"
        args = build_parser().parse_args(argv[1:])
        source = parse_model_uri(args.model, args.revision)
        if args.command == "serve":
            config = config_from_args(args)
            assert config.host == "10.0.0.7" and config.revision == source.revision
            if source.remote:
                assert config.model_cache in mounts
        else:
            assert source.remote and args.cache in mounts
        if not source.remote:
            assert checked and any(checked[-1].startswith(m) for m in mounts | {"/srv"}), checked
        assert env["HOME"] and env["POD_IP"] == "10.0.0.7"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_every_sample_runs_as_the_worker_reads_it(sample, config, checked_paths):
    body = yaml.safe_load(sample.read_text())
    templates = pods(body["spec"], CONFIGS[config])
    assert templates, "no worker pool Deployment"
    for template in templates:
        accept(template, checked_paths)


@pytest.mark.parametrize("uri,revision", MODEL_FORMS, ids=lambda v: str(v))
def test_every_model_source_form_runs_as_the_worker_reads_it(uri, revision, checked_paths):
    model = {"name": "m", "uri": uri, **({"revision": revision} if revision else {})}
    body = {"model": model, "replicas": 1, "engine": {"quantization": "int4", "extraArgs": ["--block-size=32"]}}
    (template,) = pods(body, OperatorConfig())  # one on-demand pool
    accept(template, checked_paths)
    remote = uri.startswith(("hf://", "s3://"))
    assert ("initContainers" in template["spec"]) == remote


def test_pvc_path_is_where_the_operator_mounts_the_claim():
    from halyard_operator.builders.args import model_source

    for uri in ("pvc://store/llama/8b", "pvc://store"):
        assert parse_model_uri(uri).path == model_source(uri).path


def test_quantization_group_size_reaches_the_worker_config(checked_paths):
    body = {"model": {"name": "m", "uri": "/srv/models/llama"}, "replicas": 1,
            "engine": {"quantization": "int4-awq", "quantizationGroupSize": 64}}
    (template,) = pods(body, OperatorConfig())
    argv, _ = expanded(template["spec"]["containers"][0], template)
    config = config_from_args(build_parser().parse_args(argv[1:]))
    assert (config.quantization, config.quantization_group_size) == ("int4-awq", 64)
