"""Pod volumes as local directories and container paths mapped onto them; API access for pods."""
from __future__ import annotations

import yaml

from halyard.dev.podaccess import SA_DIR, ApiAccess, access_env
from halyard.dev.podvolumes import container_mounts, map_env, map_path, materialize

POD = {
    "metadata": {"name": "op-1", "namespace": "halyard-system", "uid": "u1"},
    "spec": {
        "serviceAccountName": "halyard-operator",
        "containers": [{"name": "operator", "volumeMounts": [
            {"name": "config", "mountPath": "/etc/halyard", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "kube-api-access", "mountPath": SA_DIR}]}],
        "volumes": [
            {"name": "config", "configMap": {"name": "halyard-operator-config"}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "kube-api-access", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                                            "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}],
    },
}
CONFIGMAPS = {"halyard-operator-config": {"config.yaml": "reconcileInterval: 30s\n"},
              "kube-root-ca.crt": {"ca.crt": "PEM"}}


def lookup(kind, namespace, name, key):
    data = CONFIGMAPS.get(name) if kind == "configMap" else None
    return data if key is None or data is None else data.get(key)


def token(namespace, account, pod, uid, expiration):
    return f"token-for-{namespace}/{account}/{pod}/{uid}/{expiration}"


def test_volumes_are_written_and_paths_in_args_and_env_follow_them(tmp_path):
    materialize(POD, tmp_path, lookup, token)
    mounts = container_mounts(POD["spec"]["containers"][0], tmp_path)
    config = map_path("/etc/halyard/config.yaml", mounts)
    assert open(config).read() == "reconcileInterval: 30s\n"
    assert map_path("--config=/etc/halyard/config.yaml", mounts) == f"--config={config}"
    assert map_path("/etcetera", mounts) == "/etcetera" and map_path("http://x/tmp", mounts) == "http://x/tmp"
    assert map_env({"TMPDIR": "/tmp"}, mounts, exists=lambda p: False)["TMPDIR"] == str(tmp_path / "volumes" / "tmp")
    # a host path that exists stays (file:// models in the dev cluster), the termination file never does
    assert map_path(str(tmp_path), (*mounts, ), exists=lambda p: True) == str(tmp_path)
    assert map_path("/tmp/model", mounts, exists=lambda p: True) == "/tmp/model"
    assert map_path("/dev/termination-log", mounts, exists=lambda p: True).startswith(str(tmp_path))
    sa = tmp_path / "volumes" / "kube-api-access"
    assert (sa / "token").read_text() == "token-for-halyard-system/halyard-operator/op-1/u1/3607"
    assert (sa / "ca.crt").read_text() == "PEM" and (sa / "namespace").read_text() == "halyard-system"
    assert map_path("/dev/termination-log", mounts) == str(tmp_path / "termination" / "operator")


def test_a_pod_with_a_token_gets_the_api_server_and_a_kubeconfig(tmp_path):
    materialize(POD, tmp_path, lookup, token)
    mounts = container_mounts(POD["spec"]["containers"][0], tmp_path)
    env = access_env(ApiAccess("https://127.0.0.1:32001", ca_data="Q0E="), mounts, tmp_path, "halyard-system")
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "32001")
    config = yaml.safe_load(open(env["KUBECONFIG"]))
    assert config["users"][0]["user"]["token"].startswith("token-for-halyard-system/halyard-operator/")
    assert config["clusters"][0]["cluster"] == {"server": "https://127.0.0.1:32001",
                                                "certificate-authority-data": "Q0E="}
    bare = access_env(ApiAccess("https://127.0.0.1:32001"), (), tmp_path, "x")
    assert "KUBECONFIG" not in bare


def test_a_host_path_volume_is_its_own_directory(tmp_path):
    container = {"name": "c", "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/halyard"}]}
    volumes = [{"name": "cache", "hostPath": {"path": str(tmp_path / "shared")}}]
    mounts = container_mounts(container, tmp_path / "pod", volumes)
    assert map_path("/var/cache/halyard/m", mounts, exists=lambda p: False) == str(tmp_path / "shared" / "m")
