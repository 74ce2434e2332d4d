"""Live cost of an LLMDeployment (pure): what its worker pods cost per hour
at the operator config's `gpuPrices`, and what spot saves against running the
same replicas all on on-demand capacity.

Replicas are the pool Deployments' pods (`status.onDemandReplicas`,
`status.spotReplicas`: a pod counts from creation, so a pod waiting for a
node is counted too). Prices are per GPU-hour for `resources.gpuProduct`;
without a price for that product (or without a product) the cost is
unknown and `status.cost` says so instead of guessing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from halyard_operator.config import GpuPrice


@dataclass(frozen=True)
class LiveCost:
    """Cost per hour now. gpu_hours_per_hour = GPUs held (on-demand + spot);
    per_hour = on_demand_per_hour + spot_per_hour; saving_per_hour =
    all_on_demand_per_hour - per_hour >= 0 (spot never costs more here)."""

    gpu_product: str | None
    currency: str
    on_demand_gpus: int
    spot_gpus: int
    price: GpuPrice | None

    @property
    def gpu_hours_per_hour(self) -> int:
        return self.on_demand_gpus + self.spot_gpus

    @property
    def known(self) -> bool:
        return self.price is not None

    @property
    def on_demand_per_hour(self) -> float:
        return self.on_demand_gpus * self.price.on_demand if self.price else 0.0

    @property
    def spot_per_hour(self) -> float:
        return self.spot_gpus * self.price.spot if self.price else 0.0

    @property
    def per_hour(self) -> float:
        return self.on_demand_per_hour + self.spot_per_hour

    @property
    def all_on_demand_per_hour(self) -> float:
        return self.gpu_hours_per_hour * self.price.on_demand if self.price else 0.0

    @property
    def saving_per_hour(self) -> float:
        return self.all_on_demand_per_hour - self.per_hour

    def to_status(self) -> dict:
        """`status.cost` (money rounded to cents of a cent: 4 decimals)."""
        out = {"currency": self.currency, "gpuHoursPerHour": self.gpu_hours_per_hour,
               "onDemandGPUs": self.on_demand_gpus, "spotGPUs": self.spot_gpus}
        if self.gpu_product:
            out["gpuProduct"] = self.gpu_product
        if not self.known:
            out["message"] = (f"no price for GPU product {self.gpu_product!r} in the operator config's gpuPrices"
                              if self.gpu_product else "resources.gpuProduct is not set: no price applies")
            return out
        money = {"perHour": self.per_hour, "onDemandPerHour": self.on_demand_per_hour,
                 "spotPerHour": self.spot_per_hour, "allOnDemandPerHour": self.all_on_demand_per_hour,
                 "savingPerHour": self.saving_per_hour}
        return {**out, **{k: round(v, 4) for k, v in money.items()}}


def live_cost(on_demand_replicas: int, spot_replicas: int, gpus_per_replica: int, gpu_product: str | None,
              prices: Mapping[str, GpuPrice], currency: str) -> LiveCost:
    return LiveCost(gpu_product=gpu_product, currency=currency, on_demand_gpus=on_demand_replicas * gpus_per_replica,
                    spot_gpus=spot_replicas * gpus_per_replica,
                    price=prices.get(gpu_product) if gpu_product else None)
