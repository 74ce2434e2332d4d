"""A deployment's spec.resources.gpus is its tensor-parallel size: the
simulator runs its replica profile scaled to that many GPUs."""
from __future__ import annotations

import textwrap

import pytest

from halyard.sim.model import BUILTIN_PROFILES, at_gpus, load_deployments, load_profiles

EIGHT_B = BUILTIN_PROFILES["llama-8b-h100"]


def _manifest(tmp_path, gpus: int, profile: str = "llama-8b-h100"):
    path = tmp_path / "d.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: halyard.dev/v1alpha1
        kind: LLMDeployment
        metadata:
          name: chat
          annotations: {{sim.halyard.dev/profile: {profile}}}
        spec:
          model: {{name: chat, uri: "hf://org/chat"}}
          resources: {{gpus: {gpus}}}
          replicas: 1
        """))
    return load_deployments(path, load_profiles(None))[0]


def test_two_gpus_per_replica_decode_faster_and_hold_more_kv(tmp_path):
    one, two = _manifest(tmp_path, 1).profile, _manifest(tmp_path, 2).profile
    assert one == EIGHT_B
    assert two.gpus == 2
    assert one.step_time(64) / 2 < two.step_time(64) < one.step_time(64) / 1.5
    assert one.prefill_tokens_per_s * 1.5 < two.prefill_tokens_per_s < one.prefill_tokens_per_s * 2
    assert two.kv_capacity_tokens == 2 * one.kv_capacity_tokens


def test_a_profile_at_its_own_size_is_unchanged_and_fewer_gpus_are_slower(tmp_path):
    seventy = BUILTIN_PROFILES["llama-70b-h100x8"]
    assert _manifest(tmp_path, 8, "llama-70b-h100x8").profile == seventy
    four = at_gpus(seventy, 4)
    assert four.step_time(1) > seventy.step_time(1)
    assert four.kv_capacity_tokens == seventy.kv_capacity_tokens // 2


@pytest.mark.parametrize("gpus", [2, 4, 8])
def test_scaling_up_then_back_returns_the_measured_profile(gpus):
    back = at_gpus(at_gpus(EIGHT_B, gpus), 1)
    assert back.step_time(32) == pytest.approx(EIGHT_B.step_time(32))
    assert back.prefill_tokens_per_s == pytest.approx(EIGHT_B.prefill_tokens_per_s)
