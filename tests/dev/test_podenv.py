"""Kubelet-style command/env resolution of the dev pod runner."""
from __future__ import annotations

import pytest

from halyard.dev.podenv import container_launch, expand

POD = {"metadata": {"name": "w-0", "namespace": "team-a", "uid": "u1", "labels": {"app": "x"}},
       "spec": {"nodeName": "gpu-spot-0"}, "status": {"podIP": "127.2.0.7", "hostIP": "10.0.0.1"}}


def lookup(kind, namespace, name, key):
    data = {("configMap", "team-a", "cfg"): {"MODE": "fast", "LEVEL": "3"}}.get((kind, namespace, name))
    if data is None:
        return None
    return data if key is None else data.get(key)


def test_expand_follows_kubernetes_rules():
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$$(A)", env) == "$(A)"  # escaped
    assert expand("$(MISSING) $A", env) == "$(MISSING) $A"  # unknown stays literal; no shell syntax


def test_command_args_and_env_expand_with_downward_api():
    container = {
        "name": "worker", "command": ["halyard-worker"],
        "args": ["serve", "--host", "$(POD_IP)", "--port", "$(PORT)"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "PORT", "value": "8000"},
                {"name": "URL", "value": "http://$(POD_IP):$(PORT)/v1"},
                {"name": "EARLY", "value": "$(LATER)"}, {"name": "LATER", "value": "x"},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}}],
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
    }
    launch = container_launch(container, POD, lookup)
    assert launch.argv == ("halyard-worker", "serve", "--host", "127.2.0.7", "--port", "8000")
    assert launch.env["URL"] == "http://127.2.0.7:8000/v1"
    assert launch.env["EARLY"] == "$(LATER)"  # only earlier entries expand
    assert launch.env["APP"] == "x" and launch.env["MODE"] == "fast" and launch.env["CFG_LEVEL"] == "3"


def test_missing_command_and_missing_key_are_errors():
    with pytest.raises(ValueError, match="no command"):
        container_launch({"name": "c", "args": ["x"]}, POD, lookup)
    bad = {"name": "c", "command": ["x"],
           "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(ValueError, match="nope/k"):
        container_launch(bad, POD, lookup)
