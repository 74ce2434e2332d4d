"""Local end-to-end environment: control-plane binaries built from Go modules,
a kwok cluster with fake GPU node pools, and a pod runner that executes each
pod's command line as a real local process at the pod's IP."""
