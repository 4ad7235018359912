"""scripts/position_probe.py: the readout on hand-made features, and the probe on a tiny model's image features."""

import importlib.util
from pathlib import Path

import pytest
import torch

from allseeing.data.synth.generate import generate

SCRIPT = Path(__file__).parents[2] / "scripts" / "position_probe.py"
spec = importlib.util.spec_from_file_location("position_probe", SCRIPT)
position_probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(position_probe)


def places(images: int, grid: int) -> torch.Tensor:
    """Features that hold each patch's (row, column) plus one channel of noise."""
    index = torch.arange(grid * grid)
    codes = torch.stack([index // grid, index % grid], dim=1).float()
    noise = torch.randn(images, grid * grid, 1, generator=torch.Generator().manual_seed(0))
    return torch.cat([codes.expand(images, -1, -1), noise], dim=2)


def test_places_in_the_features_are_read_exactly():
    result = position_probe.fit_and_test(places(4, 3), grid=3)
    assert (result["images"], result["grid"]) == (4, 3)
    for axis in ("row", "column"):
        assert result[axis]["exact"] == 1.0 and result[axis]["mean_abs_error"] < 1e-6


def test_features_without_places_are_not():
    noise = places(40, 8)[:, :, 2:].expand(-1, -1, 4) * torch.arange(1.0, 5.0)
    result = position_probe.fit_and_test(noise, grid=8)
    assert result["row"]["exact"] < 0.3 and result["column"]["exact"] < 0.3


def test_a_grid_that_does_not_match_the_features_is_refused():
    with pytest.raises(ValueError, match="9 image features per image, expected a 4 x 4 grid"):
        position_probe.fit_and_test(places(2, 3), grid=4)


def test_the_probe_on_a_tiny_model(tmp_path, tiny_model_dir):
    generate(tmp_path, n_train=1, n_test=6, seed=3, workers=1, progress=False)
    result = position_probe.probe(str(tiny_model_dir), tmp_path / "images", limit=3)  # of 4 test, 1 train
    assert (result["images"], result["grid"]) == (3, 4)
    for axis in ("row", "column"):
        assert 0 <= result[axis]["exact"] <= 1 and result[axis]["mean_abs_error"] >= 0
    with pytest.raises(ValueError, match="no images"):
        position_probe.probe(str(tiny_model_dir), tmp_path / "eval", limit=6)
