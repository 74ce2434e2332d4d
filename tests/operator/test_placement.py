"""Static placement: on-demand floor first, the rest plus overprovision on spot."""
from __future__ import annotations

import pytest

from halyard_operator.api import parse_spec
from halyard_operator.builders.placement import PoolCounts, place, serving_target


def spec(replicas=None, scaling=None, **spot):
    body = {"model": {"name": "m", "uri": "hf://o/r"}}
    if replicas is not None:
        body["replicas"] = replicas
    if scaling is not None:
        body["scaling"] = scaling
    if spot:
        body["capacity"] = {"spot": {"enabled": True, **spot}}
    return parse_spec(body)


def test_no_spot_puts_everything_on_demand():
    assert place(spec(replicas=3)) == PoolCounts(on_demand=3, spot=0)


def test_floor_on_demand_rest_and_overprovision_on_spot():
    counts = place(spec(replicas=4, onDemandFloor=1, overprovision=1))
    assert counts == PoolCounts(on_demand=1, spot=4) and counts.total == 5


def test_target_within_floor_needs_no_spot_and_no_spare():
    assert place(spec(replicas=2, onDemandFloor=2, overprovision=2)) == PoolCounts(2, 0)


def test_floor_zero_runs_all_on_spot():
    assert place(spec(replicas=3, onDemandFloor=0)) == PoolCounts(0, 3)


def test_scaling_runs_at_min_replicas_until_the_autoscaler_decides():
    s = spec(scaling={"minReplicas": 3, "maxReplicas": 9}, onDemandFloor=1)
    assert serving_target(s) == 3
    assert place(s) == PoolCounts(1, 2)
    assert place(s, target=7) == PoolCounts(1, 6)


def test_spot_not_allowed_falls_back_to_on_demand():
    assert place(spec(replicas=4, onDemandFloor=1), spot_allowed=False) == PoolCounts(4, 0)


def test_zero_target_places_nothing():
    assert place(spec(replicas=0, onDemandFloor=0, overprovision=2)).total == 0


def test_negative_target_is_rejected():
    with pytest.raises(ValueError, match="target"):
        place(spec(replicas=1), target=-1)
