"""Observe: Kubernetes objects read into typed, frozen observations, in one place.

`types` holds the observations (stdlib only: policies and signals import
them); `read` turns API dicts into them (pure); `live` lists and gets the
objects of one LLMDeployment from the API server. Nothing above this
package looks inside a Pod or Node dict.
"""
from halyard_operator.observe.read import read_gpu_claims, read_node, read_observed, read_pod
from halyard_operator.observe.derived import by_name, node_labels
from halyard_operator.observe.types import ContainerState, GpuClaim, NodeInfo, Observed, ObservedPod

__all__ = ["ContainerState", "GpuClaim", "NodeInfo", "Observed", "ObservedPod",
           "by_name", "node_labels", "read_gpu_claims", "read_node", "read_observed", "read_pod"]
