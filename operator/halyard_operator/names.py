"""Every wire name the operator writes or reads, in one place.

Labels, annotations, the finalizer, the field manager, condition types and
reasons, and Event reasons. Users match on these (selectors, alerts,
`kubectl wait --for=condition=...`), so a name changes here or nowhere.
"""
from __future__ import annotations

PREFIX = "halyard.dev"

# --- labels ------------------------------------------------------------------
DEPLOYMENT_LABEL = f"{PREFIX}/deployment"  # the owning LLMDeployment's name (worker pods, children)
POOL_LABEL = f"{PREFIX}/pool"  # "ondemand" | "spot"
TIER_LABEL = f"{PREFIX}/tier"
ROUTER_LABEL = f"{PREFIX}/router"  # router pods (never DEPLOYMENT_LABEL: they are not workers)
APP_NAME_LABEL = "app.kubernetes.io/name"
APP_INSTANCE_LABEL = "app.kubernetes.io/instance"
APP_COMPONENT_LABEL = "app.kubernetes.io/component"
APP_PART_OF_LABEL = "app.kubernetes.io/part-of"
APP_MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # node label (NVIDIA GPU feature discovery)

# --- resources ---------------------------------------------------------------
GPU_RESOURCE = "nvidia.com/gpu"

# --- annotations -------------------------------------------------------------
HASH_ANNOTATION = f"{PREFIX}/applied-hash"  # hash of the desired child as last applied
STATE_ANNOTATION = f"{PREFIX}/scaling-state"  # the scaling policies' memory (JSON) on the LLMDeployment
INTERRUPTION_KEY = f"{PREFIX}/interruption"  # generic node interruption taint or annotation
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
DRAINING_ANNOTATION = f"{PREFIX}/draining"  # worker pod on an interrupted node: routers stop sending it requests
KOPF_PREFIX = PREFIX  # kopf's progress and diff-base annotations: halyard.dev/...
KOPF_DIFFBASE_KEY = "last-handled-configuration"

# --- finalizers and ownership ------------------------------------------------
KOPF_FINALIZER = f"{PREFIX}/kopf-finalizer"  # kopf's, so timers stop before an object goes
FIELD_MANAGER = "halyard-operator"  # server-side apply field manager

# --- condition types ---------------------------------------------------------
READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
SCALING_ACTIVE = "ScalingActive"
CAPACITY_CONSTRAINED = "CapacityConstrained"
SPOT_FALLBACK_ACTIVE = "SpotFallbackActive"
SLO_AT_RISK = "SLOAtRisk"
OWNED_CONDITION_TYPES = (READY, PROGRESSING, DEGRADED, SCALING_ACTIVE,
                         CAPACITY_CONSTRAINED, SPOT_FALLBACK_ACTIVE, SLO_AT_RISK)


class Reason:
    """Condition reasons (CamelCase, as Kubernetes writes them)."""

    # Ready
    REPLICAS_READY = "ReplicasReady"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    SCALED_TO_ZERO = "ScaledToZero"
    # Progressing
    ROLLING_OUT = "RollingOut"
    SETTLED = "Settled"
    BLOCKED = "Blocked"
    # Degraded: AS_EXPECTED, or the first problem's reason
    AS_EXPECTED = "AsExpected"
    INVALID_SPEC = "InvalidSpec"
    INVALID_EXTRA_ARGS = "InvalidExtraArgs"
    IMAGE_PULL_SECRET_NOT_FOUND = "ImagePullSecretNotFound"
    UNKNOWN_TIER = "UnknownTier"
    SPOT_NOT_ALLOWED_FOR_TIER = "SpotNotAllowedForTier"
    SPOT_UNAVAILABLE = "SpotUnavailable"  # also SpotFallbackActive and CapacityConstrained
    NO_MATCHING_NODES = "NoMatchingNodes"
    # Degraded by failing worker pods (classified from pod statuses: reconcile/failures.py)
    MODEL_LOAD_FAILED = "ModelLoadFailed"
    WORKER_ARGS_REJECTED = "WorkerArgsRejected"
    OOM_KILLED = "OOMKilled"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    CONTAINER_CONFIG_ERROR = "ContainerConfigError"
    WORKER_CRASH_LOOP = "WorkerCrashLoop"
    UNSCHEDULABLE = "Unschedulable"
    # ScalingActive
    SCALING_FROM_METRICS = "ScalingFromMetrics"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    # CapacityConstrained
    CAPACITY_AVAILABLE = "CapacityAvailable"
    ON_DEMAND_PENDING = "OnDemandPending"
    GPUS_HELD_BY_HIGHER_TIERS = "GPUsHeldByHigherTiers"
    INSUFFICIENT_GPUS = "InsufficientGPUs"
    # SpotFallbackActive
    SPOT_NOT_USED = "SpotNotUsed"
    SPOT_READY = "SpotReady"
    FALLBACK_DISABLED = "FallbackDisabled"
    # SLOAtRisk
    SLO_AT_RISK = "SLOAtRisk"
    WITHIN_SLO = "WithinSLO"


# --- events ------------------------------------------------------------------
NORMAL = "Normal"
WARNING = "Warning"  # a Warning Event's reason is the Degraded condition's reason


class EventReason:
    """Reasons of the Normal Events the operator posts on an LLMDeployment."""

    CREATED = "Created"
    UPDATED = "Updated"
    DELETED = "Deleted"
    SCALED = "Scaled"
    DRAINING = "Draining"
    INTERRUPTION = "Interruption"
    RECOVERED = "Recovered"  # Degraded turned False


# Every reason Degraded=True can carry; each is also a Warning Event's reason.
DEGRADED_REASONS = (
    Reason.INVALID_SPEC, Reason.INVALID_EXTRA_ARGS, Reason.IMAGE_PULL_SECRET_NOT_FOUND, Reason.UNKNOWN_TIER,
    Reason.SPOT_NOT_ALLOWED_FOR_TIER, Reason.SPOT_UNAVAILABLE, Reason.NO_MATCHING_NODES,
    Reason.MODEL_LOAD_FAILED, Reason.WORKER_ARGS_REJECTED, Reason.OOM_KILLED, Reason.IMAGE_PULL_FAILED,
    Reason.CONTAINER_CONFIG_ERROR, Reason.WORKER_CRASH_LOOP, Reason.UNSCHEDULABLE,
)
# The fixed set of Event reasons (alerts and `kubectl events` filters rely on it).
EVENT_REASONS = frozenset(
    [v for k, v in vars(EventReason).items() if k.isupper()] + list(DEGRADED_REASONS))
EVENT_COMPONENT = "halyard-operator"  # reportingComponent and source.component of every Event
