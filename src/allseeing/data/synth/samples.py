"""Sample images for the quickstart and the demo: synthetic scenes (the bundled model's world) and the example photo.

The scenes are rendered at start-up from fixed random streams of their own, so they are never training scenes
and no image file is shipped for them.
"""

from __future__ import annotations

from PIL import Image

from allseeing.assets import EXAMPLE_IMAGE
from allseeing.data.image import load_image
from allseeing.data.synth.scenes import sample_scenes
from allseeing.data.synth.world import render

SAMPLE_SEED = "demo"


def sample_images(count: int = 4) -> dict[str, Image.Image]:
    """``scene-1`` ... ``scene-{count}`` and ``example-photo``, by name."""
    scenes = sample_scenes(SAMPLE_SEED, "sample", count)
    samples = {f"scene-{index + 1}": render(scene) for index, scene in enumerate(scenes)}
    samples["example-photo"] = load_image(EXAMPLE_IMAGE)
    return samples
