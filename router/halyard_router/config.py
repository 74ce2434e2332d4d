"""`halyard-router` configuration: parsed once from the command line, validated, frozen."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from urllib.parse import urlparse

from halyard_router.policy import POLICIES
from halyard_router.tiers import TIERS


@dataclass(frozen=True)
class RouterConfig:
    """Invariants: exactly one of `backends` (static) and `deployment` (pod
    discovery in `namespace`) is set; every count and duration is positive
    (`cache_entries` 0 turns the response cache off); the admission queue's waits
    are >= 0 and ordered batch <= standard <= critical."""

    host: str = "0.0.0.0"
    port: int = 8000
    backends: tuple[str, ...] = ()
    deployment: str | None = None
    namespace: str = "default"
    kubeconfig: str | None = None
    worker_port: int = 8000
    policy: str = "prefix"
    block_size: int = 16
    prefix_blocks: int = 16
    load_factor: float = 1.25
    load_floor: int = 4
    tier: str = "standard"
    saturation: int = 64
    hold_max: int = 256
    hold_timeout: float = 60.0
    queue_max: int = 512
    queue_wait_critical: float = 60.0
    queue_wait_standard: float = 30.0
    queue_wait_batch: float = 5.0
    max_attempts: int = 3
    metrics_interval: float = 0.5
    connect_timeout: float = 2.0
    served_model: str | None = None
    cache_entries: int = 0
    cache_bytes: int = 64 << 20
    cache_ttl: float = 300.0


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _backend_url(text: str) -> str:
    url = urlparse(text)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise argparse.ArgumentTypeError(f"expected a worker root such as http://10.0.0.7:8000, got {text!r}")
    return text.rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="halyard-router", description=__doc__)
    add = p.add_argument
    add("--host", default=os.environ.get("POD_IP", "0.0.0.0"), help="listen address (default: $POD_IP or 0.0.0.0)")
    add("--port", type=_positive(int), default=8000)
    add("--backend", dest="backends", action="append", type=_backend_url, default=[],
        help="static worker root URL (repeatable); exclusive with --deployment")
    add("--deployment", help="LLMDeployment whose worker pods to watch (in-cluster discovery)")
    add("--namespace", default=os.environ.get("POD_NAMESPACE", "default"))
    add("--kubeconfig", default=None, help="kubeconfig for discovery outside a pod (default: in-cluster, $KUBECONFIG)")
    add("--worker-port", type=_positive(int), default=8000, help="the workers' HTTP port")
    add("--policy", choices=POLICIES, default="prefix")
    add("--block-size", type=_positive(int), default=16, help="the engine's KV block size in tokens")
    add("--prefix-blocks", type=_positive(int), default=16, help="leading blocks that make the prefix key")
    add("--load-factor", type=_positive(float), default=1.25,
        help="bounded load: a backend takes at most this x the mean load (>= 1)")
    add("--load-floor", type=_non_negative_int, default=4,
        help="requests a backend always takes for its prefixes before the bound applies")
    add("--tier", choices=TIERS, default="standard", help="the deployment's tier (request class)")
    add("--saturation", type=_positive(int), default=64,
        help="requests per backend at which it counts as saturated (the engine's max running batch)")
    add("--hold-max", type=_non_negative_int, default=256, help="requests held at most while no backend is ready")
    add("--hold-timeout", type=_positive(float), default=60.0, help="seconds a request may be held")
    add("--queue-max", type=_non_negative_int, default=512,
        help="requests waiting at most for a backend below their tier's headroom (0: shed at once)")
    for tier, wait in (("critical", 60.0), ("standard", 30.0), ("batch", 5.0)):
        add(f"--queue-wait-{tier}", type=_non_negative_float, default=wait,
            help=f"seconds a {tier}-tier request may wait for a backend with room before a 429 (default {wait:g})")
    add("--max-attempts", type=_positive(int), default=3, help="backends tried per request before it is held again")
    add("--metrics-interval", type=_positive(float), default=0.5, help="seconds between backend /metrics scrapes")
    add("--connect-timeout", type=_positive(float), default=2.0)
    add("--served-model-name", dest="served_model", default=None,
        help="answer /v1/models with this name even while no backend is ready")
    add("--cache-entries", type=_non_negative_int, default=0, help="response cache entries (0: cache off)")
    add("--cache-bytes", type=_positive(int), default=64 << 20)
    add("--cache-ttl", type=_positive(float), default=300.0, help="seconds a cached response stays valid")
    return p


def parse_config(argv: list[str] | None = None) -> RouterConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.backends) == bool(args.deployment):
        parser.error("give either --backend URL (repeatable) or --deployment NAME (pod discovery), not both or neither")
    if args.load_factor < 1:
        parser.error(f"--load-factor must be >= 1, got {args.load_factor}")
    if not args.queue_wait_batch <= args.queue_wait_standard <= args.queue_wait_critical:
        parser.error("queue waits must be ordered --queue-wait-batch <= --queue-wait-standard <= "
                     f"--queue-wait-critical (lower tiers are shed first), got {args.queue_wait_batch:g}, "
                     f"{args.queue_wait_standard:g}, {args.queue_wait_critical:g}")
    values = vars(args)
    values["backends"] = tuple(values["backends"])
    return RouterConfig(**values)


def queue_waits(config: RouterConfig) -> dict[str, float]:
    """Tier -> seconds a request of that tier may wait in the admission queue."""
    return {"critical": config.queue_wait_critical, "standard": config.queue_wait_standard,
            "batch": config.queue_wait_batch}
