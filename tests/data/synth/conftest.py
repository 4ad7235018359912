"""A small synthetic dataset shared by the synth tests (written once per session)."""

import random

import pytest

from allseeing.data.synth.generate import generate
from allseeing.data.synth.scenes import sample_scene


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    stats = generate(out, n_train=80, n_test=32, seed=3, workers=1, progress=False)
    return out, stats


@pytest.fixture(scope="session")
def scenes():
    """300 random scenes (some streams give None: constraints unmet, as in generation)."""
    found = [sample_scene(random.Random(f"test/{i}"), f"s{i}") for i in range(300)]
    return [scene for scene in found if scene is not None]
