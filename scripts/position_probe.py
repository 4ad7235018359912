"""Can a patch's place be read from a model's image features? A linear probe, the first check of a grounding model.

The image features are what the language model receives (after the projector), one per patch. A least-squares map
from a feature to its patch's row, and one to its column, is fitted on the first half of the images and tested on
the second half. It reports how often the rounded prediction is the exact row or column, and the mean absolute
error in patches. A model cannot answer boxes from features that do not hold the places: sine-cosine position
codes at initialisation give about 94% exact rows; a from-scratch tower whose patch embedding trains drowns them
(about 20%), one whose patch embedding is frozen keeps them through the first tens of thousands of samples
(docs/model-card.md, run 5). Later a tower may re-code the places in a form a linear readout misses, so a falling
score after boxes start to follow the objects is not a failure.

    python scripts/position_probe.py --model runs/x/checkpoint-1000 --images heldout/images/test [--limit 100]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from allseeing.data.image import load_image
from allseeing.model.build import load, patch_grid

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def image_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """(images, patches, width): the projected patch features the language model reads."""
    with torch.no_grad():
        output = model.model.get_image_features(pixel_values=pixel_values)
    features = getattr(output, "pooler_output", output)  # transformers returns an output object or the features
    if isinstance(features, (list, tuple)):
        features = torch.stack(list(features))
    return features.float()


def fit_and_test(features: torch.Tensor, grid: int) -> dict:
    """Least-squares row and column readouts fitted on the first half of the images, scored on the second."""
    images, patches, width = features.shape
    if patches != grid * grid:
        raise ValueError(f"{patches} image features per image, expected a {grid} x {grid} grid")
    if images < 2:
        raise ValueError("the probe needs at least two images (half to fit, half to test)")
    inputs = torch.cat([features.reshape(-1, width), torch.ones(images * patches, 1)], dim=1).double()
    index = torch.arange(patches).repeat(images)
    fitted = (images // 2) * patches
    result = {"images": images, "grid": grid}
    for name, target in (("row", index // grid), ("column", index % grid)):
        weights = torch.linalg.lstsq(inputs[:fitted], target[:fitted, None].double()).solution
        predicted = (inputs[fitted:] @ weights).squeeze(1)
        truth = target[fitted:].double()
        result[name] = {
            "exact": round((predicted.round() == truth).double().mean().item(), 4),
            "mean_abs_error": round((predicted - truth).abs().mean().item(), 4),
        }
    return result


def probe(model_dir: str, images_dir: Path, limit: int) -> dict:
    model, processor = load(model_dir)
    model.eval()
    paths = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not paths:
        raise ValueError(f"{images_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
    features = image_features(model, processor.pixel_values([load_image(p) for p in paths]))
    return {"model": model_dir, **fit_and_test(features, patch_grid(model.config.vision_config))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--images", type=Path, required=True, help="folder of images (searched recursively)")
    parser.add_argument("--limit", type=int, default=100, help="images used, half to fit and half to test")
    args = parser.parse_args()
    print(json.dumps(probe(args.model, args.images, args.limit), indent=2))


if __name__ == "__main__":
    main()
