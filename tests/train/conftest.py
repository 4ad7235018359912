"""A small synthetic training set shared by the training tests."""

import pytest

from allseeing.data.synth.generate import generate


@pytest.fixture(scope="session")
def train_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_synth")
    generate(root, n_train=40, n_test=0, seed=5, workers=1, progress=False)
    return root


def overrides(root, out, *extra):
    """A tiny, fast run on the synthetic grounding and predicate tasks."""
    data = f'[{{"path": "{root}/train/grounding.json", "image_root": "{root}"}}, {{"path": "{root}/train/predicate.json", "image_root": "{root}"}}]'
    return [
        "init=preset:tiny",
        f"output_dir={out}",
        f"data={data}",
        "global_batch=8",
        "per_device_batch=4",
        "log_every=1",
        "save_every=3",
        "epochs=2",
        "max_bad_fraction=0.5",
        "learning_rate=1e-3",
        "bf16=false",  # float32: losses compared across runs to 1e-6
        "num_workers=0",
        *extra,
    ]
