"""The kwokctl configuration: 127.0.0.1 binding and the pod lifecycle Stages.

kwok's default pod-ready Stage marks a pod Ready the moment it is scheduled.
Here that one Stage is replaced: a scheduled pod becomes `Running` with its
pod IP and `Ready=False`, containers `ready: false`. The pod runner
(`podrunner.py`) flips Ready once the real process passes the pod's own
readinessProbe, so readiness in the API reflects the worker process. Node
initialisation, heartbeats, pod completion and deletion keep kwok's own
Stages (copied from the pinned kwok module at build time).
"""
from __future__ import annotations

from pathlib import Path

import yaml

KWOK_STAGES = ("node-initialize.yaml", "node-heartbeat-with-lease.yaml", "pod-complete.yaml", "pod-delete.yaml")

# Go template (kwok Stage statusTemplate): Running with IPs, not yet Ready.
POD_RUNNING_TEMPLATE = """\
{{ $now := Now }}
conditions:
- {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: true
  restartCount: 0
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""


def pod_running_stage() -> dict:
    """Stage: a scheduled, pending, live pod becomes Running (not Ready)."""
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage",
        "metadata": {"name": "pod-running-not-ready"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
            ]},
            "next": {"statusTemplate": POD_RUNNING_TEMPLATE},
        },
    }


def kwokctl_config(stages_dir: Path) -> list[dict]:
    """Documents of the `kwokctl create cluster --config` file."""
    docs = [
        {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokctlConfiguration",
         "options": {"bindAddress": "127.0.0.1", "runtime": "binary",
                     "disableQPSLimits": True, "nodeLeaseDurationSeconds": 40,
                     # real admission (Priority resolves priorityClassName) and RBAC
                     "kubeAdmission": True, "kubeAuthorization": True,
                     # kwok serves `kubectl logs` from the files a per-pod Logs object names
                     "enableCRDs": ["Logs"]},
         # the default /24 service range runs out at ~250 Services (one per LLMDeployment)
         "componentsPatches": [{"name": "kube-apiserver", "extraArgs": [
             {"key": "service-cluster-ip-range", "value": "10.96.0.0/16"}]}]},
    ]
    for name in KWOK_STAGES:
        docs.append(yaml.safe_load((stages_dir / name).read_text()))
    docs.append(pod_running_stage())
    return docs


def write_config(path: Path, stages_dir: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(kwokctl_config(stages_dir), sort_keys=False))
    return path
