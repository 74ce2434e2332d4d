"""The router's own Prometheus metrics (`halyard:router_*`), one registry per app.

`requests_held` + `requests_in_flight` are the demand signal of scale from zero:
the operator reads them (with `last_request_timestamp_seconds`) from the router
pods of a deployment that has no worker.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class RouterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("halyard:router_requests", "Requests answered, by status code and tier.",
                                ["code", "tier"], registry=r)
        self.routed = Counter("halyard:router_routed", "Requests sent to a backend, by backend and policy.",
                              ["backend", "policy"], registry=r)
        self.in_flight = Gauge("halyard:router_requests_in_flight", "Requests being proxied now.", registry=r)
        self.held = Gauge("halyard:router_requests_held",
                          "Requests waiting for a ready backend (scale from zero, all backends lost).", registry=r)
        self.hold_rejected = Counter("halyard:router_hold_rejected",
                                     "Requests refused 503 while held: the hold was full or its TTL passed.",
                                     ["reason"], registry=r)
        self.shed = Counter("halyard:router_shed",
                            "Requests shed with 429 while every backend was past their tier's headroom, by tier "
                            "and reason (timeout: the tier's queue wait passed; full: the admission queue was "
                            "full; evicted: a higher-tier request took its place).", ["tier", "reason"], registry=r)
        self.queued = Gauge("halyard:router_requests_queued",
                            "Requests waiting in the admission queue for a backend with room, by tier.",
                            ["tier"], registry=r)
        self.retries = Counter("halyard:router_retries",
                               "Requests sent again to another backend before any byte reached the client.",
                               ["reason"], registry=r)
        self.stream_errors = Counter("halyard:router_stream_errors",
                                     "Streams ended with an error event because their backend failed.", registry=r)
        self.backends = Gauge("halyard:router_backends", "Backends that may take requests.", registry=r)
        self.last_request = Gauge("halyard:router_last_request_timestamp_seconds",
                                  "Unix time a request last arrived or ended (0: none yet).", registry=r)
        self.overhead = Histogram("halyard:router_overhead_seconds",
                                  "Time from receiving a request to sending it to a backend.",
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.cache = Counter("halyard:router_cache", "Response cache lookups, by result (hit, miss).",
                             ["result"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
