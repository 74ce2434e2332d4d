"""Operator config: defaults, merging, and errors naming the key."""
from __future__ import annotations

import pytest
import yaml

from halyard_operator.config import ConfigError, OperatorConfig, load_config, parse_config
from tests.operator.conftest import ROOT


def test_no_file_means_defaults():
    cfg = load_config(None)
    assert cfg == OperatorConfig()
    assert cfg.tiers["batch"].priority_class == "halyard-batch"
    assert cfg.providers["eks"].spot.node_selector == {"eks.amazonaws.com/capacityType": "SPOT"}


def test_shipped_configmap_parses_and_matches_the_built_in_presets():
    docs = yaml.safe_load((ROOT / "manifests" / "config.yaml").read_text())
    cfg = parse_config(yaml.safe_load(docs["data"]["config.yaml"]))
    defaults = OperatorConfig()
    assert cfg.tiers == defaults.tiers
    assert cfg.providers == defaults.providers
    assert (cfg.metrics_interval, cfg.metrics_window, cfg.prometheus_url) == (
        defaults.metrics_interval, defaults.metrics_window, None)
    assert cfg.gpu_prices["NVIDIA-H100-80GB-HBM3"].spot < cfg.gpu_prices["NVIDIA-H100-80GB-HBM3"].on_demand


def test_partial_file_overrides_only_what_it_sets(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("defaultImage: my/worker:1\nreconcileInterval: 1m\ntiers:\n  batch: {spotAllowed: false}\n")
    cfg = load_config(path)
    assert cfg.default_image == "my/worker:1" and cfg.reconcile_interval == 60.0
    assert cfg.tiers["batch"].spot_allowed is False
    assert cfg.tiers["critical"] == OperatorConfig().tiers["critical"]


@pytest.mark.parametrize("data,needle", [
    ({"defaultimage": "x"}, "defaultimage: unknown key"),
    ({"tiers": {"gold": {"priority": 5}}}, "tiers.gold.priority: unknown key"),
    ({"gpuPrices": {"H100": {"onDemand": "cheap", "spot": 1}}}, "gpuPrices.H100"),
    ({"reconcileInterval": "soon"}, "reconcileInterval"),
    ({"metricsInterval": "0s"}, "metricsInterval: must be longer than 0s"),
    ({"prometheusUrl": "prometheus:9090"}, "prometheusUrl: 'prometheus:9090' is not an http"),
])
def test_bad_config_names_the_key(data, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        parse_config(data)


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
