"""Pure builders: Deployment per pool, Service, PDB, worker command line."""
from __future__ import annotations

import pytest

from halyard_operator.api import parse_spec
from halyard_operator.builders.args import extra_args_problems, model_source, worker_args
from halyard_operator.builders.children import desired_children
from halyard_operator.builders.meta import Owner
from halyard_operator.builders.placement import place
from halyard_operator.builders.pools import detect_provider, node_matches, resolve_pools
from halyard_operator.config import OperatorConfig

CONFIG = OperatorConfig(default_image="halyard/worker:t")
OWNER = Owner(name="chat", namespace="team-a", uid="u-1")


def build(config=CONFIG, **spec):
    body = {"model": {"name": "chat-8b", "uri": "hf://org/repo"}, "replicas": 2, **spec}
    parsed = parse_spec(body)
    pools = resolve_pools(parsed, config, [])
    return {o["metadata"]["name"] + "/" + o["kind"]: o
            for o in desired_children(OWNER, parsed, pools, place(parsed), config)}


def pod(children, pool="ondemand"):
    return children[f"chat-{pool}/Deployment"]["spec"]["template"]["spec"]


def test_children_names_and_ports():
    children = build()
    assert set(children) == {"chat-ondemand/Deployment", "chat/Service", "chat-workers/Service",
                             "chat/PodDisruptionBudget", "chat-router/Deployment", "chat-router/ServiceAccount",
                             "chat-router/Role", "chat-router/RoleBinding", "chat-router/PodDisruptionBudget"}
    assert children["chat/Service"]["spec"]["ports"][0] == {
        "name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    assert children["chat/Service"]["spec"]["selector"] == {"halyard.dev/router": "chat"}
    workers = children["chat-workers/Service"]["spec"]
    assert workers["clusterIP"] == "None" and workers["selector"] == {"halyard.dev/deployment": "chat"}


def test_router_off_points_the_service_at_the_workers():
    children = build(router={"enabled": False})
    assert not [name for name in children if name.startswith("chat-router")]
    assert children["chat/Service"]["spec"]["selector"] == {"halyard.dev/deployment": "chat"}


def test_router_pods_are_not_workers_and_run_restricted_with_least_rbac():
    children = build(tier="critical", engine={"maxNumSeqs": 8, "extraArgs": ["--block-size=32"]},
                     router={"policy": "least-load", "cache": {"enabled": True, "maxEntries": 10}})
    router = children["chat-router/Deployment"]
    labels = router["spec"]["template"]["metadata"]["labels"]
    assert "halyard.dev/deployment" not in labels and labels["halyard.dev/router"] == "chat"
    assert router["spec"]["replicas"] == 2
    spec = router["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "chat-router" and spec["securityContext"]["runAsNonRoot"]
    container = spec["containers"][0]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    args = " ".join(container["args"])
    for flag in ("--deployment chat", "--policy least-load", "--tier critical", "--block-size 32",
                 "--saturation 8", "--served-model-name chat-8b", "--cache-entries 10"):
        assert flag in args
    assert children["chat-router/Role"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    binding = children["chat-router/RoleBinding"]
    assert binding["subjects"][0]["name"] == "chat-router" and binding["roleRef"]["name"] == "chat-router"
    assert children["chat-router/PodDisruptionBudget"]["spec"]["minAvailable"] == 1


def test_router_args_are_a_valid_router_command_line_with_the_queue_settings():
    from halyard_router.config import parse_config

    children = build(tier="critical", engine={"maxNumSeqs": 8},
                     router={"queue": {"maxRequests": 40, "maxWait": {"critical": "2m", "batch": "1s"}}})
    args = children["chat-router/Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    config = parse_config(args)
    assert (config.queue_max, config.queue_wait_critical, config.queue_wait_standard,
            config.queue_wait_batch) == (40, 120.0, 30.0, 1.0)
    assert (config.deployment, config.tier, config.saturation) == ("chat", "critical", 8)


def test_spot_pool_has_its_own_deployment_and_selector():
    children = build(replicas=3, capacity={"provider": "karpenter", "spot": {"enabled": True}})
    spot = children["chat-spot/Deployment"]
    assert spot["spec"]["replicas"] == 2
    assert spot["spec"]["selector"]["matchLabels"] == {"halyard.dev/deployment": "chat", "halyard.dev/pool": "spot"}
    assert pod(children, "spot")["nodeSelector"] == {"karpenter.sh/capacity-type": "spot"}
    assert pod(children)["nodeSelector"] == {"karpenter.sh/capacity-type": "on-demand"}


def test_worker_command_line_sets_only_given_flags():
    children = build(engine={"quantization": "int4", "maxNumSeqs": 32, "gpuMemoryUtilization": 0.85,
                             "prefixCaching": False, "drainTimeout": "1m", "extraArgs": ["--block-size", "32"]})
    container = pod(children)["containers"][0]
    assert container["command"] == ["halyard-worker"]
    assert container["args"] == [
        "serve", "--model", "hf://org/repo", "--model-cache", "/var/lib/halyard/model-cache",
        "--served-model-name", "chat-8b", "--host", "$(POD_IP)",
        "--port", "8000", "--dtype", "auto", "--quantization", "int4", "--max-num-seqs", "32",
        "--gpu-memory-utilization", "0.85", "--no-prefix-caching", "--drain-timeout", "60",
        "--block-size", "32"]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in container["env"]
    assert pod(children)["terminationGracePeriodSeconds"] == 75


def test_quantization_group_size_becomes_its_flag():
    args = pod(build(engine={"quantization": "int4", "quantizationGroupSize": 32}))["containers"][0]["args"]
    assert args[args.index("--quantization-group-size") + 1] == "32"


@pytest.mark.parametrize("uri,path,claim", [
    ("file:///srv/models/llama", "/srv/models/llama", None),
    ("/srv/models/x.gguf", "/srv/models/x.gguf", None),
    ("pvc://store/llama/8b", "/models/store/llama/8b", "store"),
    ("pvc://store", "/models/store", "store"),
    ("s3://bucket/llama", "s3://bucket/llama", None),
    ("hf://org/repo", "hf://org/repo", None),
])
def test_model_uri_mapping(uri, path, claim):
    source = model_source(uri)
    assert (source.path, source.pvc_claim) == (path, claim)


def test_pvc_model_is_mounted_read_only():
    children = build(model={"name": "m", "uri": "pvc://store/llama"})
    spec = pod(children)
    assert {"name": "model", "persistentVolumeClaim": {"claimName": "store", "readOnly": True}} in spec["volumes"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "model")
    assert mount == {"name": "model", "mountPath": "/models/store", "readOnly": True}
    assert spec["containers"][0]["args"][2] == "/models/store/llama"
    assert "initContainers" not in spec  # nothing to fetch: the claim is read in place


def test_remote_model_is_fetched_by_an_init_container_into_the_node_cache():
    children = build(model={"name": "m", "uri": "hf://org/repo", "revision": "v2"},
                     template={"env": [{"name": "HF_TOKEN", "value": "t"}]})
    spec = pod(children)
    (init,) = spec["initContainers"]
    assert init["command"] == ["halyard-worker"]
    assert init["args"] == ["fetch", "--model", "hf://org/repo", "--revision", "v2",
                            "--cache", "/var/lib/halyard/model-cache"]
    assert {"name": "HF_TOKEN", "value": "t"} in init["env"]  # credentials reach the fetch
    assert {"name": "model-cache", "hostPath": {"path": "/var/lib/halyard/model-cache",
                                                "type": "DirectoryOrCreate"}} in spec["volumes"]
    args = spec["containers"][0]["args"]
    assert args[:7] == ["serve", "--model", "hf://org/repo", "--revision", "v2",
                        "--model-cache", "/var/lib/halyard/model-cache"]
    for container in (init, spec["containers"][0]):
        assert {"name": "model-cache", "mountPath": "/var/lib/halyard/model-cache"} in container["volumeMounts"]
    assert not any(e["name"] == "HALYARD_MODEL_REVISION" for e in spec["containers"][0]["env"])


@pytest.mark.parametrize("raw,volume", [
    ({"persistentVolumeClaim": "models"}, {"name": "model-cache", "persistentVolumeClaim": {"claimName": "models"}}),
    ({"emptyDir": {}}, {"name": "model-cache", "emptyDir": {}}),
    ({"hostPath": "/data/models"}, {"name": "model-cache", "hostPath": {"path": "/data/models",
                                                                        "type": "DirectoryOrCreate"}}),
])
def test_model_cache_volume_comes_from_the_operator_config(raw, volume):
    from halyard_operator.config import parse_config

    config = parse_config({"modelCache": raw})
    children = build(model={"name": "m", "uri": "s3://bucket/llama"}, config=config)
    spec = pod(children)
    assert volume in spec["volumes"]
    mount = config.model_cache.mount_path
    assert spec["initContainers"][0]["args"][-2:] == ["--cache", mount]
    assert ["--model-cache", mount] == spec["containers"][0]["args"][3:5]


def test_gpu_limits_product_selector_toleration_priority():
    spec = pod(build(resources={"gpus": 2, "gpuProduct": "NVIDIA-L4", "memory": "32Gi"}, tier="critical"))
    res = spec["containers"][0]["resources"]
    assert res["limits"] == {"nvidia.com/gpu": "2", "memory": "32Gi"}
    assert res["requests"] == {"memory": "32Gi"}
    assert spec["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-L4"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["priorityClassName"] == "halyard-critical"


def test_cpu_replica_has_no_gpu_limit_or_toleration():
    spec = pod(build(resources={"gpus": 0}))
    assert "nvidia.com/gpu" not in spec["containers"][0].get("resources", {}).get("limits", {})
    assert spec["tolerations"] == []


def test_probes_security_and_image_default():
    children = build()
    spec = pod(children)
    c = spec["containers"][0]
    assert c["image"] == "halyard/worker:t"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 600
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    labels = children["chat-ondemand/Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "chat" and labels["halyard.dev/pool"] == "ondemand"


def test_gke_on_demand_pool_excludes_spot_nodes_by_affinity():
    children = build(capacity={"provider": "gke"}, template={"affinity": {"podAntiAffinity": {"x": 1}}})
    affinity = pod(children)["affinity"]
    assert affinity["podAntiAffinity"] == {"x": 1}
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "cloud.google.com/gke-spot", "operator": "DoesNotExist"}]}]


def test_aks_spot_pool_tolerates_the_spot_taint():
    children = build(replicas=2, capacity={"provider": "aks", "spot": {"enabled": True}})
    assert {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
            "effect": "NoSchedule"} in pod(children, "spot")["tolerations"]


def test_custom_provider_uses_explicit_placement_and_template_extras():
    children = build(replicas=2, capacity={"provider": "custom", "spot": {"enabled": True}, "custom": {
        "onDemand": {"nodeSelector": {"pool": "od"}},
        "spot": {"nodeSelector": {"pool": "sp"}, "tolerations": [{"key": "sp", "operator": "Exists"}]}}},
        template={"nodeSelector": {"zone": "a"}, "imagePullSecrets": [{"name": "creds"}]})
    assert pod(children, "spot")["nodeSelector"] == {"pool": "sp", "zone": "a"}
    assert {"key": "sp", "operator": "Exists"} in pod(children, "spot")["tolerations"]
    assert pod(children)["imagePullSecrets"] == [{"name": "creds"}]


def test_owner_reference_on_every_child():
    for obj in build().values():
        assert obj["metadata"]["ownerReferences"] == [{
            "apiVersion": "halyard.dev/v1alpha1", "kind": "LLMDeployment", "name": "chat", "uid": "u-1",
            "controller": True, "blockOwnerDeletion": True}]


@pytest.mark.parametrize("args,needle", [
    (["--port=9000"], "spec.engine.extraArgs[0] '--port=9000': --port is set by the operator"),
    (["--model", "x"], "--model is set by the operator from spec.model.uri"),
    (["oops"], "not a flag"),
    (["-x"], "must look like --name"),
])
def test_bad_extra_args_are_explained(args, needle):
    assert any(needle in p for p in extra_args_problems(tuple(args)))


def test_good_extra_args_pass():
    assert extra_args_problems(("--block-size", "32", "--max-queue=10", "--api-key", "k")) == []


def test_provider_detection_from_node_labels():
    assert detect_provider([{"kubernetes.io/os": "linux"}], CONFIG) == "generic"
    assert detect_provider([{"a": "b"}, {"cloud.google.com/gke-nodepool": "gpu"}], CONFIG) == "gke"
    assert detect_provider([{"karpenter.sh/capacity-type": "spot"}], CONFIG) == "karpenter"


def test_node_matching_honours_expressions():
    aks = CONFIG.providers["aks"]
    assert node_matches({"kubernetes.azure.com/scalesetpriority": "regular"}, aks.on_demand)
    assert not node_matches({"kubernetes.azure.com/scalesetpriority": "spot"}, aks.on_demand)
    assert node_matches({"kubernetes.azure.com/scalesetpriority": "spot"}, aks.spot)


def test_api_key_comes_from_the_secret_as_an_environment_variable():
    from halyard_operator.builders.pod import API_KEY_ENV

    container = pod(build(apiKeySecretRef={"name": "chat-key"}))["containers"][0]
    assert {"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": "chat-key", "key": "api-key"}}} \
        in container["env"]
    assert not any("api-key" in arg for arg in container.get("args", []) + container.get("command", []))
    plain = pod(build())["containers"][0]
    assert all(var["name"] != API_KEY_ENV for var in plain["env"])


def test_operator_and_worker_agree_on_the_api_key_variable():
    pytest.importorskip("fastapi")
    from halyard_operator.builders.pod import API_KEY_ENV
    from halyard_worker.server.config import API_KEY_ENV as WORKER_ENV

    assert API_KEY_ENV == WORKER_ENV


@pytest.mark.parametrize("gpus,flag", [(0, None), (1, None), (2, "2"), (8, "8")])
def test_gpus_per_replica_is_the_tensor_parallel_size_with_shared_memory_for_nccl(gpus, flag):
    spec = pod(build(resources={"gpus": gpus}))
    container = spec["containers"][0]
    args = container["args"]
    if flag is None:
        assert "--tensor-parallel-size" not in args
    else:
        assert args[args.index("--tensor-parallel-size") + 1] == flag
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert {"name": "shm", "emptyDir": {"medium": "Memory"}} in spec["volumes"]


def test_extra_args_may_not_set_the_tensor_parallel_size():
    [problem] = extra_args_problems(("--tensor-parallel-size=4",))
    assert "spec.resources.gpus" in problem
