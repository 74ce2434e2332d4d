"""Container images: the recipes, their pins and the tags the manifests use."""
from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement

from halyard_operator.config import OperatorConfig
from tests.test_layout import ROOT

IMAGES = ROOT / "images"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION = PROJECT["version"]
HEAVY = ("torch", "transformers", "cupy", "fastapi", "kubernetes")


def pins(name: str) -> dict[str, str]:
    lines = (IMAGES / name / "requirements.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {canonical(n): v for n, v in pairs}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(extras: tuple[str, ...]) -> list[Requirement]:
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        found += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return found


def test_manifests_reference_the_package_version_tags():
    operator = yaml.safe_load((ROOT / "manifests" / "operator.yaml").read_text())
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"halyard/operator:{VERSION}"
    config = yaml.safe_load(yaml.safe_load((ROOT / "manifests" / "config.yaml").read_text())["data"]["config.yaml"])
    assert config["defaultImage"] == f"halyard/worker:{VERSION}"
    assert OperatorConfig().default_image == f"halyard/worker:{VERSION}"


@pytest.mark.parametrize("name,extras", [("operator", ()), ("worker", ("worker", "gpu"))])
def test_pins_satisfy_pyproject(name, extras):
    pinned = pins(name)
    for req in requirements(extras):
        assert canonical(req.name) in pinned, f"images/{name}/requirements.txt lacks {req.name}: run make image-locks"
        assert req.specifier.contains(pinned[canonical(req.name)], prereleases=True), \
            f"{req.name}=={pinned[canonical(req.name)]} does not satisfy {req}: run make image-locks"
    assert "pip" in pinned, "the build stage runs pip from its pinned wheel"


def test_operator_image_pins_no_worker_stack():
    pinned = pins("operator")
    assert not [n for n in pinned if n.startswith(HEAVY)]
    worker = pins("worker")
    assert "torch" in worker and "cupy-cuda13x" in worker


# The worker installs into its runtime stage from a bind-mounted wheel set: a
# build stage copied over would add a second 5.8 GB layer.
@pytest.mark.parametrize("name,uid,stages", [("operator", 65532, 3), ("worker", 1000, 2)])
def test_containerfiles_are_multi_stage_non_root_and_index_free(name, uid, stages):
    text = (IMAGES / name / "Containerfile").read_text()
    assert text.index("ARG BASE_IMAGE=") < text.index("FROM ")
    assert len(re.findall(r"^FROM ", text, re.M)) >= stages
    assert re.findall(r"^USER (.*)$", text, re.M) == [f"{uid}:{uid}"]
    assert "--no-index" in text and "--index-url" not in text and "://" not in text


def test_operator_uid_matches_the_manifest_and_worker_uid_the_pod_builder():
    from halyard_operator.builders.pod import CACHE_DIR

    operator = yaml.safe_load((ROOT / "manifests" / "operator.yaml").read_text())
    assert operator["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 65532
    worker = (IMAGES / "worker" / "Containerfile").read_text()
    assert f"HF_HOME={CACHE_DIR}" in worker and f'VOLUME ["{CACHE_DIR}"]' in worker
